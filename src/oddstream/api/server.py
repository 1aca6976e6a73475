"""How the service is put on a socket: uvicorn with a request read timeout and a
connection cap.

Uvicorn closes idle keep-alive connections, but has no timeout for a request being
received: a client that sends its headers (or its body) one byte at a time, or nothing at
all after connecting, held its connection and its memory forever. :class:`ReadTimeoutProtocol`
gives each request ``request_read_timeout_seconds`` from its first byte (from the
connection's opening, for the first) to arrive whole (checked once a second), then
answers ``408`` and closes. The close lingers, as nginx's ``lingering_close`` does: the
server half-closes after the 408 and discards what the client still sends for up to
``LINGER_SECONDS``; closing at once with unread input makes the kernel answer with a
reset, which can destroy the 408 before the client has read it.
The clock stops once the request is received, so answers that stream for long (SSE,
WebSocket) are not cut, and idle keep-alive handling is uvicorn's own.

``limit_concurrency`` (``max_connections``) makes uvicorn answer ``503`` to requests that
arrive while that many connections are open or requests are in progress, instead of
taking on more.
"""

from __future__ import annotations

import asyncio
import weakref
from asyncio import Transport
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


#: the largest WebSocket message a client may send (uvicorn's default is 16 MiB): a
#: GraphQL subscription's document is at most 20,000 characters, the boards' WebSocket
#: reads nothing; a larger message closes the connection (1009)
WS_MAX_MESSAGE_BYTES = 64 * 1024

#: how long a timed-out connection keeps discarding input after its 408 before closing
LINGER_SECONDS = 2.0


class ReadTimeoutProtocol(HttpToolsProtocol):
    """Uvicorn's HTTP/1.1 protocol (httptools) with a deadline for receiving each request
    (headers and body): set when a connection opens and when a request's first bytes
    arrive, cleared when the request is complete or the connection is upgraded.

    No timer per request: at thousands of requests a second, a ``call_later`` each (and
    its cancellation) filled the loop's timer heap with cancelled handles. A deadline is
    a number on the connection, and one sweep a second (per event loop) closes the
    connections past theirs, so a request gets between ``read_timeout`` and one second
    more."""

    #: seconds a request has to arrive; set by :func:`read_timeout_protocol`
    read_timeout: float = 20.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: float | None = None
        self._linger: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._read_deadline = self.loop.time() + self.read_timeout
        _sweeper(self.loop).watch(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._read_deadline = None
        _sweeper(self.loop).forget(self)
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._linger is not None:  # answered 408: the rest of the request is dropped
            return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._read_deadline is None:
            self._read_deadline = self.loop.time() + self.read_timeout

    def on_message_complete(self) -> None:
        self._read_deadline = None
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        # the connection becomes the WebSocket protocol's: this one never hears of its end
        self._read_deadline = None
        _sweeper(self.loop).forget(self)
        super().handle_websocket_upgrade()

    def _past_deadline(self, now: float) -> bool:
        return self._read_deadline is not None and self._read_deadline <= now

    def _read_timed_out(self) -> None:
        self._read_deadline = None
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
        self._close_lingering()

    def _close_lingering(self) -> None:
        """Half-close (the client reads the 408, then end of stream), drop further input,
        and close for good after :data:`LINGER_SECONDS` or when the client closes."""
        transport = self.transport
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self._linger = self.loop.call_later(LINGER_SECONDS, transport.close)


class _Sweeper:
    """Once a second, closes the connections of one event loop whose request is late."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._watched: set[ReadTimeoutProtocol] = set()
        self._handle: asyncio.TimerHandle | None = None

    def watch(self, protocol: ReadTimeoutProtocol) -> None:
        self._watched.add(protocol)
        if self._handle is None:
            self._handle = self._loop.call_later(1.0, self._sweep)

    def forget(self, protocol: ReadTimeoutProtocol) -> None:
        self._watched.discard(protocol)

    def _sweep(self) -> None:
        self._handle = None
        now = self._loop.time()
        for protocol in [p for p in self._watched if p._past_deadline(now)]:
            protocol._read_timed_out()
        if self._watched:
            self._handle = self._loop.call_later(1.0, self._sweep)


_sweepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Sweeper] = (
    weakref.WeakKeyDictionary()
)


def _sweeper(loop: asyncio.AbstractEventLoop) -> _Sweeper:
    sweeper = _sweepers.get(loop)
    if sweeper is None:
        sweeper = _sweepers[loop] = _Sweeper(loop)
    return sweeper


def read_timeout_protocol(seconds: float) -> type[ReadTimeoutProtocol]:
    """:class:`ReadTimeoutProtocol` with a deadline of ``seconds``."""
    return type("ReadTimeoutProtocol", (ReadTimeoutProtocol,), {"read_timeout": seconds})


def server_config(
    app: Any, settings: Settings, *, host: str, port: int, **options: Any
) -> uvicorn.Config:
    """The uvicorn configuration the service runs ``app`` with on ``host:port``: the
    request read timeout and the connection cap of ``settings``, WebSocket messages of
    at most :data:`WS_MAX_MESSAGE_BYTES`, no access log."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=read_timeout_protocol(settings.request_read_timeout_seconds),
        limit_concurrency=settings.max_connections,
        ws_max_size=WS_MAX_MESSAGE_BYTES,
        log_config=None,
        access_log=False,
        **options,
    )
