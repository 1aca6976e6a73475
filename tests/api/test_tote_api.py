"""The tote API over real HTTP: commands, reads, idempotency, read-your-writes, roles,
bad input, live push."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from .conftest import LiveServer

RACE = {
    "race_id": "r1",
    "meeting": "Flemington R7",
    "venue": "Flemington",
    "post_time": "2026-11-21T15:00:00+11:00",
    "runners": [{"number": n, "name": f"Runner {n}"} for n in range(1, 7)],
    "pools": [
        {"pool": "WIN", "takeout_bps": 1500, "profile": "us"},
        {"pool": "PLACE", "takeout_bps": 1500, "profile": "us"},
        {"pool": "EXACTA", "takeout_bps": 2000, "profile": "us"},
    ],
}


async def open_race(client: httpx.AsyncClient, server: LiveServer, race_id: str = "r1") -> None:
    r = await client.post("/races", json={**RACE, "race_id": race_id}, headers=server.admin)
    assert r.status_code == 201, r.text
    r = await client.post(f"/races/{race_id}/open", headers=server.admin)
    assert r.status_code == 200, r.text
    # the read model follows the log a few ms behind (it lets the answer go out first):
    # tests that count boards start from the open race
    seen = await client.get(f"/races/{race_id}", params={"min_position": r.json()["position"]})
    assert seen.status_code == 200, seen.text


@pytest.fixture
async def client(server: LiveServer):
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
        yield c


async def test_a_race_from_schedule_to_settlement(client, server: LiveServer) -> None:
    await open_race(client, server)
    bets = {}
    for runner, stake in [(1, 1_000), (2, 3_000), (3, 6_000)]:
        r = await client.post("/races/r1/bets", json={"selection": [runner], "stake_cents": stake})
        assert r.status_code == 201, r.text
        bets[runner] = r.json()
    last = bets[3]["position"]
    board = (await client.get(f"/races/r1/odds?min_position={last}")).json()
    assert board["position"] >= last
    win = next(p for p in board["board"]["pools"] if p["pool"] == "WIN")
    assert win["gross_cents"] == 10_000  # includes the bet just placed: read-your-writes
    for step, body in [
        ("close", None),
        ("result", {"placings": [[2], [1], [3]]}),
        ("dividends", None),
    ]:
        r = await client.post(f"/races/r1/{step}", json=body, headers=server.admin)
        assert r.status_code == 200, r.text
    done = r.json()["position"]
    dividends = (await client.get(f"/races/r1/dividends?min_position={done}")).json()
    win = next(p for p in dividends["pools"] if p["pool"] == "WIN")
    assert win["dividends"] == [{"selection": [2], "dividend_cents": 560}]  # 8500/3000 → $5.60/$2
    bet = (await client.get(f"/bets/{bets[2]['bet_id']}")).json()
    assert (bet["status"], bet["payout_cents"]) == ("settled", 8_400)
    loser = (await client.get(f"/bets/{bets[1]['bet_id']}")).json()
    assert (loser["payout_cents"], loser["reason"]) == (0, "lost")
    race = (await client.get("/races/r1")).json()
    assert race["status"] == "final"
    assert race["placings"] == [[2], [1], [3]]
    listing = (await client.get("/races")).json()
    assert [r["race_id"] for r in listing["races"]] == ["r1"]


async def test_request_id_makes_a_bet_idempotent(client, server: LiveServer) -> None:
    await open_race(client, server)
    body = {"selection": [1], "stake_cents": 500, "request_id": "req-42"}
    first = (await client.post("/races/r1/bets", json=body)).json()
    again = (await client.post("/races/r1/bets", json=body)).json()
    assert again["bet_id"] == first["bet_id"]
    assert again["position"] == first["position"]
    assert (first["repeated"], again["repeated"]) == (False, True)
    board = (await client.get(f"/races/r1/odds?min_position={first['position']}")).json()
    win = next(p for p in board["board"]["pools"] if p["pool"] == "WIN")
    assert win["gross_cents"] == 500  # placed once
    # an admin command retried with its request id answers as before
    close = {"request_id": "close-1"}
    a = await client.post("/races/r1/close", json=close, headers=server.admin)
    b = await client.post("/races/r1/close", json=close, headers=server.admin)
    assert a.status_code == b.status_code == 200
    assert b.json()["repeated"]
    assert a.json()["position"] == b.json()["position"]
    c = await client.post("/races/r1/close", headers=server.admin)
    assert c.status_code == 409  # without the id, closing twice is refused
    assert c.json()["error"] == "wrong_status"


async def test_batch_of_bets(client, server: LiveServer) -> None:
    await open_race(client, server)
    bets = [{"selection": [1 + i % 6], "stake_cents": 200} for i in range(500)]
    bets.append({"selection": [9], "stake_cents": 200})
    bets.append({"pool": "EXACTA", "selection": [1, 1], "stake_cents": 200})
    r = await client.post("/races/r1/bets/batch", json={"bets": bets, "request_id": "batch-1"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["accepted"], out["rejected"]) == (500, 2)
    assert [x["error"] for x in out["results"][-2:]] == ["unknown_runner", "bad_selection"]
    again = (
        await client.post("/races/r1/bets/batch", json={"bets": bets, "request_id": "batch-1"})
    ).json()
    assert again["accepted"] == 500
    assert all(x["repeated"] for x in again["results"][:500])
    race = (await client.get(f"/races/r1?min_position={out['results'][499]['position']}")).json()
    assert race["bets"] == 500


INVALID = "invalid_request"
NOT_FOUND = "race_not_found"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("post", "/races/r1/bets", {"selection": [1], "stake_cents": 0}, 422, "bad_amount"),
        ("post", "/races/r1/bets", {"selection": [1], "stake_cents": 105}, 422, "bad_increment"),
        ("post", "/races/r1/bets", {"selection": [7], "stake_cents": 200}, 422, "unknown_runner"),
        ("post", "/races/r1/bets", {"selection": [], "stake_cents": 200}, 422, "invalid_request"),
        ("post", "/races/r1/bets", {"selection": [1]}, 422, "invalid_request"),
        ("post", "/races/r1/bets", {"selection": [1], "stake_cents": "x"}, 422, "invalid_request"),
        ("post", "/races/r1/bets", {"pool": "X", "selection": [1], "stake_cents": 2}, 422, INVALID),
        ("post", "/races/nope/bets", {"selection": [1], "stake_cents": 200}, 404, "race_not_found"),
        ("post", "/races/bad id!/bets", {"selection": [1], "stake_cents": 200}, 422, INVALID),
        ("get", "/races/nope", None, 404, "race_not_found"),
        ("get", "/races/nope/odds", None, 404, "race_not_found"),
        ("get", "/bets/nope", None, 404, "unknown_bet"),
        ("get", "/races/r1/dividends", None, 404, "no_dividends"),
        ("get", "/races/r1/odds?min_position=999999", None, 409, "position_not_reached"),
        ("get", "/races/r1/odds?min_position=-1", None, 422, "invalid_request"),
        ("get", "/nowhere", None, 404, "not_found"),
        ("delete", "/races/r1", None, 405, "method_not_allowed"),
    ],
)  # fmt: skip
async def test_bad_requests_get_a_reason(
    client, server: LiveServer, method: str, path: str, body, status: int, code: str
) -> None:
    await open_race(client, server)
    r = await client.request(method, path, json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"] == code
    assert r.json()["message"]


async def test_broken_json_and_oversized_bodies(client, server: LiveServer) -> None:
    await open_race(client, server)
    r = await client.post(
        "/races/r1/bets", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    r = await client.post(
        "/races/r1/bets/batch",
        content=b"x" * (5 * 1024 * 1024),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["error"] == "too_large"


async def test_admin_actions_need_the_admin_key(client, server: LiveServer) -> None:
    r = await client.post("/races", json=RACE)
    assert (r.status_code, r.json()["error"]) == (401, "unauthenticated")
    r = await client.post("/races", json=RACE, headers={"X-API-Key": "wrong"})
    assert (r.status_code, r.json()["error"]) == (403, "forbidden")
    r = await client.post(
        "/races", json=RACE, headers={"Authorization": f"Bearer {server.admin['X-API-Key']}"}
    )
    assert r.status_code == 201
    for path in ("/races/r1/open", "/races/r1/close", "/races/r1/dividends", "/races/r1/abandon"):
        assert (await client.post(path)).status_code == 401


async def test_ops_endpoints(client, server: LiveServer) -> None:
    await open_race(client, server)
    health = (await client.get("/healthz")).json()
    assert health["status"] == "ok"
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready"]
    metrics = (await client.get("/metrics")).text
    assert "oddstream_http_requests_total" in metrics
    assert 'oddstream_commands_total{type="ScheduleRace"} 1.0' in metrics
    assert "oddstream_append_seconds_count 2.0" in metrics  # schedule and open
    r = await client.get("/healthz", headers={"X-Correlation-ID": "abc-123"})
    assert r.headers["x-correlation-id"] == "abc-123"
    spec = (await client.get("/openapi.json")).json()
    assert "/races/{race_id}/bets" in spec["paths"]


async def _sse_boards(client: httpx.AsyncClient, path: str, count: int, headers=None):
    boards = []
    async with client.stream("GET", path, headers=headers or {}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                event["id"] = line[4:]
            elif line.startswith("data: "):
                event["data"] = line[6:]
            elif line == "" and "data" in event:
                boards.append((int(event["id"]), json.loads(event["data"])))
                event = {}
                if len(boards) == count:
                    return boards
    return boards


async def test_sse_pushes_whole_boards_and_resumes(client, server: LiveServer) -> None:
    await open_race(client, server)
    reader = asyncio.create_task(_sse_boards(client, "/races/r1/odds/stream", 3))
    await asyncio.sleep(0.2)
    placed = []
    for _i in range(2):
        r = await client.post("/races/r1/bets", json={"selection": [1], "stake_cents": 1_000})
        placed.append(r.json()["position"])
        await asyncio.sleep(0.15)
    async with asyncio.timeout(10):
        boards = await reader
    positions = [p for p, _ in boards]
    assert positions == sorted(positions)
    assert len(set(positions)) == 3
    last_position, last = boards[-1]
    assert last_position >= placed[-1]
    win = next(p for p in last["board"]["pools"] if p["pool"] == "WIN")
    assert win["gross_cents"] == 2_000
    # a client reconnecting with the last id it saw gets the board that includes what it
    # missed, and nothing older
    resumed_from = boards[0][0]
    (again,) = await _sse_boards(
        client, "/races/r1/odds/stream", 1, headers={"Last-Event-ID": str(resumed_from)}
    )
    assert again[0] > resumed_from
    assert (await client.get("/races/nope/odds/stream")).status_code == 404


async def test_race_listing_filters(client, server: LiveServer) -> None:
    for race_id in ("a1", "a2", "a3"):
        await open_race(client, server, race_id)
    await client.post("/races/a2/close", headers=server.admin)
    listing = (await client.get("/races?limit=2")).json()
    assert [r["race_id"] for r in listing["races"]] == ["a2", "a3"]
    closed = (await client.get("/races?status=closed")).json()
    assert [r["race_id"] for r in closed["races"]] == ["a2"]
    both = (await client.get("/races?status=open,closed&limit=10")).json()
    assert len(both["races"]) == 3
    bad = await client.get("/races?status=running")
    assert bad.status_code == 422
    assert "running" in bad.json()["message"]


@pytest.fixture
def strict_server(tmp_path):
    """The service with readiness allowing a lag of only 5 events."""
    from .conftest import live_settings, run_server

    yield from run_server(live_settings(tmp_path, ready_max_lag=5))


async def test_reads_and_readiness_do_not_wait_for_their_own_kind_of_event(
    strict_server: LiveServer,
) -> None:
    """Issue 9 item 6: the race read model moved only on race events, so a race read
    with ``min_position`` of a wallet write waited and answered 409, and /readyz
    answered 503 on an idle node once enough other events had been written."""
    server = strict_server
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        await open_race(client, server)
        for _ in range(20):  # four times the allowed lag, none of them a race event
            r = await client.post("/wallet/alice/credit", json={"amount": 1}, headers=server.admin)
            assert r.status_code == 200, r.text
        credited = r.json()["position"]
        for path in ("/races/r1", "/races/r1/odds"):
            r = await client.get(f"{path}?min_position={credited}")
            assert r.status_code == 200, r.text
            assert r.json()["position"] >= credited
        # and the wallet read model over race events
        r = await client.post("/races/r1/close", headers=server.admin)
        closed = r.json()["position"]
        r = await client.get(f"/wallet/alice/balance?min_position={closed}", headers=server.admin)
        assert r.status_code == 200, r.text
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
