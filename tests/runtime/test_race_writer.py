"""Races on the event store: the single writer per race and the odds-board projection,
on both adapters."""

from __future__ import annotations

import asyncio

import pytest

from oddstream.domain.tote.events import BetPlaced, PoolConfig, Runner
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.race import (
    CloseBetting,
    DeclareDividends,
    DeclareResult,
    OpenBetting,
    PlaceBet,
    RaceStatus,
    ScheduleRace,
    ToteRejection,
)
from oddstream.eventstore import EventStore
from oddstream.projections.tote_view import ToteView
from oddstream.runtime.codec import registry
from oddstream.runtime.race_writer import RaceWriter, race_stream

WIN = PoolType.WIN


def schedule(race_id: str) -> ScheduleRace:
    return ScheduleRace(
        race_id=race_id,
        meeting="Randwick",
        venue="Randwick",
        post_time="2026-11-21T15:00:00+11:00",
        runners=tuple(Runner(n, f"Runner {n}") for n in range(1, 7)),
        pools=(
            PoolConfig(pool=WIN, takeout_bps=1500, profile="tabcorp"),
            PoolConfig(pool=PoolType.EXACTA, takeout_bps=2000, profile="tabcorp"),
        ),
    )


def bet(race_id: str, bet_id: str, runner: int, stake: int = 500) -> PlaceBet:
    return PlaceBet(
        race_id=race_id, bet_id=bet_id, pool=WIN, selection=(runner,), stake_cents=stake
    )


async def test_commands_are_stored_and_concurrent_bets_batch(store: EventStore) -> None:
    writer = RaceWriter(store)
    await writer.execute(schedule("r1"))
    await writer.execute(OpenBetting("r1"))
    outcomes = await asyncio.gather(
        *(writer.execute(bet("r1", f"b{i}", 1 + i % 6)) for i in range(200)),
        writer.execute(bet("r1", "bad", 9)),
        return_exceptions=True,
    )
    assert isinstance(outcomes[-1], ToteRejection)
    assert outcomes[-1].code == "unknown_runner"
    good = outcomes[:-1]
    assert all(not isinstance(o, BaseException) for o in good)
    positions = sorted(o.first_position for o in good)
    assert positions == list(range(positions[0], positions[0] + 200))
    assert await store.stream_version(race_stream("r1")) == 202
    stored = await store.read_stream(race_stream("r1"))
    assert stored[2].type == "tote.BetPlaced"
    assert isinstance(registry.decode(stored[2]), BetPlaced)
    # a fresh writer rebuilds the same state from the log
    again = await RaceWriter(store).state("r1")
    assert again == await writer.state("r1")
    assert again.pools[WIN].gross == 200 * 500


async def test_rejections_leave_no_trace(store: EventStore) -> None:
    writer = RaceWriter(store)
    with pytest.raises(ToteRejection, match="not scheduled"):
        await writer.execute(bet("r2", "b1", 1))
    assert await store.head_position() == 0
    await writer.execute(schedule("r2"))
    with pytest.raises(ToteRejection) as info:
        await writer.execute(bet("r2", "b1", 1))
    assert info.value.code == "betting_not_open"
    assert await store.head_position() == 1


async def test_two_writers_on_one_race_do_not_lose_bets(store_factory) -> None:
    a_store, b_store = await store_factory(), await store_factory()
    try:
        a, b = RaceWriter(a_store), RaceWriter(b_store)
        await a.execute(schedule("r3"))
        await a.execute(OpenBetting("r3"))
        await b.state("r3")  # b holds a copy that a is about to make stale
        await a.execute(bet("r3", "x1", 1))
        await b.execute(bet("r3", "x2", 2))  # conflicts, reloads, retries
        state = await RaceWriter(a_store).state("r3")
        assert set(state.bets) == {"x1", "x2"}
    finally:
        await a_store.close()
        await b_store.close()


async def test_board_projection_is_never_a_step_behind(store: EventStore) -> None:
    writer = RaceWriter(store)
    projection = ToteView(store)
    await projection.start()
    try:
        await writer.execute(schedule("r4"))
        await writer.execute(OpenBetting("r4"))
        total = 0
        for i, (runner, stake) in enumerate([(1, 1_000), (2, 3_000), (1, 500), (3, 200)]):
            outcome = await writer.execute(bet("r4", f"b{i}", runner, stake))
            total += stake
            assert await projection.wait_for(outcome.last_position, timeout=5)
            view = projection.board("r4")
            assert view is not None
            assert view.position >= outcome.last_position
            win = next(p for p in view.board.pools if p.pool is WIN)
            assert win.gross_cents == total  # every bet up to the position, this one too
        stakes = {r.number: r.win_stakes_cents for r in view.board.runners}
        assert stakes == {1: 1_500, 2: 3_000, 3: 200, 4: 0, 5: 0, 6: 0}
        await writer.execute(CloseBetting("r4"))
        await writer.execute(DeclareResult("r4", ((2,), (1,))))
        final = await writer.execute(DeclareDividends("r4"))
        assert await projection.wait_for(final.last_position, timeout=5)
        assert projection.race("r4").status is RaceStatus.FINAL
        assert projection.board("nope") is None
    finally:
        await projection.stop()


