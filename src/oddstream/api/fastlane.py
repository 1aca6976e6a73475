"""Fast lanes for the requests that come by the thousand: ``POST
/races/{race_id}/bets`` (bets per second), the wallet POC's ``POST
/wallet/{id}/credit|debit`` and ``GET /wallet/{id}/balance``, and ``GET
/races/{race_id}/odds/stream`` (every live client, woken on every board).

They are answered directly at the ASGI level, skipping the framework's routing,
dependency solving and middleware stack (about 40% of a bet's CPU in a profile under
load; for a stream, a generator and a task group per message). Each does exactly what
its documented route does, through the same functions (``place_bet_json``,
``move_money_json``, ``balance_json``; the hub's ``attach``/``messages``), the same key
checks and the same error rendering, and keeps the service's guarantees: body size
limit, and the middleware's correlation id, request metrics and log line (its
``RequestRecord``). Every other request passes through untouched.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from . import errors, push
from .auth import Principal, key_from_headers, principal_of
from .middleware import RequestRecord
from .schemas import require_json
from .tote_routes import place_bet_json
from .wallet_routes import balance_json, move_money_json

_STREAM = re.compile(r"^/races/([A-Za-z0-9._:-]{1,100})/odds/stream$")
_STREAM_ROUTE = "/races/{race_id}/odds/stream"  # the documented route's label in metrics
_ID = r"([A-Za-z0-9._:-]{1,100})"

Handler = Callable[[Any, "Principal | None", str, bytes], Awaitable[tuple[int, bytes]]]


async def _bet(
    services: Any, principal: Principal | None, key: str, raw: bytes
) -> tuple[int, bytes]:
    return await place_bet_json(services, key, raw, principal)


async def _credit(
    services: Any, principal: Principal | None, key: str, raw: bytes
) -> tuple[int, bytes]:
    return await move_money_json(services, principal, key, raw, credit=True)


async def _debit(
    services: Any, principal: Principal | None, key: str, raw: bytes
) -> tuple[int, bytes]:
    return await move_money_json(services, principal, key, raw, credit=False)


async def _balance(
    services: Any, principal: Principal | None, key: str, raw: bytes
) -> tuple[int, bytes]:
    return await balance_json(services, principal, key, None)


#: (method, path pattern, route label for metrics, handler)
_LANES: tuple[tuple[str, re.Pattern[str], str, Handler], ...] = (
    ("POST", re.compile(rf"^/races/{_ID}/bets$"), "/races/{race_id}/bets", _bet),
    ("GET", re.compile(rf"^/wallet/{_ID}/balance$"), "/wallet/{wallet_id}/balance", _balance),
    ("POST", re.compile(rf"^/wallet/{_ID}/credit$"), "/wallet/{wallet_id}/credit", _credit),
    ("POST", re.compile(rf"^/wallet/{_ID}/debit$"), "/wallet/{wallet_id}/debit", _debit),
)


class BetFastLane:
    def __init__(self, app: ASGIApp, outer: ASGIApp, limit: int) -> None:
        self.app = app  # the full app, for every other request
        self.outer = outer  # the FastAPI app, whose state holds the services
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        path = scope["path"]
        if method == "GET":
            stream = _STREAM.match(path)
            if stream is not None:
                await self._stream(scope, receive, send, stream.group(1))
                return
            if scope.get("query_string"):  # the documented route parses queries
                await self.app(scope, receive, send)
                return
        for lane_method, pattern, route, handler in _LANES:
            if lane_method == method:
                match = pattern.match(path)
                if match is not None:
                    await self._serve(scope, receive, send, route, handler, match.group(1))
                    return
        await self.app(scope, receive, send)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: str,
        handler: Handler,
        key: str,
    ) -> None:
        length = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self.app(scope, receive, send)  # the general path answers 400/413
            return
        record = RequestRecord(scope)
        services = self.outer.state.services  # type: ignore[attr-defined]
        answered = False
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
                        if scope["method"] == "POST":
                            require_json(scope["headers"])
                        principal = principal_of(
                            services.keys, key_from_headers(scope["headers"]), scope.get("client")
                        )
                        status, body = await handler(services, principal, key, b"".join(chunks))
                        headers = {}
                    except Exception as exc:
                        status, payload, headers = errors.render(exc)
                        body = json.dumps(payload).encode()
                    break
            answered = True
            raw_headers = record.answer_headers(
                status,
                [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *((k.lower().encode(), v.encode()) for k, v in headers.items()),
                ],
            )
            await send({"type": "http.response.start", "status": status, "headers": raw_headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            if answered:
                record.finish(services.metrics, scope, route)
            else:
                record.forget()

    async def _stream(self, scope: Scope, receive: Receive, send: Send, race_id: str) -> None:
        services = self.outer.state.services  # type: ignore[attr-defined]
        record = RequestRecord(scope)
        try:
            await self._serve_stream(scope, receive, send, race_id, services.hub, record)
        finally:
            record.finish(services.metrics, scope, _STREAM_ROUTE)

    async def _serve_stream(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        race_id: str,
        hub: push.BoardHub,
        record: RequestRecord,
    ) -> None:
        last_id = None
        for name, value in scope["headers"]:
            if name == b"last-event-id":
                last_id = value.decode("latin-1")
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
                    "headers": record.answer_headers(
                        status, [(b"content-type", b"application/json")]
                    ),
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
