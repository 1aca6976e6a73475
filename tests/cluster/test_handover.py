"""A worker giving a partition up, in one process (the worker's own event loop), with
its requests on the wire: every request the old owner received is answered (``not_owner``
when it was not executed, so the router asks the next owner), none is left without an
answer until the caller's deadline."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator

import nats
import psycopg
import pytest
from nats.errors import TimeoutError as NatsTimeout

from oddstream.cluster import wire
from oddstream.cluster.partitions import race_partition
from oddstream.cluster.router import command_subject
from oddstream.cluster.worker import Worker
from oddstream.config import Settings

PARTITIONS = 4


def race_in(partition: int) -> str:
    """A race id whose stream is in ``partition``."""
    return next(f"r{i}" for i in range(10_000) if race_partition(f"r{i}", PARTITIONS) == partition)


@pytest.fixture
async def worker(
    pg_url: str, pg_schema: str, redis_url: str, nats_url: str
) -> AsyncIterator[Worker]:
    settings = Settings(
        store_url=pg_url,
        pg_schema=pg_schema,
        nats_url=nats_url,
        redis_url=redis_url,
        redis_prefix=f"t{uuid.uuid4().hex[:10]}:",
        partitions=PARTITIONS,
        rebalance_seconds=60,  # no rebalancing of its own during the test
    )
    the_worker = Worker(settings, name="w-handover")
    await the_worker.start()
    try:
        yield the_worker
    finally:
        await the_worker.stop()


def send_requests(url: str, subject: str, payload: bytes, count: int, sent: threading.Event):
    """From a thread of its own (another event loop, another connection): ``count``
    requests; sets ``sent`` once the server has them; returns each reply or error."""

    async def main() -> list[object]:
        nc = await nats.connect(url)
        try:
            asks = [
                asyncio.create_task(nc.request(subject, payload, timeout=3.0)) for _ in range(count)
            ]
            await asyncio.sleep(0)
            await nc.flush()  # the server has every request (and routed it to the owner)
            sent.set()
            return list(await asyncio.gather(*asks, return_exceptions=True))
        finally:
            await nc.close()

    return asyncio.run(main())


async def test_requests_on_their_way_when_a_partition_is_given_up_are_answered(
    worker: Worker, nats_url: str
) -> None:
    partition = 1
    assert worker.owns(partition)
    race = race_in(partition)
    req = wire.request(wire.Op.BET_WALLET, partition, 30.0, args=(f"race-{race}", "b1"))
    subject = command_subject(worker.prefix, partition)
    sent = threading.Event()
    result: list[list[object]] = []
    thread = threading.Thread(
        target=lambda: result.append(send_requests(nats_url, subject, wire.encode(req), 50, sent))
    )
    thread.start()
    # the worker's loop is busy (blocked here) while the requests reach its socket: the
    # moment a loaded worker gives a partition up with messages not yet read
    assert sent.wait(10)
    time.sleep(0.3)  # noqa: ASYNC251 - blocking the loop on purpose
    await worker._give_up_partition(partition)
    await asyncio.to_thread(thread.join, 10)
    replies = result[0]
    unanswered = [r for r in replies if isinstance(r, NatsTimeout)]
    assert unanswered == [], f"{len(unanswered)} of {len(replies)} requests got no answer"
    codes = {wire.decode_reply(r.data).error.code for r in replies}  # type: ignore[attr-defined]
    assert codes == {wire.NOT_OWNER}  # not executed: the router asks the next owner


async def test_a_drain_that_gets_no_answer_still_removes_the_subscription(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A drain cut short (no PONG: NATS went away meanwhile) must not leave the
    subscription with the client: a reconnection would subscribe it again, and this
    worker would answer (``not_owner``) for a partition it gave up, for good."""
    partition = 2
    state = worker._partitions[partition]
    sub = state.subscription
    assert sub is not None

    async def no_answer() -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(sub, "drain", no_answer)
    monkeypatch.setattr("oddstream.cluster.worker._UNSUBSCRIBE_SECONDS", 0.2)
    await worker._give_up_partition(partition)
    assert sub._id not in worker._nc._subs  # not restored by a reconnection
    nc = await nats.connect(worker.settings.nats_url)
    try:
        req = wire.request(
            wire.Op.BET_WALLET, partition, 5.0, args=(f"race-{race_in(partition)}", "b")
        )
        with pytest.raises(nats.errors.NoRespondersError):
            await nc.request(command_subject(worker.prefix, partition), wire.encode(req), 2.0)
    finally:
        await nc.close()


