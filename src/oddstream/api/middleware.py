"""The app's one middleware (:class:`Edge`): body size limit, correlation ids, request
logs and metrics, and the lean routes' dispatch."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..application.errors import ApiError
from ..integrations.kafka.http import BodyLimitExceeded
from ..logs import correlation_id
from ..runtime.ids import new_id
from .lean import LeanRoutes, method_not_allowed, send_json
from .metrics import Metrics

log = logging.getLogger("oddstream.http")
SLOW_SECONDS = 1.0


class _TooLarge(BodyLimitExceeded, ApiError):
    """The body went over the limit while a route was reading it. :class:`Edge` drains
    the rest and answers 413 unless an answer started: the framework's error handler
    may answer it first (as an :class:`ApiError`), and re-raises it to the edge."""

    def __init__(self, limit: int) -> None:
        ApiError.__init__(self, 413, "too_large", f"request bodies are limited to {limit} bytes")


#: Read and drop at most this much of a refused body, so the client (still sending) gets
#: to read the 413 instead of a reset connection; past it the connection is just closed.
DRAIN_LIMIT = 64 * 1024 * 1024


async def _drain(receive: Receive, limit: int) -> None:
    seen = 0
    while seen <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def correlation_id_of(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The request's correlation id: its last printable ``X-Correlation-ID`` header (cut
    to 100 characters), else a new id."""
    cid = None
    for name, value in headers:
        if name == b"x-correlation-id":
            text = value.decode("latin-1")[:100]
            if text.isprintable():
                cid = text
    return cid or new_id()


class RequestRecord:
    """What the service records of one request, from its start: the correlation id, set
    for its logs and echoed in its answer, then its metrics and log line. The one
    implementation, which :class:`Edge` keeps for every request."""

    __slots__ = ("_token", "cid", "started", "status")

    def __init__(self, scope: Scope) -> None:
        self.cid = correlation_id_of(scope.get("headers", ()))
        self._token = correlation_id.set(self.cid)
        self.started = time.perf_counter()
        self.status = 500  # unless an answer starts

    def answer_headers(
        self, status: int, headers: Iterable[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        """Note the answer's ``status``; ``headers`` with the correlation id added."""
        self.status = status
        return [*headers, (b"x-correlation-id", self.cid.encode())]

    def finish(self, metrics: Metrics, scope: Scope, route: str) -> None:
        """Count the request under ``route`` with its status and latency, log it if it
        failed or was slow (every request with debug logging), and unset its id."""
        try:
            elapsed = time.perf_counter() - self.started
            status = self.status
            metrics.observe_request(scope["method"], route, status, elapsed)
            # one line per request costs ~10% of a bet's CPU at load: errors and slow
            # requests always, the rest only with debug logging on
            slow = elapsed > SLOW_SECONDS and not route.endswith(("/stream", "/ws"))
            if status >= 500 or slow or log.isEnabledFor(logging.DEBUG):
                log.log(
                    logging.WARNING if status >= 500 or slow else logging.DEBUG,
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "ms": round(elapsed * 1000, 2),
                    },
                )
        finally:
            correlation_id.reset(self._token)

    def forget(self) -> None:
        """Unset the id of a request left unanswered (its client went away): nothing to
        count."""
        correlation_id.reset(self._token)


class App(FastAPI):
    """The FastAPI app with :class:`Edge` in front of its HTTP requests (set by
    :meth:`install_edge`): in front of the framework's own middleware stack, so that a
    lean route's request pays for none of it."""

    edge: Edge | None = None

    def install_edge(self, metrics: Metrics, limit: int, lean: LeanRoutes) -> None:
        """Put an :class:`Edge` with these in front of every HTTP request."""
        self.edge = Edge(super().__call__, metrics, limit, lean, self.state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.edge is not None and scope["type"] == "http":
            await self.edge(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


class Edge:
    """The app's one middleware, in front of every HTTP request, the lean routes' and the
    framework's alike:

    - the body limit: a ``Content-Length`` over ``limit`` is answered 413 at once (400
      when it is not a number), a body that grows past it while read is answered 413;
    - the request's record (:class:`RequestRecord`): correlation id in and out, metrics
      by route and status, the log line;
    - dispatch: a lean route's request (:mod:`.lean`) is answered by it, a lean route's
      path asked with another method 405 with ``Allow``, anything else goes to the
      framework's router.
    """

    def __init__(
        self, app: ASGIApp, metrics: Metrics, limit: int, lean: LeanRoutes, state: Any
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.limit = limit
        self.lean = lean
        self.state = state  # the app's state, which holds the services once started

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = RequestRecord(scope)
        raw_receive = receive
        label = "unmatched"
        limit = self.limit
        started = False
        try:
            has_body = False
            for name, value in scope["headers"]:
                if name == b"content-length":
                    if not value.isdigit():
                        await _reject(
                            send, record, 400, "bad_request", "Content-Length is not a number"
                        )
                        return
                    if int(value) > limit:
                        await _drain(receive, DRAIN_LIMIT)
                        await _reject(
                            send,
                            record,
                            413,
                            "too_large",
                            f"request bodies are limited to {limit} bytes",
                        )
                        return
                    has_body = True
                elif name == b"transfer-encoding":
                    has_body = True
            if has_body:
                seen = 0

                async def limited_receive() -> Message:
                    nonlocal seen
                    message = await raw_receive()
                    if message["type"] == "http.request":
                        seen += len(message.get("body", b""))
                        if seen > limit:
                            raise _TooLarge(limit)
                    return message

                receive = limited_receive

            route, param, allow = self.lean.match(scope)
            if route is not None:
                assert param is not None
                label = route.path
                await self.lean.serve(
                    route, param, self.state.services, scope, receive, send, record
                )
            elif allow is not None:
                await send_json(send, record, *method_not_allowed(allow))
            else:

                async def send_with_id(message: Message) -> None:
                    nonlocal started
                    if message["type"] == "http.response.start":
                        started = True
                        headers = record.answer_headers(
                            message["status"], message.get("headers", [])
                        )
                        message = {**message, "headers": headers}
                    await send(message)

                try:
                    await self.app(scope, receive, send_with_id)
                finally:
                    label = _route(scope)
        except _TooLarge:
            await _drain(raw_receive, DRAIN_LIMIT)
            if not started:  # (a lean route reads its whole body before it answers)
                await _reject(
                    send, record, 413, "too_large", f"request bodies are limited to {limit} bytes"
                )
        finally:
            record.finish(self.metrics, scope, label)


async def _reject(send: Send, record: RequestRecord, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": code, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": record.answer_headers(status, headers),
        }
    )
    await send({"type": "http.response.body", "body": body})


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
