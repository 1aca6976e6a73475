"""Faults in services mode, on loopback, each bounded in time: a worker SIGKILLed under
load, NATS and PostgreSQL restarted under load, Redis flushed while serving, an API
process killed under a live stream.

What every one of them must leave true: each acknowledged bet is in the log exactly
once; a retry with the same request id answers ``repeated`` and writes nothing; an
answer in the outage is a 201 or a clear 503 with ``Retry-After``, never a 500."""

from __future__ import annotations

import asyncio
import collections
import json
import time
from typing import Any

import httpx
import pytest

from oddstream.eventstore.postgres import PostgresEventStore

from . import engines
from .conftest import ADMIN, Cluster, customer
from .load import Sent, bettors, retry
from .test_services import schedule

RACES = [f"f{i}" for i in range(8)]


async def prepare(url: str, *, wallets: tuple[str, ...] = ()) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=15) as client:
        for race in RACES:
            await schedule(client, race)
        for wallet in wallets:
            r = await client.post(
                f"/wallet/{wallet}/credit", json={"amount_cents": 10_000_000}, headers=ADMIN
            )
            assert r.status_code == 200, r.text


async def placed_bets(pg_url: str, schema: str) -> collections.Counter[str]:
    """How many times each bet id was placed, from the log."""
    store = await PostgresEventStore.open(pg_url, schema=schema)
    try:
        counts: collections.Counter[str] = collections.Counter()
        for race in RACES:
            for event in await store.read_stream(f"race-{race}"):
                if event.type == "tote.BetPlaced":
                    counts[event.data["bet_id"]] += 1
        return counts
    finally:
        await store.close()


def headers_for(sent: Sent) -> dict[str, str]:
    return customer(sent.wallet) if sent.wallet else {}


