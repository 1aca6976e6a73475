"""Ownership from PostgreSQL advisory locks: every partition and consumer has exactly
one owner; workers joining and leaving rebalance; a lost lock connection deposes a
worker at once; and the owners never overlap (each gain follows the previous owner's
loss)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import psycopg
import pytest

from oddstream.cluster.leases import Leases

PARTITIONS = 12
CONSUMERS = ("cashier", "wallets")


class Timeline:
    """Every gain and loss of every worker, in order, to check that owners never
    overlap."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, str, str, Any]] = []
        self.owner: dict[tuple[str, Any], str] = {}
        self.overlaps: list[str] = []

    def hooks(self, name: str) -> dict[str, Any]:
        async def gain(kind: str, what: Any) -> None:
            holder = self.owner.get((kind, what))
            if holder is not None:
                self.overlaps.append(f"{name} took {kind} {what} still held by {holder}")
            self.owner[(kind, what)] = name
            self.events.append((time.monotonic(), name, "gain", kind, what))

        async def lose(kind: str, what: Any) -> None:
            if self.owner.get((kind, what)) == name:
                del self.owner[(kind, what)]
            self.events.append((time.monotonic(), name, "lose", kind, what))

        return {"on_gain": gain, "on_lose": lose}


def leases(pg_url: str, schema: str, timeline: Timeline, name: str) -> Leases:
    return Leases(
        pg_url,
        schema=schema,
        partitions=PARTITIONS,
        consumers=CONSUMERS,
        every=0.05,
        name=name,
        **timeline.hooks(name),
    )


async def settle(*workers: Leases, rounds: int = 6) -> None:
    for _ in range(rounds):
        for worker in workers:
            await worker.tick()


def assert_split(*workers: Leases) -> None:
    held = [w.held.partitions for w in workers]
    assert set().union(*held) == set(range(PARTITIONS))
    assert sum(len(h) for h in held) == PARTITIONS  # disjoint
    share = -(-PARTITIONS // len(workers))
    assert all(len(h) <= share for h in held)
    consumers = [c for w in workers for c in w.held.consumers]
    assert sorted(consumers) == sorted(CONSUMERS)


async def test_workers_share_partitions_and_consumers_and_rebalance(
    pg_url: str, pg_schema: str
) -> None:
    timeline = Timeline()
    a = leases(pg_url, pg_schema, timeline, "a")
    b = leases(pg_url, pg_schema, timeline, "b")
    c = leases(pg_url, pg_schema, timeline, "c")
    await a.tick()
    assert a.held.partitions == set(range(PARTITIONS))
    await settle(a, b)
    assert_split(a, b)
    await settle(a, b, c)
    assert_split(a, b, c)
    await b.stop()  # leaving: gives everything up at once
    await settle(a, c)
    assert_split(a, c)
    await a.stop()
    await c.stop()
    assert timeline.overlaps == []


async def test_a_lost_lock_connection_deposes_the_worker(pg_url: str, pg_schema: str) -> None:
    timeline = Timeline()
    a = leases(pg_url, pg_schema, timeline, "a")
    b = leases(pg_url, pg_schema, timeline, "b")
    await settle(a, b)
    held_by_a = set(a.held.partitions)
    assert held_by_a
    # PostgreSQL ends a's lock connection (as a restart or a cut network would)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'a'"
        )
    deadline = time.monotonic() + 5  # the backend ends asynchronously
    while b.held.partitions != set(range(PARTITIONS)) and time.monotonic() < deadline:
        await b.tick()  # b takes a's partitions as soon as PostgreSQL freed them
        await asyncio.sleep(0.02)
    assert b.held.partitions == set(range(PARTITIONS))
    await a.tick()  # a notices: deposed from all it held, before it takes anything again
    assert a.losses == 1
    lost = {e[4] for e in timeline.events if e[1] == "a" and e[2] == "lose"}
    assert held_by_a <= lost
    await settle(a, b)
    assert_split(a, b)
    await a.stop()
    await b.stop()


async def test_owners_never_overlap_under_churn(pg_url: str, pg_schema: str) -> None:
    """Workers join and leave at random moments while all of them rebalance in the
    background: no partition is ever gained by one worker while another still holds it
    (a partition is given up — its commands finished — before its lock is released).

    A worker whose lock connection is cut is the exception the store's version check
    fences: PostgreSQL frees its locks before it can notice (``test_fence.py``)."""
    timeline = Timeline()
    workers = [leases(pg_url, pg_schema, timeline, f"w{i}") for i in range(3)]
    for worker in workers:
        await worker.start()
    for round_ in range(8):
        await asyncio.sleep(0.15 + 0.05 * (round_ % 3))
        victim = workers[round_ % 3]
        await victim.stop()
        if round_ % 2:
            await asyncio.sleep(0.1)
        await victim.start()
    await asyncio.sleep(0.5)
    for worker in workers:
        await worker.stop()
    assert timeline.overlaps == []
    assert len(timeline.events) > 3 * PARTITIONS  # it did churn


