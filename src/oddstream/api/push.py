"""Live odds push: SSE and WebSocket, coalesced per race, keep-latest per client.

Every message is the whole board with the position it includes, so a client that missed
messages only needs the latest one: there is nothing in between to replay. Per race, a
change schedules one flush ``coalesce`` seconds later; the flush encodes the board once
and hands it to every subscriber's one-message slot. A slow client just finds a newer
board in its slot: it never holds up the flush or the other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.types import Receive, Scope, Send

from ..application.errors import ApiError, render
from ..projections.tote_view import ToteView
from .lean import LeanRoute, encoder, send_json
from .openapi import error_responses, path_id

if TYPE_CHECKING:
    from ..application.services import Services
    from .middleware import RequestRecord

KEEPALIVE_SECONDS = 15.0
KEEPALIVE = b": keep-alive\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class BoardMessage:
    position: int
    body: bytes  # JSON: {"position": …, "board": {…}}
    sse: bytes  # the same as one Server-Sent Events frame, encoded once for every client


@dataclass(eq=False, slots=True)
class Subscriber:
    """One live client: a one-message slot (keep-latest) and a wake-up."""

    latest: BoardMessage | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    keepalive: bool = False
    closed: bool = False

    def wake(self) -> None:
        self.ready.set()


@dataclass(slots=True)
class _Channel:
    subscribers: set[Subscriber] = field(default_factory=set)
    flush_pending: bool = False


class BoardHub:
    """Fans race boards out to live subscribers."""

    def __init__(self, view: ToteView, coalesce_seconds: float) -> None:
        self._view = view
        self._coalesce = coalesce_seconds
        self._channels: dict[str, _Channel] = {}
        self._ticker: asyncio.Task[None] | None = None
        view.on_race_changed(self.changed)

    @property
    def clients(self) -> int:
        return sum(len(c.subscribers) for c in self._channels.values())

    def changed(self, race_id: str, position: int) -> None:
        """A race's board changed at ``position`` (called by the read model)."""
        channel = self._channels.get(race_id)
        if channel is None or not channel.subscribers or channel.flush_pending:
            return
        channel.flush_pending = True
        asyncio.get_running_loop().call_later(self._coalesce, self._flush, race_id)

    def _message(self, race_id: str) -> BoardMessage | None:
        view = self._view.board(race_id)
        if view is None:
            return None
        body = _encoder.encode(view)
        sse = b"id: %d\nevent: board\ndata: %s\n\n" % (view.position, body)
        return BoardMessage(view.position, body, sse)

    def _flush(self, race_id: str) -> None:
        channel = self._channels.get(race_id)
        if channel is None:
            return
        channel.flush_pending = False
        message = self._message(race_id)
        if message is None:
            return
        for sub in channel.subscribers:
            sub.latest = message
            sub.ready.set()

    def attach(self, race_id: str, after: int | None) -> tuple[Subscriber, BoardMessage | None]:
        """Register a client; returns it and the board to send first (None when the
        client already has ``after`` or newer). Raises 404 for an unknown race."""
        current = self._message(race_id)
        if current is None:
            raise ApiError(404, "race_not_found", f"no race {race_id}")
        sub = Subscriber()
        self._channels.setdefault(race_id, _Channel()).subscribers.add(sub)
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())
        first = current if after is None or current.position > after else None
        return sub, first

    def detach(self, race_id: str, sub: Subscriber) -> None:
        sub.closed = True
        channel = self._channels.get(race_id)
        if channel is None:
            return
        channel.subscribers.discard(sub)
        if not channel.subscribers:
            self._channels.pop(race_id, None)

    async def _tick(self) -> None:
        """One timer for every client's keep-alive (instead of a timeout per wait)."""
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            for channel in list(self._channels.values()):
                for sub in channel.subscribers:
                    sub.keepalive = True
                    sub.ready.set()

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    async def follow(
        self, race_id: str, after: int | None = None
    ) -> AsyncGenerator[BoardMessage | None, None]:
        """Boards of ``race_id``: at once the current one (or ``None`` when the client is
        up to date), then each coalesced change; ``None`` for a keep-alive."""
        sub, first = self.attach(race_id, after)
        try:
            yield first
            last = first.position if first is not None else (after or 0)
            async for message in self.messages(sub, last):
                yield message
        finally:
            self.detach(race_id, sub)

    @staticmethod
    async def messages(sub: Subscriber, last: int) -> AsyncIterator[BoardMessage | None]:
        """What a subscriber should send next, until it is closed."""
        while not sub.closed:
            await sub.ready.wait()
            sub.ready.clear()
            if sub.closed:
                return
            message = sub.latest
            if message is not None and message.position > last:
                last = message.position
                yield message
            elif sub.keepalive:
                sub.keepalive = False
                yield None


