"""Live odds push: SSE and WebSocket, coalesced per race, keep-latest per client.

Every message is the whole board with the position it includes, so a client that missed
messages only needs the latest one: there is nothing in between to replay. Per race, a
change schedules one flush ``coalesce`` seconds later; the flush encodes the board once
and hands it to every subscriber's one-message slot. A slow client just finds a newer
board in its slot: it never holds up the flush or the other clients.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

import msgspec
from fastapi import APIRouter, Header, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from ..projections.tote_view import ToteView
from .errors import ApiError
from .schemas import Id

KEEPALIVE_SECONDS = 15.0
_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class BoardMessage:
    position: int
    body: bytes  # JSON: {"position": …, "board": {…}}


@dataclass(eq=False, slots=True)
class _Subscriber:
    latest: BoardMessage | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(slots=True)
class _Channel:
    subscribers: set[_Subscriber] = field(default_factory=set)
    latest: BoardMessage | None = None
    flush_pending: bool = False


class BoardHub:
    """Fans race boards out to live subscribers."""

    def __init__(self, view: ToteView, coalesce_seconds: float) -> None:
        self._view = view
        self._coalesce = coalesce_seconds
        self._channels: dict[str, _Channel] = {}
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
        return BoardMessage(view.position, _encoder.encode(view))

    def _flush(self, race_id: str) -> None:
        channel = self._channels.get(race_id)
        if channel is None:
            return
        channel.flush_pending = False
        message = self._message(race_id)
        if message is None:
            return
        channel.latest = message
        for sub in channel.subscribers:
            sub.latest = message
            sub.ready.set()

    async def follow(
        self, race_id: str, after: int | None = None, idle: float | None = None
    ) -> AsyncGenerator[BoardMessage | None, None]:
        """Boards of ``race_id``: at once the current one (unless the client already has
        ``after`` or newer), then each coalesced change; ``None`` after ``idle`` seconds
        without one (time for a keep-alive). Ends when the consumer stops."""
        current = self._message(race_id)
        if current is None:
            raise ApiError(404, "race_not_found", f"no race {race_id}")
        channel = self._channels.setdefault(race_id, _Channel())
        sub = _Subscriber()
        channel.subscribers.add(sub)
        try:
            if after is None or current.position > after:
                yield current
                last = current.position
            else:
                last = after
                yield None  # the client is up to date: start the stream with a keep-alive
            while True:
                if idle is None:
                    await sub.ready.wait()
                else:
                    try:
                        await asyncio.wait_for(sub.ready.wait(), idle)
                    except TimeoutError:
                        yield None
                        continue
                sub.ready.clear()
                message = sub.latest
                if message is not None and message.position > last:
                    last = message.position
                    yield message
        finally:
            channel.subscribers.discard(sub)
            if not channel.subscribers:
                self._channels.pop(race_id, None)


router = APIRouter(tags=["live"])


def _hub(request: Request | WebSocket) -> BoardHub:
    return request.app.state.services.hub  # type: ignore[no-any-return,unused-ignore]


def _last_id(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        number = int(value)
    except ValueError:
        raise ApiError(422, "invalid_request", "Last-Event-ID must be a position") from None
    if not 0 <= number <= 2**63 - 1:
        raise ApiError(422, "invalid_request", "Last-Event-ID is out of range")
    return number


@router.get(
    "/races/{race_id}/odds/stream",
    summary="Live board (Server-Sent Events; resume with Last-Event-ID)",
    response_class=StreamingResponse,
)
async def odds_stream(
    request: Request,
    race_id: Id,
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
) -> StreamingResponse:
    hub = _hub(request)
    boards = hub.follow(race_id, _last_id(last_event_id), idle=KEEPALIVE_SECONDS)
    first = await anext(boards)  # raises a clean 404 before the stream starts

    async def events() -> AsyncIterator[bytes]:
        try:
            yield b": keep-alive\n\n" if first is None else _sse(first)
            async for message in boards:
                yield b": keep-alive\n\n" if message is None else _sse(message)
        finally:
            await boards.aclose()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse(message: BoardMessage) -> bytes:
    return b"id: %d\nevent: board\ndata: %s\n\n" % (message.position, message.body)


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