async def test_a_failed_gain_lets_the_lock_go_and_is_tried_again(
    pg_url: str, pg_schema: str
) -> None:
    """Taking a consumer (or a partition) can fail — the cashier's follower reads its
    checkpoint from a store that is not back yet, the read model's Redis is down. The
    lock must not stay taken without an owner: it would count as held by this worker
    for every worker (``pg_locks``) and nobody would ever run that consumer again."""
    timeline = Timeline()
    hooks = timeline.hooks("a")
    failures = {"cashier": 1, 3: 1}  # the first gain of each fails

    async def gain(kind: str, what: Any) -> None:
        if failures.get(what, 0) > 0:
            failures[what] -= 1
            raise RuntimeError(f"{kind} {what} cannot start yet")
        await hooks["on_gain"](kind, what)

    a = Leases(
        pg_url,
        schema=pg_schema,
        partitions=PARTITIONS,
        consumers=CONSUMERS,
        every=0.05,
        name="a",
        on_gain=gain,
        on_lose=hooks["on_lose"],
    )
    b = leases(pg_url, pg_schema, timeline, "b")
    try:
        for _ in range(3):
            with contextlib.suppress(RuntimeError):  # a failed gain may be raised
                await a.tick()
        await settle(a, b)
        assert failures == {"cashier": 0, 3: 0}  # both failed once
        assert_split(a, b)  # and were taken afterwards, by one worker or the other
    finally:
        await a.stop()
        await b.stop()
    assert timeline.overlaps == []


async def test_a_lock_connection_that_stops_answering_deposes_the_worker(
    pg_url: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost host or a cut network ends no connection: nothing comes back, and the
    TCP connection looks alive on both sides for hours (the kernel's keepalive default
    is 2 h). PostgreSQL must be told to probe this session (server-side keepalives: it
    then frees the locks of a host that is gone within seconds), and the worker must not
    wait for ever on a look that gets no answer: it deposes itself, as for a lost
    connection."""
    timeline = Timeline()
    a = leases(pg_url, pg_schema, timeline, "a")
    await a.tick()
    assert a.held.partitions == set(range(PARTITIONS))
    conn = await a._connection()
    settings = {}
    for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count"):
        row = await (await conn.execute(f"SHOW {name}")).fetchone()
        assert row is not None
        settings[name] = int(row[0])
    assert 0 < settings["tcp_keepalives_idle"] <= 10, settings
    assert 0 < settings["tcp_keepalives_interval"] <= 5, settings
    # the next look gets no answer (the network is cut)
    execute = conn.execute

    async def no_answer(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(3600)
        return await execute(*args, **kwargs)

    conn.execute = no_answer  # type: ignore[method-assign]
    monkeypatch.setattr("oddstream.cluster.leases.QUERY_SECONDS", 0.5)
    async with asyncio.timeout(30):
        await a.tick()
    assert a.losses == 1
    assert a.held.partitions == set()
    await a.stop()


async def test_stop_ends_a_loop_that_swallowed_its_cancellation(
    pg_url: str, pg_schema: str
) -> None:
    """Taking a consumer reads the store, and psycopg turns the cancellation of a read
    in flight into a query error: the loop counted it as a consumer it could not take
    and went on rebalancing, so ``stop`` (one cancellation) waited for it for ever — a
    worker stopped while it took over another's share never stopped."""
    calls = 0
    taking = asyncio.Event()

    async def gain(kind: str, what: Any) -> None:
        nonlocal calls
        if kind != "consumer":
            return
        calls += 1
        if calls == 1:  # at start: not taken yet, taken by the loop below
            raise RuntimeError("not yet")
        if calls == 2:  # a read in flight when stop comes: its cancellation swallowed
            taking.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                raise RuntimeError("query canceled") from None

    async def lose(kind: str, what: Any) -> None:
        pass

    worker = Leases(
        pg_url,
        schema=pg_schema,
        partitions=2,
        consumers=("c",),
        every=0.05,
        name="w",
        on_gain=gain,
        on_lose=lose,
    )
    await worker.start()
    await asyncio.wait_for(taking.wait(), 10)
    stopping = asyncio.create_task(worker.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5)
    if not done:  # (cancelling it lets the old stop go on: it swallows that cancel)
        stopping.cancel()
        await asyncio.wait({stopping}, timeout=5)
    assert done, "stop waited for a loop that went on rebalancing"
    stopping.result()
    assert worker.held.partitions == set()
    assert worker.held.consumers == set()
    assert not worker.connected
