"""Memory stays bounded in a long-running server (issue 10): writers let idle aggregates
and old answers go, the tote view lets races that are over go; everything let go comes
back from the log when it is asked for."""

from __future__ import annotations

import dataclasses

from oddstream.domain.tote.events import ResultAmended
from oddstream.domain.wallet import Credit
from oddstream.eventstore import ANY, EventStore
from oddstream.projections.tote_view import ToteView
from oddstream.runtime.codec import registry
from oddstream.runtime.race_writer import RaceWriter
from oddstream.runtime.wallet_writer import WalletWriter, wallet_spec
from oddstream.runtime.writer import AggregateWriter

from .wallet_helpers import bet, open_race, settle


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
    races = RaceWriter(store)
    await open_race(races, "r1")
    for n in range(1000):
        await races.execute(bet("r1", f"b{n}", 1 + n % 4, 100, None), request_id=f"rq{n}")
    entry = races._entries["r1"]
    assert len(entry.answered) <= 4 * races._spec.request_window
    retry = await races.execute(bet("r1", "b3", 4, 100, None), request_id="rq3")
    assert retry.repeated


async def test_races_that_are_over_are_let_go_and_read_back(store: EventStore) -> None:
    races = RaceWriter(store)
    view = ToteView(store, keep_finished=2)
    view.start()
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
