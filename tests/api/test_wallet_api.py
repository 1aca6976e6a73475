"""The wallet API over real HTTP: the POC's shapes, overdrafts, paging, roles, and bets
paid from wallets with winnings credited back."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
import redis

from .conftest import LiveServer
from .test_tote_api import open_race


@pytest.fixture
async def client(server: LiveServer):
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
        yield c


async def credit(client, server, wallet: str, amount, **extra) -> httpx.Response:
    return await client.post(
        f"/wallet/{wallet}/credit", json={"amount": amount, **extra}, headers=server.admin
    )


async def balance(client, server, wallet: str, after: int | None = None) -> dict:
    query = f"?min_position={after}" if after else ""
    r = await client.get(f"/wallet/{wallet}/balance{query}", headers=server.admin)
    assert r.status_code == 200, r.text
    return r.json()


async def test_credit_debit_balance_in_the_poc_shapes(client, server: LiveServer) -> None:
    r = await credit(client, server, "alice", 5)
    assert r.status_code == 200, r.text
    assert r.json()["balance_cents"] == 500
    assert r.json()["balance"] == 5.0
    r = await client.post("/wallet/alice/debit", json={"amount": 1.25}, headers=server.admin)
    assert r.status_code == 200, r.text
    # amounts may come as decimal strings too, exactly
    r = await client.post("/wallet/alice/debit", json={"amount": "0.75"}, headers=server.admin)
    assert r.status_code == 200, r.text
    body = await balance(client, server, "alice", r.json()["position"])
    assert (body["balance_cents"], body["balance"]) == (300, 3.0)


async def test_an_overdraft_is_409_and_recorded(client, server: LiveServer) -> None:
    await credit(client, server, "alice", 5)
    r = await client.post(
        "/wallet/alice/debit", json={"amount": 6}, headers=server.customer("alice")
    )
    assert r.status_code == 409
    assert r.json()["error"] == "insufficient_funds"
    assert "5.00 available" in r.json()["message"]
    r = await client.get(
        f"/wallet/alice/transactions?min_position={r.json()['position']}",
        headers=server.customer("alice"),
    )
    assert r.status_code == 200, r.text
    kinds = [t["type"] for t in r.json()["transactions"]]
    assert kinds == ["DebitRejected", "Credited", "WalletOpened"]
    assert (await balance(client, server, "alice"))["balance_cents"] == 500


async def test_transactions_are_paged_newest_first(client, server: LiveServer) -> None:
    last = 0
    for i in range(1, 8):
        last = (await credit(client, server, "bob", i)).json()["position"]
    seen = []
    before = None
    while True:
        query = f"?limit=3&min_position={last}" + (f"&before={before}" if before else "")
        page = (await client.get(f"/wallet/bob/transactions{query}", headers=server.admin)).json()
        seen += [t["version"] for t in page["transactions"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == list(range(8, 0, -1))  # 7 credits after the opening, newest first


async def test_request_ids_make_credits_idempotent(client, server: LiveServer) -> None:
    first = await credit(client, server, "alice", 5, request_id="dep-1")
    again = await credit(client, server, "alice", 5, request_id="dep-1")
    assert again.json()["repeated"] is True
    assert again.json()["position"] == first.json()["position"]
    assert (await balance(client, server, "alice", again.json()["position"]))[
        "balance_cents"
    ] == 500


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"amount": 0}, "bad_amount"),
        ({"amount": -3}, "bad_amount"),
        ({"amount": 1.005}, "bad_amount"),
        ({"amount": 5, "amount_cents": 500}, "invalid_request"),
        ({}, "invalid_request"),
        ({"amount": "five"}, "invalid_request"),
        ({"amount": "NaN"}, "bad_amount"),
        ({"amount": "Infinity"}, "bad_amount"),
        ({"amount_cents": 1.5}, "invalid_request"),
        ({"amount": True}, "invalid_request"),
        ({"amount": 5, "extra": 1}, "invalid_request"),
        ({"amount": 1e30}, "bad_amount"),
    ],
)
async def test_bad_amounts_are_422_with_a_reason(client, server: LiveServer, body, code) -> None:
    r = await client.post("/wallet/alice/credit", json=body, headers=server.admin)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == code
    assert r.json()["message"]


async def test_roles(client, server: LiveServer) -> None:
    await credit(client, server, "alice", 5)
    alice, bob = server.customer("alice"), server.customer("bob")
    # no key: 401, whether the wallet exists or not
    for wallet in ("alice", "nobody"):
        r = await client.get(f"/wallet/{wallet}/balance")
        assert (r.status_code, r.json()["error"]) == (401, "unauthenticated")
    # a customer never reads or moves another wallet, and cannot tell whether it exists
    for wallet in ("alice", "nobody"):
        for method, path, body in [
            ("GET", "balance", None),
            ("GET", "transactions", None),
            ("POST", "debit", {"amount": 1}),
            ("POST", "credit", {"amount": 1}),
        ]:
            r = await client.request(method, f"/wallet/{wallet}/{path}", json=body, headers=bob)
            assert (r.status_code, r.json()["error"]) == (403, "forbidden"), (wallet, path)
            assert wallet not in r.text
    # a customer may not credit even its own wallet; an unknown key is refused
    r = await client.post("/wallet/alice/credit", json={"amount": 1}, headers=alice)
    assert r.status_code == 403
    r = await client.get("/wallet/alice/balance", headers={"X-API-Key": "x" * 20})
    assert r.status_code == 403
    # customer keys cannot do admin actions
    r = await client.post("/races/r9/close", headers=alice)
    assert (r.status_code, r.json()["error"]) == (403, "forbidden")
    # its own wallet: yes (Bearer works too)
    r = await client.get(
        "/wallet/alice/balance", headers={"Authorization": "Bearer " + alice["X-API-Key"]}
    )
    assert r.status_code == 200
    # an admin reading a wallet that does not exist: 404
    r = await client.get("/wallet/nobody/balance", headers=server.admin)
    assert (r.status_code, r.json()["error"]) == (404, "wallet_not_found")


async def test_bets_from_a_wallet_and_winnings_back(client, server: LiveServer) -> None:
    await open_race(client, server)
    await credit(client, server, "alice", 100)
    await credit(client, server, "bob", 100)
    alice, bob = server.customer("alice"), server.customer("bob")
    r = await client.post(
        "/races/r1/bets", json={"selection": [1], "stake_cents": 3_000}, headers=alice
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/races/r1/bets", json={"selection": [2], "stake_cents": 1_000}, headers=bob
    )
    assert r.status_code == 201, r.text
    # too big for the wallet: 409, the race never sees it
    r = await client.post(
        "/races/r1/bets", json={"selection": [2], "stake_cents": 50_000}, headers=bob
    )
    assert (r.status_code, r.json()["error"]) == (409, "insufficient_funds")
    # a customer cannot bet from another wallet, and nobody anonymously from any
    r = await client.post(
        "/races/r1/bets",
        json={"selection": [2], "stake_cents": 100, "wallet_id": "alice"},
        headers=bob,
    )
    assert r.status_code == 403
    r = await client.post(
        "/races/r1/bets", json={"selection": [2], "stake_cents": 100, "wallet_id": "alice"}
    )
    assert r.status_code == 401
    # a cash bet (no key) still works
    r = await client.post("/races/r1/bets", json={"selection": [3], "stake_cents": 1_000})
    assert r.status_code == 201
    after = r.json()["position"]
    body = await balance(client, server, "alice", after)
    assert (body["balance_cents"], body["in_play_cents"]) == (7_000, 3_000)
    for step, payload in [
        ("close", None),
        ("result", {"placings": [[1], [2], [3]]}),
        ("dividends", None),
    ]:
        r = await client.post(f"/races/r1/{step}", json=payload, headers=server.admin)
        assert r.status_code == 200, r.text
    # WIN pool 50.00, 15% takeout, us profile: 42.50 net over 30.00 → $1.41 a $1 (broken
    # down to the dime: $2.80 a $2 unit) — alice gets 30.00 × 1.40 = 42.00
    dividends = (await client.get("/races/r1/dividends")).json()
    win = next(p for p in dividends["pools"] if p["pool"] == "WIN")
    dividend = win["dividends"][0]["dividend_cents"]
    payout = 3_000 * dividend // win["price_base_cents"]
    for _ in range(100):
        body = await balance(client, server, "alice")
        if body["in_play_cents"] == 0:
            break
        await asyncio.sleep(0.05)
    assert (body["balance_cents"], body["in_play_cents"]) == (7_000 + payout, 0)
    assert payout == 4_200
    bob_now = await balance(client, server, "bob")
    assert (bob_now["balance_cents"], bob_now["in_play_cents"]) == (9_000, 0)


@pytest.fixture
def redis_server(tmp_path, redis_url: str):
    """The service with its wallet read model in Redis, under a prefix of its own."""
    from .conftest import live_settings, run_server

    prefix = f"test-{uuid.uuid4().hex[:10]}:"
    settings = live_settings(tmp_path, redis_url=redis_url, redis_prefix=prefix)
    try:
        for server in run_server(settings):
            yield server, prefix
    finally:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


async def test_a_flushed_redis_is_repopulated_while_serving(redis_server, redis_url) -> None:
    server, prefix = redis_server
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for amount in (5, 7, 11):
            r = await credit(client, server, "alice", amount)
        body = await balance(client, server, "alice", r.json()["position"])
        assert (body["balance_cents"], body["source"]) == (2_300, "read_model")
        # flush this service's keys (FLUSHALL would hit other tests sharing this Redis)
        redis_client = redis.Redis.from_url(redis_url)
        prefix = body and (await client.get("/healthz")).json()  # the service is up
        assert prefix["status"] == "ok"
        keys = [
            k for k in redis_client.scan_iter(match="test-*") if b"alice" in k or b"checkpoint" in k
        ]
        assert keys
        redis_client.delete(*keys)
        # every read meanwhile shows a balance the log justifies, and the model comes back
        for _ in range(200):
            body = await balance(client, server, "alice")
            assert body["balance_cents"] == 2_300
            if body["source"] == "read_model":
                r = await client.get("/wallet/alice/transactions", headers=server.admin)
                if r.status_code == 200 and len(r.json()["transactions"]) == 4:
                    break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the read model was not repopulated")
        assert [t["type"] for t in r.json()["transactions"]] == [
            "Credited",
            "Credited",
            "Credited",
            "WalletOpened",
        ]