async def test_a_partition_whose_taking_failed_is_not_served_half(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed subscription leaves no half-taken partition behind: the worker must not
    run its commands locally (its own router's shortcut) while nobody else can reach
    it, and the partition is free to be taken again."""
    partition = 3
    await worker._give_up_partition(partition)

    async def refused(*args: object, **kwargs: object) -> None:
        raise nats.errors.ConnectionClosedError

    monkeypatch.setattr(worker._nc, "subscribe", refused)
    with pytest.raises(nats.errors.ConnectionClosedError):
        await worker._gain("partition", partition)
    assert not worker.owns(partition)


async def test_a_command_for_another_partition_is_refused(worker: Worker, nats_url: str) -> None:
    """A request names its partition; the command it carries must be for a stream of
    that partition. A sender with another ``ODDSTREAM_PARTITIONS`` sends commands to
    the wrong owner: executed, they would give a stream two writers (each with its own
    state in memory, the cashier's bets in progress on the wrong worker). Refused, the
    misconfiguration shows at once and nothing is written."""
    from oddstream.domain.tote.events import PoolConfig, Runner
    from oddstream.domain.tote.pools import PoolType
    from oddstream.domain.tote.race import ScheduleRace

    race = race_in(2)
    command = ScheduleRace(
        race_id=race,
        meeting="M",
        venue="V",
        post_time="2026-11-29T15:00:00Z",
        runners=(Runner(1, "One"), Runner(2, "Two")),
        pools=(PoolConfig(pool=PoolType.WIN, takeout_bps=1500),),
    )
    req = wire.request(wire.Op.RACE, 1, 5.0, command, request_id="x1")
    nc = await nats.connect(nats_url)
    try:
        msg = await nc.request(command_subject(worker.prefix, 1), wire.encode(req), 5.0)
    finally:
        await nc.close()
    reply = wire.decode_reply(msg.data)
    assert reply.error is not None, reply
    assert reply.error.code == "wrong_partition"
    assert await worker.store.read_stream(f"race-{race}") == []


async def test_the_sweep_waits_longer_than_any_command_may_travel(
    pg_url: str, pg_schema: str, redis_url: str, nats_url: str
) -> None:
    """A wallet bet's race command may reach the race's owner until its deadline
    (``ODDSTREAM_COMMAND_DEADLINE_SECONDS``) even when the wallet's owner that sent it
    died meanwhile: a reservation must not count as stale before then, or the sweep
    releases the stake of a bet the race then takes (a free bet)."""
    settings = Settings(
        store_url=pg_url,
        pg_schema=pg_schema,
        nats_url=nats_url,
        redis_url=redis_url,
        redis_prefix=f"t{uuid.uuid4().hex[:10]}:",
        partitions=PARTITIONS,
        command_deadline_seconds=30,
    )
    worker = Worker(settings, name="w-slow")
    await worker.start()
    try:
        assert worker.cashier._stale_after > settings.command_deadline_seconds
    finally:
        await worker.stop()


async def test_a_big_answer_comes_back_whole(worker: Worker) -> None:
    """The dividends of a race answer one ``BetSettled`` per bet: past ~7,000 bets the
    reply is larger than NATS's max_payload (1 MB by default). The owner could not send
    it (the error was swallowed) and the API answered 503 ``outcome_unknown`` at the
    deadline — and again for every retry, though the dividends were declared."""
    from oddstream.domain.tote.events import BetSettled, PoolConfig, Runner
    from oddstream.domain.tote.pools import PoolType
    from oddstream.domain.tote.race import (
        CloseBetting,
        DeclareDividends,
        DeclareResult,
        OpenBetting,
        PlaceBet,
        ScheduleRace,
    )

    race = race_in(0)
    races = worker.races
    await races.execute(
        ScheduleRace(
            race_id=race,
            meeting="M",
            venue="V",
            post_time="2026-11-29T15:00:00Z",
            runners=(Runner(1, "One"), Runner(2, "Two")),
            pools=(PoolConfig(pool=PoolType.WIN, takeout_bps=1500),),
        )
    )
    await races.execute(OpenBetting(race))
    bets = 9_000
    for start in range(0, bets, 1_000):
        answers = await races.execute_many(
            [
                (
                    PlaceBet(
                        race_id=race,
                        bet_id=f"alice~{i:032x}",
                        pool=PoolType.WIN,
                        selection=(1 + i % 2,),
                        stake_cents=100,
                        wallet_id="alice",
                    ),
                    None,
                )
                for i in range(start, start + 1_000)
            ]
        )
        assert not [a for a in answers if isinstance(a, BaseException)]
    await races.execute(CloseBetting(race))
    await races.execute(DeclareResult(race, ((1,), (2,))))
    partition = race_partition(race, PARTITIONS)
    router = worker.router
    router.deadline = 5.0

    dividends = DeclareDividends(race)
    # over NATS, as an API process asks
    outcome = await router.outcome(wire.Op.RACE, partition, dividends, request_id="d")
    settled = [e for e in outcome.events if isinstance(e, BetSettled)]
    assert len(settled) == bets
    assert outcome.last_position - outcome.first_position + 1 == len(outcome.events)
    again = await router.outcome(wire.Op.RACE, partition, dividends, request_id="d")
    assert again.repeated
    assert again.events == outcome.events


async def test_a_command_is_executed_once_while_two_workers_believe_they_own_its_partition(
    pg_url: str, pg_schema: str, redis_url: str, nats_url: str
) -> None:
    """The fence's moment: PostgreSQL freed a worker's locks (its lock connection ended),
    another took the partition and subscribed, the first has not looked yet and is still
    subscribed. NATS gives a request to every subscriber: both executed it. The version
    check refuses the second append — and the writer decides again on the fresh state,
    so a command without a request id (a credit) was applied twice."""
    from oddstream.cluster.partitions import wallet_partition
    from oddstream.domain.wallet import Credit

    def settings() -> Settings:
        return Settings(
            store_url=pg_url,
            pg_schema=pg_schema,
            nats_url=nats_url,
            redis_url=redis_url,
            redis_prefix=f"t{uuid.uuid4().hex[:10]}:",
            partitions=PARTITIONS,
            rebalance_seconds=60,  # the test says when each looks
        )

    a, b = Worker(settings(), name="fa"), Worker(settings(), name="fb")
    await a.start()
    await b.start()
    nc = await nats.connect(nats_url)
    try:
        assert b.leases.held.partitions == set()  # a holds everything
        # a's lock connection ends (a restart, a cut): PostgreSQL frees its locks
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'oddstream-fa'"
            )
        deadline = time.monotonic() + 5
        while len(b.leases.held.partitions) < PARTITIONS and time.monotonic() < deadline:
            await b.leases.tick()  # b takes them; a has not looked yet
        assert b.leases.held.partitions == set(range(PARTITIONS))
        partition = wallet_partition("alice", PARTITIONS)
        assert a.owns(partition)  # a still believes it owns it: the moment
        credits = 10
        for _ in range(credits):
            req = wire.request(
                wire.Op.WALLET, partition, 5.0, Credit(wallet_id="alice", amount_cents=100)
            )
            msg = await nc.request(command_subject(b.prefix, partition), wire.encode(req), 5.0)
            assert wire.decode_reply(msg.data).error is None
        await asyncio.sleep(0.5)  # any second execution lands
        stored = await b.store.read_stream("wallet-alice")
        assert [e.type for e in stored].count("wallet.Credited") == credits
    finally:
        await nc.close()
        await b.stop()
        await a.stop()
