"""``getInstantOdds`` pushes executed and encoded once per distinct subscription
(document text, operation, variables), not once per subscriber (``api/graphql_fanout.py``),
against a live server with raw WebSocket clients, so the frames' very text is seen."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import websockets
from graphql import ExecutionResult, GraphQLError
from strawberry.http.base import BaseView
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation

from oddstream.api import graphql_fanout
from oddstream.api.graphql_fanout import SharedData, _Shared

from .conftest import live_settings, run_server
from .test_graphql import ACME_KEY, GRAPHQL_TRANSPORT_WS, LEGACY_GRAPHQL_WS, _create, _rest, url
from .test_odds_api import command

__all__ = ["url"]  # the live server fixture, shared with test_graphql

DOCUMENT = (
    "subscription($game: String, $current: Boolean!) { getInstantOdds(game_id: $game, "
    "current: $current) { external_id game_id moneyline { home away draw } deleted position } }"
)


@asynccontextmanager
async def _subscriber(
    url: str, protocol: str, document: str, variables: dict[str, Any]
) -> AsyncIterator[Any]:
    """A raw WebSocket subscribed to ``document``; yields the socket once the server has
    acknowledged the connection (pushes are read with :func:`_push`)."""
    ws_url = url.replace("http://", "ws://") + "/api/graphql"
    async with websockets.connect(ws_url, subprotocols=[protocol]) as socket:  # type: ignore[list-item]
        await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        start = "subscribe" if protocol == GRAPHQL_TRANSPORT_WS else "start"
        payload = {"query": document, "variables": variables}
        await socket.send(json.dumps({"id": "s1", "type": start, "payload": payload}))
        yield socket


async def _push(socket: Any) -> str:
    """The text of the next push (keep-alives skipped)."""
    while True:
        text = await asyncio.wait_for(socket.recv(), timeout=10)
        if json.loads(text)["type"] in ("next", "data"):
            return str(text)


def _as_strawberry_writes(text: str) -> str:
    """The message as Strawberry's own encoder writes it (``json.dumps``, compact)."""
    return json.dumps(json.loads(text), separators=(",", ":"))


@pytest.mark.parametrize("protocol", [GRAPHQL_TRANSPORT_WS, LEGACY_GRAPHQL_WS])
async def test_subscribers_of_one_document_share_each_push(url: str, protocol: str) -> None:
    game = f"f-{uuid.uuid4().hex[:8]}"
    market = (await _create(url, f"{game}-m", game, home=1.91, away=1.91, draw=3.4))["ExternalID"]
    variables = {"game": game, "current": True}
    async with AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(_subscriber(url, protocol, DOCUMENT, variables))
            for _ in range(3)
        ]
        # the current record first: the subscriptions are registered once it arrives
        firsts = [await _push(s) for s in sockets]
        before = (graphql_fanout.shared_pushes.executed, graphql_fanout.shared_pushes.reused)
        updates = []
        for k, home in enumerate(("2.05", "2.1", "2.2")):
            body = command(
                "UpdateOdds", f"{game}-u{k}", game=game, home=float(home), away=1.8, draw=3.25
            )
            updates.append(await _rest(url, "PATCH", f"/odds/{market}", body))
        pushes = [[await _push(s) for _ in updates] for s in sockets]
    executed = graphql_fanout.shared_pushes.executed - before[0]
    reused = graphql_fanout.shared_pushes.reused - before[1]
    # each change executed once for the three subscribers, handed as it was to two
    assert (executed, reused) == (len(updates), 2 * len(updates))
    # every subscriber got the same text, which is what Strawberry alone would write
    assert firsts[0] == firsts[1] == firsts[2] == _as_strawberry_writes(firsts[0])
    for k, update in enumerate(updates):
        texts = {subscriber[k] for subscriber in pushes}
        assert len(texts) == 1
        (text,) = texts
        assert text == _as_strawberry_writes(text)
        message = json.loads(text)
        assert message["id"] == "s1"
        record = message["payload"]["data"]["getInstantOdds"]
        assert record["position"] == update["Position"]
        assert record["moneyline"]["home"] == ("2.05", "2.1", "2.2")[k]


