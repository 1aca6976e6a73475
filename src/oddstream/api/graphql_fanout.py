"""Subscription pushes built and encoded once per distinct subscription, not once per
subscriber.

Strawberry runs each subscriber's operation on its own: every change a subscriber is
pushed is executed against its selection (graphql-core) and encoded to JSON for it alone,
so 200 subscribers of the same document cost 200 executions and 200 encodings of the same
change. Two pieces share that work between the subscribers of one document:

- :class:`SharedPushExecutor`, the schema's graphql-core executor: a subscription event
  whose root value has a key (:meth:`~SharedPushExecutor.event_key`: for the odds, the
  value of its record) is executed once per (document text,
  operation, variables, event); every other subscriber of that operation gets the same
  result, whose ``data`` (a :class:`SharedData`) encodes itself once, on first use. A
  result with errors is not shared (each subscriber executes it, as before).
- :class:`SharedTransportWSHandler` and :class:`SharedLegacyWSHandler`, the WebSocket
  protocols' handlers: a ``next`` (``data`` in the legacy protocol) message carrying
  only :class:`SharedData` is written as the subscriber's id and the shared JSON text,
  the same text Strawberry would have written, without encoding it again.

The results are kept in a bounded table (:data:`MAX_SHARED`, oldest out first): a
subscriber that reads an event after it left the table executes it again, so a slow
subscriber costs time, never a wrong push. Documents are compared by their text, so
clients that send the same text share and two spellings of one query do not.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from graphql import ExecutionResult, OperationType
from starlette.websockets import WebSocketDisconnect
from strawberry.extensions import MaskErrors
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

#: executed pushes kept for the other subscribers of their document
MAX_SHARED = 4096


class SharedData(dict[str, Any]):
    """A push's ``data``, shared by every subscriber of its document, with its JSON
    text made once (by the first transport that sends it)."""

    __slots__ = ("_json",)

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self._json: str | None = None

    def json_text(self, encode: Any) -> str:
        """The data as JSON, encoded by ``encode`` (the view's ``encode_json``) once."""
        if self._json is None:
            encoded = encode(dict(self))
            self._json = encoded.decode() if isinstance(encoded, bytes) else encoded
        return self._json


class _Shared:
    """The executed pushes: (operation key, event key) → result, oldest out first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.results: dict[tuple[Hashable, Hashable], ExecutionResult] = {}
        self.executed = 0  # pushes executed for a first subscriber (or again)
        self.reused = 0  # pushes handed to another subscriber as they were

    def put(self, key: tuple[Hashable, Hashable], result: Any) -> Any:
        """Keep ``result`` for the other subscribers; one with errors, or anything but
        a plain result (a subscription event has no incremental delivery), is not kept."""
        if not isinstance(result, ExecutionResult) or result.errors:
            return result
        if not isinstance(result.data, dict):
            return result
        shared = ExecutionResult(data=SharedData(result.data), errors=None)
        if len(self.results) >= self.limit:
            del self.results[next(iter(self.results))]
        self.results[key] = shared
        return shared


shared_pushes = _Shared(MAX_SHARED)


class SharedPushExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, executing a keyed subscription event once per operation
    (see the module's docstring). Subclasses say which events are keyed."""

    @staticmethod
    def event_key(root_value: Any) -> Hashable | None:
        """The identity of a subscription event (``None``: never shared). An event's key
        must determine everything the selection can read from it."""
        return None

    #: the operation's key, made once on the subscription's executor and copied to the
    #: executor of each of its events
    _shared_operation: Hashable | None = None

    def build_per_event_executor(self, payload: Any) -> Any:
        if self._shared_operation is None:
            self._shared_operation = self._operation_key()
        return super().build_per_event_executor(payload)

    def _operation_key(self) -> Hashable | None:
        loc = self.operation.loc
        if loc is None:
            return None
        name = self.operation.name.value if self.operation.name else None
        try:
            variables = json.dumps(self.variable_values.coerced, sort_keys=True)
        except (TypeError, ValueError):
            return None  # a variable JSON cannot write: not shared
        return (loc.source.body, name, variables)

    def execute_operation(self, serially: bool | None = None) -> Any:
        if serially is not False or self.operation.operation != OperationType.SUBSCRIPTION:
            # a query or mutation, or a subscription's first step: executed as ever
            return super().execute_operation(serially)
        event = self.event_key(self.root_value)
        operation = self._shared_operation if event is not None else None
        if operation is None:
            return super().execute_operation(serially)
        key = (operation, event)
        found = shared_pushes.results.get(key)
        if found is not None:
            shared_pushes.reused += 1
            return found
        shared_pushes.executed += 1
        result = super().execute_operation(serially)
        if self.is_awaitable(result):
            return self._share_later(key, result)
        return shared_pushes.put(key, result)

    async def _share_later(self, key: tuple[Hashable, Hashable], pending: Awaitable[Any]) -> Any:
        return shared_pushes.put(key, await pending)


def _shared_frame(view: Any, message: Any, kind: str) -> str | None:
    """The text of a push message whose payload is only :class:`SharedData`, written
    as the view's encoder writes the message (the shared JSON spliced in), or ``None``
    for any other message."""
    if message.get("type") != kind:
        return None
    payload = message.get("payload")
    if not isinstance(payload, dict) or len(payload) != 1:
        return None
    data = payload.get("data")
    if not isinstance(data, SharedData):
        return None
    # the message's own keys in their own order (the legacy handler writes the type
    # first, graphql-transport-ws the id): the payload is the last of them
    if next(reversed(message)) != "payload":
        return None
    head = view.encode_json({**message, "payload": {"data": None}})
    head = head.decode() if isinstance(head, bytes) else head
    # the encoder ends the message with the payload's null and two closing braces
    if not head.endswith("null}}"):
        return None
    return head[: -len("null}}")] + data.json_text(view.encode_json) + "}}"


async def _send(handler: Any, message: Any, kind: str) -> bool:
    text = _shared_frame(handler.view, message, kind)
    if text is None:
        return False
    try:
        await handler.websocket.ws.send_text(text)  # Strawberry's ASGI adapter's socket
    except WebSocketDisconnect as exc:  # as the adapter's send_json says it
        raise WebSocketDisconnected from exc
    return True


class SharedTransportWSHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    """``graphql-transport-ws`` writing shared pushes without encoding them again."""

    async def send_message(self, message: Any) -> None:
        if not await _send(self, message, "next"):
            await super().send_message(message)


class SharedLegacyWSHandler(BaseGraphQLWSHandler[Any, Any]):
    """The legacy ``graphql-ws`` writing shared pushes without encoding them again."""

    async def send_message(self, message: Any) -> None:
        if not await _send(self, message, "data"):
            await super().send_message(message)


class CheapMaskErrors(MaskErrors):
    """Strawberry's ``MaskErrors``, passing over a result without errors at once. Its own
    check is an ``isinstance`` of a runtime-checkable ``Protocol``, run on every push to
    every subscriber: about 7 % of the server's time at a fan-out of 20,000 pushes a
    second (bench/odds.py)."""

    def _process_result(self, result: object) -> None:
        if getattr(result, "errors", None):
            super()._process_result(result)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Latest(Generic[K, V]):
    """The latest ``limit`` values made by ``make``, by key (oldest out first): what is
    built once for a push and handed to each of its subscribers."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.values: dict[K, V] = {}

    def get(self, key: K, make: Callable[[], V]) -> V:
        found = self.values.get(key)
        if found is None:
            if len(self.values) >= self.limit:
                del self.values[next(iter(self.values))]
            found = self.values[key] = make()
        return found
