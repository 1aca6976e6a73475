"""How the service is put on a socket: uvicorn with a request read timeout and a
connection cap.

Uvicorn closes idle keep-alive connections, but has no timeout for a request being
received: a client that sends its headers (or its body) one byte at a time, or nothing at
all after connecting, held its connection and its memory forever. :class:`ReadTimeoutProtocol`
gives each request ``request_read_timeout_seconds`` from its first byte (from the
connection's opening, for the first) to arrive whole, then answers ``408`` and closes.
The clock stops once the request is received, so answers that stream for long (SSE,
WebSocket) are not cut, and idle keep-alive handling is uvicorn's own.

``limit_concurrency`` (``max_connections``) makes uvicorn answer ``503`` to requests that
arrive while that many connections are open or requests are in progress, instead of
taking on more.
"""

from __future__ import annotations

from asyncio import TimerHandle, Transport
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..config import Settings

_MESSAGE = b"the request did not arrive in time"
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_MESSAGE)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + _MESSAGE
)


class ReadTimeoutProtocol(HttpToolsProtocol):
    """Uvicorn's HTTP/1.1 protocol (httptools) with a deadline for receiving each request
    (headers and body): armed when a connection opens and when a request's first bytes
    arrive, disarmed when the request is complete or the connection is upgraded."""

    #: seconds a request has to arrive; set by :func:`read_timeout_protocol`
    read_timeout: float = 20.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: TimerHandle | None = None

    def _arm(self) -> None:
        if self._read_timer is None:
            self._read_timer = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        super().handle_websocket_upgrade()

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete:  # waiting for a request's headers
            self.transport.write(_REQUEST_TIMEOUT)
        else:  # for its body: the application, waiting for it, sees a disconnect
            if not cycle.response_started:  # else mid-answer: no room for a 408
                self.transport.write(_REQUEST_TIMEOUT)
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()


def read_timeout_protocol(seconds: float) -> type[ReadTimeoutProtocol]:
    """:class:`ReadTimeoutProtocol` with a deadline of ``seconds``."""
    return type("ReadTimeoutProtocol", (ReadTimeoutProtocol,), {"read_timeout": seconds})


def server_config(
    app: Any, settings: Settings, *, host: str, port: int, **options: Any
) -> uvicorn.Config:
    """The uvicorn configuration the service runs ``app`` with on ``host:port``: the
    request read timeout and the connection cap of ``settings``, no access log."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=read_timeout_protocol(settings.request_read_timeout_seconds),
        limit_concurrency=settings.max_connections,
        log_config=None,
        access_log=False,
        **options,
    )