async def test_execute_many_answers_each_command(store: EventStore) -> None:
    writer = RaceWriter(store)
    await writer.execute(schedule("r5"))
    await writer.execute(OpenBetting("r5"))
    commands = [(bet("r5", f"m{i}", 1 + i % 6), f"req-{i}") for i in range(50)]
    commands.append((bet("r5", "bad", 9), None))
    commands.append((bet("r5", "m0", 1), "req-0"))  # the first request again
    outcomes = await writer.execute_many(commands)
    assert all(not isinstance(o, BaseException) for o in outcomes[:50])
    assert isinstance(outcomes[50], ToteRejection)
    assert outcomes[51].repeated
    assert outcomes[51].first_position == outcomes[0].first_position
    assert (await writer.state("r5")).pools[WIN].gross == 50 * 500


async def test_a_state_forgotten_while_busy_is_not_served_stale_later(store: EventStore) -> None:
    """A worker gives a partition up while one of its races is still appending (its
    commands outlived the drain, or the store was slow): ``forget_where`` cannot drop
    that state then. It must be dropped once idle, or the worker, given the partition
    back later, would answer from the state it had — blind to the bets the other owner
    placed meanwhile (``bet_wallet`` is what the sweep captures or releases a stake on)."""
    old, new = RaceWriter(store), RaceWriter(store)
    await old.execute(schedule("r1"))
    await old.execute(OpenBetting("r1"))
    release = asyncio.Event()
    append = store.append_many  # the writer appends through it

    async def slow_append(*args, **kwargs):  # type: ignore[no-untyped-def]
        await release.wait()
        return await append(*args, **kwargs)

    store.append_many = slow_append  # type: ignore[method-assign]
    busy = asyncio.create_task(old.execute(bet("r1", "b1", 1)))
    await asyncio.sleep(0.05)
    assert old.forget_where(lambda key: True) == 0  # busy: kept for now
    release.set()
    await busy
    store.append_many = append  # type: ignore[method-assign]
    # the next owner places a wallet bet
    placed = PlaceBet(
        race_id="r1", bet_id="b2", pool=WIN, selection=(2,), stake_cents=500, wallet_id="w1"
    )
    await new.execute(placed)
    # the partition comes back to the first owner
    assert await old.bet_wallet("r1", "b2") == "w1"


def wallet_bet(race_id: str, bet_id: str, wallet: str) -> PlaceBet:
    return PlaceBet(
        race_id=race_id, bet_id=bet_id, pool=WIN, selection=(1,), stake_cents=500, wallet_id=wallet
    )


async def test_bet_wallet_answers_what_is_stored_not_a_decision_still_appending(
    store: EventStore,
) -> None:
    """``bet_wallet`` is what the sweep captures or releases a stale reservation on. In
    services mode the wallet's owner stops waiting for the race's answer at its deadline
    (and the bet is no longer "being placed" there) while the race's owner may still be
    appending it: the answer must be what the log holds once that append is over — not
    the decision in memory (captured, the stake of a bet whose append then failed
    would be lost), nor the state before a bet still queued (released, the bet placed
    next would be free)."""
    from oddstream.eventstore import StoreUnavailable

    writer = RaceWriter(store)
    await writer.execute(schedule("r1"))
    await writer.execute(OpenBetting("r1"))
    append = store.append_many  # the writer appends through it
    gate = asyncio.Event()
    outcome: dict[str, bool] = {"fail": True}

    async def stalled(*args, **kwargs):  # type: ignore[no-untyped-def]
        await gate.wait()
        if outcome["fail"]:
            raise StoreUnavailable("the append was lost", outcome_unknown=True)
        return await append(*args, **kwargs)

    store.append_many = stalled  # type: ignore[method-assign]
    # a decision in memory whose append then fails
    placing = asyncio.create_task(writer.execute(wallet_bet("r1", "b1", "w1")))
    await asyncio.sleep(0.05)
    asking = asyncio.create_task(writer.bet_wallet("r1", "b1"))
    await asyncio.sleep(0.05)
    gate.set()
    with pytest.raises(StoreUnavailable):
        await placing
    assert await asking is None  # never stored
    # a bet queued behind an append in progress, stored afterwards
    gate.clear()
    outcome["fail"] = False
    first = asyncio.create_task(writer.execute(bet("r1", "cash", 2)))
    await asyncio.sleep(0.05)
    queued = asyncio.create_task(writer.execute(wallet_bet("r1", "b2", "w2")))
    await asyncio.sleep(0.05)
    asking = asyncio.create_task(writer.bet_wallet("r1", "b2"))
    await asyncio.sleep(0.05)
    gate.set()
    await first
    await queued
    assert await asking == "w2"
    store.append_many = append  # type: ignore[method-assign]
