"""Memory stays bounded in a long-running server (issue 10): writers let idle aggregates
and old answers go, the tote view lets races that are over go; everything let go comes
back from the log when it is asked for."""

from __future__ import annotations

import dataclasses
from typing import Any

from oddstream.domain.tote.events import ResultAmended
from oddstream.domain.wallet import Credit
from oddstream.eventstore import ANY, EventStore
from oddstream.projections.tote_view import ToteView
from oddstream.runtime.codec import registry
from oddstream.runtime.race_writer import RaceWriter
from oddstream.runtime.wallet_writer import WalletWriter, wallet_spec
from oddstream.runtime.writer import AggregateWriter

from .wallet_helpers import bet, open_race, settle


class _Calls:
    """Counts the calls of an async method of ``target`` (patched on the instance)."""

    def __init__(self, target: object, name: str) -> None:
        self.count = 0
        method = getattr(target, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await method(*args, **kwargs)

        setattr(target, name, counted)


def _wallets(store: EventStore, **limits: float) -> AggregateWriter:
    spec = dataclasses.replace(wallet_spec(), **limits)
    return AggregateWriter(store, spec, registry)


async def test_idle_aggregates_past_the_cap_are_let_go_and_come_back(store: EventStore) -> None:
    wallets = _wallets(store, max_cached=3)
    for n in range(10):
        await wallets.execute(Credit(wallet_id=f"w{n}", amount_cents=100), request_id=f"c{n}")
    assert wallets.cached <= 3
    again = await wallets.execute(Credit(wallet_id="w0", amount_cents=100), request_id="c0")
    assert again.repeated  # its answer came back from the log's request index
    assert (await wallets.state("w0")).balance == 100


async def test_aggregates_idle_too_long_are_let_go(store: EventStore) -> None:
    wallets = _wallets(store, idle_seconds=0.0)
    for n in range(5):
        await wallets.execute(Credit(wallet_id=f"w{n}", amount_cents=100))
    assert wallets.cached <= 1  # only the one whose worker was finishing


async def test_answers_are_trimmed_without_snapshots(store: EventStore) -> None:
    wallets = _wallets(store, snapshot_every=None)
    for n in range(1000):
        await wallets.execute(Credit(wallet_id="w1", amount_cents=1), request_id=f"rq{n}")
    entry = wallets._entries["w1"]
    assert len(entry.answered) <= 4 * wallets._spec.request_window
    retry = await wallets.execute(Credit(wallet_id="w1", amount_cents=1), request_id="rq3")
    assert retry.repeated


async def test_a_race_keeps_its_answers_so_new_ids_cost_no_lookup(store: EventStore) -> None:
    """Review: trimming a busy race's answers cost an index read for every new id (two
    for a wallet bet). A race's stream ends; its answers stay whole while it is loaded."""
    races = RaceWriter(store)
    await open_race(races, "r1")
    for n in range(900):
        await races.execute(bet("r1", f"b{n}", 1 + n % 4, 100, None), request_id=f"rq{n}")
    lookups = _Calls(store, "read_requests")
    for n in range(900, 1000):
        command = bet("r1", f"b{n}", 1, 100, None)
        assert await races.recall(command, f"rq{n}") is None
        await races.execute(command, request_id=f"rq{n}")
    assert lookups.count == 0
    assert (await races.execute(bet("r1", "b3", 4, 100, None), request_id="rq3")).repeated


async def test_races_that_are_over_are_let_go_and_read_back(store: EventStore) -> None:
    races = RaceWriter(store)
    view = ToteView(store, keep_finished=2)
    await view.start()
    try:
        for n in range(5):
            race = f"r{n}"
            await open_race(races, race)
            await races.execute(bet(race, "b1", 1, 500, None))
            await settle(races, race, 1)
        head = await store.head_position()
        assert await view.wait_for(head, 5)
        assert [r.race_id for r in view.races()] == ["r3", "r4"]
        assert view.held == (2, 2)
        assert view.bets_named("b1") == [view.bet("r3", "b1"), view.bet("r4", "b1")]
        old = await view.archived("r0")
        assert old is not None
        state, bet0 = old.race("r0"), old.bet("r0", "b1")
        assert state is not None
        assert bet0 is not None
        held = view.bet("r4", "b1")  # the same race, still in memory
        assert held is not None
        assert (state.status.value, bet0.status) == ("final", "settled")
        assert bet0.payout_cents == held.payout_cents
        assert old.dividends("r0") is not None
        assert await view.archived("nope") is None
        # an event that still comes for a race let go (none should: final and abandoned
        # are terminal; written straight to the log here) is left to the stream's readers
        late = registry.to_new_event(ResultAmended("r0", ((2,), (1,), (3,))))
        await store.append("race-r0", [late], ANY)
        assert await view.wait_for(await store.head_position(), 5)
        assert view.race("r0") is None
        amended = await view.archived("r0")
        assert amended is not None
        assert amended is not old
        assert amended.race("r0").placings[0] == (2,)  # type: ignore[union-attr]
    finally:
        await view.stop()


async def test_a_wallet_writer_is_bounded_by_default() -> None:
    assert wallet_spec().max_cached == 10_000
    assert RaceWriter.__mro__  # the race spec keeps fewer: its state holds every bet
    from oddstream.runtime.race_writer import RACES

    assert RACES.max_cached < wallet_spec().max_cached
    assert WalletWriter


async def test_a_race_read_back_before_it_is_over_is_not_kept(store: EventStore) -> None:
    """Review: a race read from its stream while new (the live view not caught up yet)
    was cached, and after it finished and was let go that early copy answered for it."""
    races = RaceWriter(store)
    view = ToteView(store, keep_finished=1)  # not started: it holds nothing
    await open_race(races, "r1")
    early = await view.archived("r1")
    assert early is not None
    assert early.race("r1").status.value == "open"  # type: ignore[union-attr]
    await races.execute(bet("r1", "b1", 1, 500, None))
    await settle(races, "r1", 1)
    later = await view.archived("r1")
    assert later is not None
    assert later.race("r1").status.value == "final"  # type: ignore[union-attr]
    assert later.dividends("r1") is not None
    assert await view.archived("r1") is later  # over: kept


async def test_concurrent_reads_of_an_old_race_share_one_read(store: EventStore) -> None:
    import asyncio

    races = RaceWriter(store)
    await open_race(races, "r1")
    await settle(races, "r1", 1)
    view = ToteView(store)
    reads = _Calls(store, "_read_stream")  # what every read of a stream comes down to
    views = await asyncio.gather(*(view.archived("r1") for _ in range(8)))
    assert reads.count == 1
    assert all(v is views[0] for v in views)