async def settle_exactly_once(
    url: str, sent: list[Sent], pg_url: str, schema: str
) -> dict[str, Any]:
    """Retry every request that was not acknowledged (same request id) until it is,
    retry every acknowledged one (must answer ``repeated``), then check the log holds
    each acknowledged bet exactly once. Returns a summary."""
    acked = {s.request_id: s for s in sent if s.status == 201}
    unknown = [s for s in sent if s.status != 201 and s.request_id not in acked]
    bad = [s for s in sent if isinstance(s.status, int) and s.status >= 500 and s.status != 503]
    assert bad == [], [(s.status, s.body) for s in bad[:5]]
    no_retry_after = [s for s in sent if s.status == 503 and not s.retry_after]
    assert no_retry_after == [], [s.body for s in no_retry_after[:5]]
    bet_ids = {rid: s.body["bet_id"] for rid, s in acked.items()}
    for s in unknown:  # their outcome may be unknown: the retry tells
        r = await retry(url, s, headers_for(s))
        assert r.status_code == 201, r.text
        bet_ids[s.request_id] = r.json()["bet_id"]
    before = await placed_bets(pg_url, schema)
    sample = list(acked.values())[:: max(1, len(acked) // 50)]
    for s in sample:
        r = await retry(url, s, headers_for(s))
        assert r.status_code == 201, r.text
        assert r.json()["repeated"] is True
        assert r.json()["bet_id"] == s.body["bet_id"]
    after = await placed_bets(pg_url, schema)
    assert after == before  # the retries wrote nothing
    assert set(bet_ids.values()) <= set(after)
    assert all(count == 1 for count in after.values())
    assert len(after) == len(set(bet_ids.values()))  # nothing placed that was not asked for
    return {"acked": len(acked), "retried_unknown": len(unknown), "bets": len(after)}


async def test_sigkill_a_worker_under_load(cluster: Cluster, pg_url: str) -> None:
    w0 = cluster.worker("w0")
    cluster.worker("w1")
    api_a, api_b = cluster.api(), cluster.api()
    await prepare(api_a.url, wallets=("alice", "bob"))
    stop = asyncio.Event()
    load = asyncio.create_task(
        bettors(
            [api_a.url, api_b.url],
            RACES,
            stop,
            headers_of={"alice": customer("alice"), "bob": customer("bob")},
        )
    )
    await asyncio.sleep(2.0)
    killed_at = time.monotonic()
    await asyncio.to_thread(cluster.kill, w0)
    await asyncio.sleep(4.0)
    stop.set()
    sent = await load
    # failover: the longest any bet waited because of the kill (in flight at the kill or
    # sent after it, answered)
    waits = [
        s.ended - max(s.started, killed_at)
        for s in sent
        if s.ended >= killed_at and s.status == 201
    ]
    failover = max(waits)
    after_kill = [s for s in sent if s.started >= killed_at + 1.5]
    assert after_kill
    assert all(s.status == 201 for s in after_kill), collections.Counter(
        str(s.status) for s in after_kill
    )
    schema = cluster.env["ODDSTREAM_PG_SCHEMA"]
    summary = await settle_exactly_once(api_b.url, sent, pg_url, schema)
    print(json.dumps({"failover_s": round(failover, 3), **summary}))
    assert failover <= 5.0
    await no_bet_paid_twice(api_b.url, pg_url, schema, ("alice", "bob"))


SETTLEMENTS = {"wallet.WinningsCredited", "wallet.StakeLost", "wallet.StakeRefunded"}


async def no_bet_paid_twice(
    url: str, pg_url: str, schema: str, wallets: tuple[str, ...], timeout: float = 60.0
) -> None:
    """Run every race to its dividends, then wait (bounded) until each wallet bet the
    races hold is settled in its wallet exactly once and nothing is left in play."""
    async with httpx.AsyncClient(base_url=url, timeout=15) as client:
        for race in RACES:
            for step, body in [
                ("close", None),
                ("result", {"placings": [[1], [2], [3]]}),
                ("dividends", None),
            ]:
                r = await client.post(f"/races/{race}/{step}", json=body, headers=ADMIN)
                assert r.status_code == 200, r.text
    store = await PostgresEventStore.open(pg_url, schema=schema)
    try:
        placed: dict[str, str] = {}
        for race in RACES:
            for event in await store.read_stream(f"race-{race}"):
                if event.type == "tote.BetPlaced" and event.data.get("wallet_id"):
                    placed[event.data["bet_id"]] = event.data["wallet_id"]
        assert placed  # the load did bet from wallets
        deadline = time.monotonic() + timeout
        while True:
            settled: collections.Counter[str] = collections.Counter()
            in_play = 0
            for wallet in wallets:
                for event in await store.read_stream(f"wallet-{wallet}"):
                    if event.type in SETTLEMENTS:
                        settled[event.data["bet_id"]] += 1
                async with httpx.AsyncClient(timeout=15) as client:
                    r = await client.get(f"{url}/wallet/{wallet}/balance", headers=customer(wallet))
                in_play += r.json()["in_play_cents"]
            assert all(n == 1 for n in settled.values()), settled.most_common(3)
            assert set(settled) <= set(placed)
            if set(settled) == set(placed) and in_play == 0:
                return
            if time.monotonic() > deadline:
                missing = set(placed) - set(settled)
                raise AssertionError(f"{len(missing)} bets unsettled, {in_play} cents in play")
            await asyncio.sleep(0.5)
    finally:
        await store.close()


async def run_outage(cluster: Cluster, stop_engine, start_engine, outage: float):  # type: ignore[no-untyped-def]
    """Bet through two API processes while an engine is stopped for ``outage`` seconds
    and started again; the requests and how long the engine was away."""
    cluster.worker("w0")
    cluster.worker("w1")
    api_a, api_b = cluster.api(), cluster.api()
    await prepare(api_a.url, wallets=("alice",))
    stop = asyncio.Event()
    load = asyncio.create_task(
        bettors([api_a.url, api_b.url], RACES, stop, headers_of={"alice": customer("alice")})
    )
    await asyncio.sleep(1.5)
    down_at = time.monotonic()
    try:
        await asyncio.to_thread(stop_engine)
        await asyncio.sleep(outage)
    finally:
        await asyncio.to_thread(start_engine)
    up_at = time.monotonic()
    # the deployment comes back by itself: every API process ready again, bets go through
    for api in (api_a, api_b):
        cluster.wait_ready(api, timeout=60)
    await asyncio.sleep(3.0)
    stop.set()
    sent = await load
    late = [s for s in sent if s.started >= time.monotonic() - 2.0]
    return sent, down_at, up_at, api_b.url, late


async def test_nats_restarted_under_load(cluster: Cluster, pg_url: str) -> None:
    sent, down_at, up_at, url, late = await run_outage(
        cluster, engines.stop_nats, engines.start_nats, outage=3.0
    )
    during = [s for s in sent if down_at <= s.started <= up_at]
    assert during  # the load went on through the outage
    assert all(s.status in (201, 503) for s in during), collections.Counter(
        str(s.status) for s in during
    )
    assert late
    assert all(s.status == 201 for s in late)  # and afterwards it serves again
    summary = await settle_exactly_once(url, sent, pg_url, cluster.env["ODDSTREAM_PG_SCHEMA"])
    print(json.dumps({"outage": "nats", **summary}))


async def test_redis_flushed_while_serving(cluster: Cluster, redis_url: str) -> None:
    """Every read that waits for the credit just made shows exactly the balance the log
    holds, before, during and after the read model's keys vanish (this deployment's
    keys: the test Redis is shared, so no FLUSHALL) and are rebuilt from the log."""
    import redis.asyncio as aioredis

    cluster.worker("w0")
    api_a, api_b = cluster.api(), cluster.api()
    r = aioredis.Redis.from_url(redis_url)
    expected = 0
    sources: collections.Counter[str] = collections.Counter()
    async with (
        httpx.AsyncClient(base_url=api_a.url, timeout=15) as ca,
        httpx.AsyncClient(base_url=api_b.url, timeout=15) as cb,
    ):
        for i in range(60):
            if i in (20, 40):
                keys = [k async for k in r.scan_iter(match=f"{cluster.redis_prefix}*")]
                assert keys
                await r.delete(*keys)
            credit = await ca.post(
                "/wallet/alice/credit", json={"amount_cents": 100 + i}, headers=ADMIN
            )
            assert credit.status_code == 200, credit.text
            expected += 100 + i
            for client in (ca, cb):
                read = await client.get(
                    f"/wallet/alice/balance?min_position={credit.json()['position']}",
                    headers=customer("alice"),
                )
                assert read.status_code == 200, read.text
                assert read.json()["balance_cents"] == expected, (i, read.json())
                sources[read.json()["source"]] += 1
        # rebuilt: the read model answers again, with every transaction
        for _ in range(100):
            read = await cb.get("/wallet/alice/balance", headers=customer("alice"))
            if read.json()["source"] == "read_model":
                break
            await asyncio.sleep(0.1)
        assert read.json() | {"source": "read_model"} == read.json()
        page = await cb.get("/wallet/alice/transactions?limit=100", headers=customer("alice"))
        versions = [t["version"] for t in page.json()["transactions"]]
        assert versions == list(range(61, 0, -1))  # opened, then the 60 credits
    await r.aclose()
    print(json.dumps({"reads_by_source": sources}))


async def next_event(lines: Any) -> tuple[int, dict[str, Any]]:
    """The next SSE event's id and data."""
    event_id, data = None, None
    async for line in lines:
        if line.startswith("id: "):
            event_id = int(line.removeprefix("id: "))
        elif line.startswith("data: "):
            data = json.loads(line.removeprefix("data: "))
        elif line == "" and data is not None:
            assert event_id is not None
            return event_id, data
    raise EOFError("the stream ended")


async def test_an_api_process_killed_under_a_live_stream(cluster: Cluster) -> None:
    """The client of a killed API process reconnects to another with ``Last-Event-ID``;
    its next board is the whole state, with every bet taken meanwhile."""
    cluster.worker("w0")
    api_a, api_b = cluster.api(), cluster.api()
    await prepare(api_b.url)
    race = RACES[0]
    async with httpx.AsyncClient(timeout=15) as client:
        r = await client.post(
            f"{api_b.url}/races/{race}/bets", json={"selection": [1], "stake_cents": 300}
        )
        async with client.stream("GET", f"{api_a.url}/races/{race}/odds/stream") as stream:
            lines = stream.aiter_lines()
            last_id, _ = await asyncio.wait_for(next_event(lines), 10)
            await asyncio.to_thread(cluster.kill, api_a)
            with pytest.raises((httpx.HTTPError, EOFError)):
                await asyncio.wait_for(next_event(lines), 10)
        # bets while the client was away, taken by the other API process
        stakes = 300
        for runner in (2, 3, 2):
            r = await client.post(
                f"{api_b.url}/races/{race}/bets",
                json={"selection": [runner], "stake_cents": 500},
            )
            assert r.status_code == 201, r.text
            stakes += 500
        wanted = r.json()["position"]
        async with client.stream(
            "GET",
            f"{api_b.url}/races/{race}/odds/stream",
            headers={"Last-Event-ID": str(last_id)},
        ) as stream:
            lines = stream.aiter_lines()
            event_id, board = await asyncio.wait_for(next_event(lines), 10)
            while event_id < wanted:
                event_id, board = await asyncio.wait_for(next_event(lines), 10)
    assert event_id > last_id
    win = next(p for p in board["board"]["pools"] if p["pool"] == "WIN")
    assert win["gross_cents"] == stakes  # the whole state: nothing missed


async def test_postgres_restarted_under_load(cluster: Cluster, pg_url: str) -> None:
    sent, down_at, up_at, url, late = await run_outage(
        cluster, engines.stop_postgres, engines.start_postgres, outage=3.0
    )
    during = [s for s in sent if down_at <= s.started <= up_at]
    assert during
    assert all(s.status in (201, 503) for s in during), collections.Counter(
        str(s.status) for s in during
    )
    assert late
    assert all(s.status == 201 for s in late)  # and afterwards it serves again
    summary = await settle_exactly_once(url, sent, pg_url, cluster.env["ODDSTREAM_PG_SCHEMA"])
    print(json.dumps({"outage": "postgres", **summary}))


async def test_a_worker_joining_under_load_takes_its_share_without_a_stall(
    cluster: Cluster, pg_url: str
) -> None:
    """A third worker joins a loaded deployment: the two others give it partitions
    (unsubscribe, finish what is in flight, release), it takes them. No request may be
    left unanswered on the way (each one the old owner received is answered or
    refused ``not_owner``, and asked again of the next owner): every bet is a 201,
    none waits out the deadline, and none is ``outcome_unknown``."""
    cluster.worker("w0")
    cluster.worker("w1")
    api_a, api_b = cluster.api(), cluster.api()
    await prepare(api_a.url, wallets=("alice", "bob"))
    stop = asyncio.Event()
    load = asyncio.create_task(
        bettors(
            [api_a.url, api_b.url],
            RACES,
            stop,
            tasks=12,
            pause=0.002,
            headers_of={"alice": customer("alice"), "bob": customer("bob")},
        )
    )
    await asyncio.sleep(1.5)
    for name in ("w2", "w3"):  # two joins: two rounds of handovers
        await asyncio.to_thread(cluster.worker, name)
        await asyncio.sleep(2.0)
    stop.set()
    sent = await load
    slow = max(s.ended - s.started for s in sent)
    failed = collections.Counter(str(s.status) for s in sent if s.status != 201)
    print(json.dumps({"bets": len(sent), "slowest_s": round(slow, 3), "failed": failed}))
    assert failed == {}, [s.body for s in sent if s.status != 201][:3]
    assert slow < 3.0  # the deadline is 10 s here
    schema = cluster.env["ODDSTREAM_PG_SCHEMA"]
    await settle_exactly_once(api_b.url, sent, pg_url, schema)
    await no_bet_paid_twice(api_b.url, pg_url, schema, ("alice", "bob"))