router = APIRouter(tags=["live"])


def _hub(websocket: WebSocket) -> BoardHub:
    return websocket.app.state.services.hub  # type: ignore[no-any-return,unused-ignore]


def parse_last_event_id(value: str | None) -> int | None:
    """A ``Last-Event-ID`` header as a position (None when absent), or a 422."""
    if value is None or not value.strip():
        return None
    digits = value.strip()
    if not (digits.isascii() and digits.isdigit()) or int(digits) > 2**63 - 1:
        raise ApiError(422, "invalid_request", "Last-Event-ID must be a position")
    return int(digits)


async def odds_stream(
    services: Services,
    scope: Scope,
    receive: Receive,
    send: Send,
    record: RequestRecord,
    race_id: str,
) -> None:
    """``GET /races/{race_id}/odds/stream``, a lean route (:mod:`.lean`): the live board
    as Server-Sent Events, resumed after ``Last-Event-ID``; a refusal (unknown race, a
    ``Last-Event-ID`` that is not a position) is a JSON error before the stream starts."""
    hub = services.hub
    last_id = None
    for name, value in scope["headers"]:
        if name == b"last-event-id":
            last_id = value.decode("latin-1")
    try:
        after = parse_last_event_id(last_id)
        sub, first = hub.attach(race_id, after)
    except Exception as exc:
        status, payload, headers = render(exc)
        await send_json(send, record, status, encoder.encode(payload), headers)
        return

    def gone(_: object) -> None:
        sub.closed = True
        sub.wake()

    watcher = asyncio.ensure_future(_until_disconnect(receive))
    watcher.add_done_callback(gone)
    try:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": record.answer_headers(200, _SSE_HEADERS),
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": KEEPALIVE if first is None else first.sse,
                "more_body": True,
            }
        )
        last = first.position if first is not None else (after or 0)
        async for message in hub.messages(sub, last):
            frame = KEEPALIVE if message is None else message.sse
            await send({"type": "http.response.body", "body": frame, "more_body": True})
    except OSError:
        pass  # the client went away mid-write
    finally:
        hub.detach(race_id, sub)
        watcher.cancel()


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    *((k.lower().encode(), v.encode()) for k, v in SSE_HEADERS.items()),
]

lean = LeanRoute(
    "GET",
    "/races/{race_id}/odds/stream",
    stream=odds_stream,
    operation={
        "tags": ["live"],
        "summary": "Live board (Server-Sent Events; resume with Last-Event-ID)",
        "operationId": "odds_stream",
        "parameters": [
            path_id("race_id"),
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "description": "the position of the last board received",
                "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
            },
        ],
        "responses": {
            "200": {
                "description": "One `board` event per change (coalesced), its `id` the "
                "position it includes; a comment line as keep-alive",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            **error_responses(404, 422),
        },
    },
)


@router.websocket("/races/{race_id}/odds/ws")
async def odds_ws(websocket: WebSocket, race_id: str, last_position: int | None = None) -> None:
    """The same boards over a WebSocket, one JSON text message each."""
    hub = _hub(websocket)
    await websocket.accept()
    try:
        async for message in hub.follow(race_id, last_position):
            if message is not None:
                await websocket.send_text(message.body.decode())
    except ApiError as exc:
        await websocket.send_json({"error": exc.code, "message": exc.message})
        await websocket.close(code=4404)
    except WebSocketDisconnect:
        pass
