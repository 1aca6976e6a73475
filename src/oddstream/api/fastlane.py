"""Fast lanes for the two requests that come by the thousand: ``POST
/races/{race_id}/bets`` (bets per second) and ``GET /races/{race_id}/odds/stream``
(every live client, woken on every board).

They are answered directly at the ASGI level, skipping the framework's routing,
dependency solving and middleware stack (about 40% of a bet's CPU in a profile under
load; for a stream, a generator and a task group per message). Each does exactly what
its documented route does, through the same functions (``place_bet_json``; the hub's
``attach``/``messages``) and the same error rendering, and keeps the service's
guarantees: body size limit, correlation id, request metrics. Every other request
passes through untouched.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from ..logs import correlation_id
from ..runtime.ids import new_id
from . import errors, push
from .tote_routes import place_bet_json

_BETS = re.compile(r"^/races/([A-Za-z0-9._:-]{1,100})/bets$")
_STREAM = re.compile(r"^/races/([A-Za-z0-9._:-]{1,100})/odds/stream$")
_ROUTE = "/races/{race_id}/bets"


class BetFastLane:
    def __init__(self, app: ASGIApp, outer: ASGIApp, limit: int) -> None:
        self.app = app  # the full app, for every other request
        self.outer = outer  # the FastAPI app, whose state holds the services
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            stream = _STREAM.match(scope["path"])
            if stream is not None:
                await self._stream(scope, receive, send, stream.group(1))
                return
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        match = _BETS.match(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        cid = None
        length = None
        for name, value in scope["headers"]:
            if name == b"x-correlation-id":
                text = value.decode("latin-1")[:100]
                cid = text if text.isprintable() else None
            elif name == b"content-length":
                length = value
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self.app(scope, receive, send)  # the general path answers 400/413
            return
        cid = cid or new_id()
        token = correlation_id.set(cid)
        services = self.outer.state.services  # type: ignore[attr-defined]
        try:
            chunks = []
            size = 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.limit:
                    status, body = (
                        413,
                        json.dumps(
                            errors.error_body(
                                "too_large", f"bodies are limited to {self.limit} bytes"
                            )
                        ).encode(),
                    )
                    headers: dict[str, str] = {}
                    break
                chunks.append(chunk)
                if not message.get("more_body", False):
                    try:
                        status, body = await place_bet_json(
                            services, match.group(1), b"".join(chunks)
                        )
                        headers = {}
                    except Exception as exc:
                        status, payload, headers = errors.render(exc)
                        body = json.dumps(payload).encode()
                    break
            raw_headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-correlation-id", cid.encode()),
                *((k.lower().encode(), v.encode()) for k, v in headers.items()),
            ]
            await send({"type": "http.response.start", "status": status, "headers": raw_headers})
            await send({"type": "http.response.body", "body": body})
            metrics = services.metrics
            metrics.requests.labels("POST", _ROUTE, str(status)).inc()
            metrics.latency.labels(_ROUTE).observe(time.perf_counter() - started)
        finally:
            correlation_id.reset(token)

    async def _stream(self, scope: Scope, receive: Receive, send: Send, race_id: str) -> None:
        last_id = None
        for name, value in scope["headers"]:
            if name == b"last-event-id":
                last_id = value.decode("latin-1")
        hub = self.outer.state.services.hub  # type: ignore[attr-defined]
        try:
            after = push.parse_last_event_id(last_id)
            sub, first = hub.attach(race_id, after)
        except Exception as exc:
            status, payload, _ = errors.render(exc)
            body = json.dumps(payload).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        def gone(_: object) -> None:
            sub.closed = True
            sub.wake()

        watcher = asyncio.ensure_future(_until_disconnect(receive))
        watcher.add_done_callback(gone)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
            await send(
                {
                    "type": "http.response.body",
                    "body": push.KEEPALIVE if first is None else first.sse,
                    "more_body": True,
                }
            )
            last = first.position if first is not None else (after or 0)
            async for message in hub.messages(sub, last):
                frame = push.KEEPALIVE if message is None else message.sse
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
    *((k.lower().encode(), v.encode()) for k, v in push.SSE_HEADERS.items()),
]