async def test_other_variables_or_text_are_other_subscriptions(url: str) -> None:
    game = f"v-{uuid.uuid4().hex[:8]}"
    market = (await _create(url, f"{game}-m", game, home=2, away=2))["ExternalID"]
    variants = [
        (DOCUMENT, {"game": game, "current": True}),
        (DOCUMENT, {"game": game, "current": False}),
        # the same query spelled otherwise: documents are compared by their text
        (DOCUMENT + " # another client", {"game": game, "current": True}),
    ]
    async with AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(_subscriber(url, GRAPHQL_TRANSPORT_WS, d, v))
            for d, v in variants
        ]
        await _push(sockets[0])
        await _push(sockets[2])
        # the subscription without `current` is registered once it gets a change: keep
        # updating until it does (nothing marks the moment the server registered it)
        made = 0
        while True:
            made += 1
            body = command("UpdateOdds", f"{game}-w{made}", game=game, home=2 + made / 100, away=2)
            await _rest(url, "PATCH", f"/odds/{market}", body)
            try:
                await asyncio.wait_for(_push(sockets[1]), timeout=0.3)
            except TimeoutError:
                continue
            break
        for _ in range(made):
            await _push(sockets[0])
            await _push(sockets[2])
        before = graphql_fanout.shared_pushes.executed
        body = command("UpdateOdds", f"{game}-last", game=game, home=3, away=1.5)
        update = await _rest(url, "PATCH", f"/odds/{market}", body)
        texts = [await _push(s) for s in sockets]
    assert graphql_fanout.shared_pushes.executed - before == 3
    positions = {json.loads(t)["payload"]["data"]["getInstantOdds"]["position"] for t in texts}
    assert positions == {update["Position"]}


def test_the_shared_table_is_bounded_and_keeps_no_errors() -> None:
    table = _Shared(limit=3)
    for n in range(5):
        shared = table.put(("doc", n), ExecutionResult(data={"n": n}, errors=None))
        assert isinstance(shared.data, SharedData)
    assert list(table.results) == [("doc", 2), ("doc", 3), ("doc", 4)]
    failed = ExecutionResult(data=None, errors=[GraphQLError("no")])
    assert table.put(("doc", 5), failed) is failed
    assert ("doc", 5) not in table.results
    # the data encodes once, with the encoder given first
    data = SharedData({"a": [1, "x"]})
    assert data.json_text(lambda d: json.dumps(d, separators=(",", ":"))) == '{"a":[1,"x"]}'
    assert data.json_text(lambda d: "never called") == '{"a":[1,"x"]}'


class _Capture:
    """A WebSocket adapter and a socket at once: what Strawberry's handler would send
    through ``send_json`` (its own encoding) and what the shared path sends as text."""

    def __init__(self, view: Any) -> None:
        self.view = view
        self.ws = self
        self.texts: list[str] = []

    async def send_json(self, message: Any) -> None:  # Strawberry's ASGI adapter
        encoded = self.view.encode_json(message)
        self.texts.append(encoded.decode() if isinstance(encoded, bytes) else encoded)

    async def send_text(self, text: str) -> None:  # the socket under it
        self.texts.append(text)


async def _push_with(handler_class: Any, capture: _Capture, data: dict[str, Any]) -> None:
    """A push of ``data`` as the protocol's own code builds and sends it."""
    handler = object.__new__(handler_class)
    handler.view = capture.view  # type: ignore[attr-defined]
    handler.websocket = capture  # type: ignore[attr-defined]
    result = ExecutionResult(data=data, errors=None)
    if handler_class is graphql_fanout.SharedLegacyWSHandler:
        await handler.send_data_message(result, "s1")  # type: ignore[attr-defined]
    else:
        await Operation(handler, "s1", "subscription { x }", None, None).send_next(result)


@pytest.mark.parametrize(
    "handler_class", [graphql_fanout.SharedTransportWSHandler, graphql_fanout.SharedLegacyWSHandler]
)
async def test_a_shared_frame_is_strawberrys_own_text(handler_class: Any) -> None:
    capture = _Capture(BaseView())
    data = {"getInstantOdds": {"external_id": 'e\u00e9"', "moneyline": {"home": "1.91"}}}
    await _push_with(handler_class, capture, SharedData(data))  # the shared path
    await _push_with(handler_class, capture, dict(data))  # Strawberry's own
    shared, own = capture.texts
    assert shared == own


async def test_two_stores_in_one_process_never_share_a_push(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The same request from the same provider makes the same ExternalID on any store,
    at the same position on two new stores, with other prices: a push is shared by what
    it was made of, never by (market, position) alone (two services in one process, as
    the tests run them)."""
    pushed = []
    for home in (1.91, 3.5):
        tmp: Path = tmp_path_factory.mktemp("two-stores")
        keys = tmp / "keys.json"
        keys.write_text(
            json.dumps({"keys": [{"key": ACME_KEY, "role": "provider", "provider": "acme"}]})
        )
        servers = run_server(live_settings(tmp, api_keys_file=str(keys)))
        live = next(servers)
        try:
            market = await _create(live.url, "same-request", "g-same", home=home, away=2)
            async with _subscriber(
                live.url, GRAPHQL_TRANSPORT_WS, DOCUMENT, {"game": "g-same", "current": True}
            ) as socket:
                record = json.loads(await _push(socket))["payload"]["data"]["getInstantOdds"]
        finally:
            servers.close()
        pushed.append((market["ExternalID"], market["Position"], record))
    (first_id, first_at, first), (second_id, second_at, second) = pushed
    assert (first_id, first_at) == (second_id, second_at)  # the case: same market, position
    assert first["moneyline"]["home"] == "1.91"
    assert second["moneyline"]["home"] == "3.5"
