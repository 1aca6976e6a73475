"""ASGI middleware: body size limit, correlation ids, request logs and metrics."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..integrations.kafka.http import BodyLimitExceeded
from ..logs import correlation_id
from ..runtime.ids import new_id
from .metrics import Metrics

log = logging.getLogger("oddstream.http")
SLOW_SECONDS = 1.0


async def _reject(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Answer 413 to bodies over ``limit`` bytes (by Content-Length, or while reading)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    await _reject(send, 400, "bad_request", "Content-Length is not a number")
                    return
                if too_big:
                    await _drain(receive, DRAIN_LIMIT)
                    await _reject(
                        send, 413, "too_large", f"request bodies are limited to {self.limit} bytes"
                    )
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            await _drain(receive, DRAIN_LIMIT)
            if not started:
                await _reject(
                    send, 413, "too_large", f"request bodies are limited to {self.limit} bytes"
                )


class _TooLarge(BodyLimitExceeded):
    """The body went over the limit while a route was reading it."""


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
    implementation behind :class:`RequestContext` and the fast lane (``fastlane.py``)."""

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


class RequestContext:
    """Correlation id (``X-Correlation-ID`` in, or a new one; echoed out), one JSON log
    line and metrics per request (:class:`RequestRecord`)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = RequestRecord(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = record.answer_headers(message["status"], message.get("headers", []))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            record.finish(self.metrics, scope, _route(scope))


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
