"""A log written before wallet books (its stake events name a ``race_id``, its
snapshots key bets by race id) reads to the very states the code that wrote it held,
on every store; and today's cashier and read model carry on from it.

The log is ``tests/fixtures/wallet_log_v1.json``, written by that code (commit
1aec911) with ``tests/fixtures/make_wallet_log_v1.py``, with the state of each wallet
as that code loaded it."""

from __future__ import annotations

import json
from pathlib import Path

from oddstream.domain.wallet import WalletState
from oddstream.eventstore import EventStore, NewEvent
from oddstream.projections.wallet_models.sqlite import SqliteWalletStorage
from oddstream.projections.wallets import WalletProjection
from oddstream.runtime.cashier import Cashier
from oddstream.runtime.race_writer import RaceWriter
from oddstream.runtime.wallet_writer import WalletWriter

from .wallet_helpers import settle, until

LOG = json.loads((Path(__file__).parents[1] / "fixtures" / "wallet_log_v1.json").read_text())
WALLETS = sorted(LOG["states"])


async def load_old_log(store: EventStore) -> None:
    """The fixture's events appended in their order, as they were stored."""
    for e in LOG["events"]:
        event = NewEvent(e["type"], e["data"], e["metadata"], schema_version=e["schema_version"])
        await store.append(e["stream"], [event])


def old_state(wallet: str) -> WalletState:
    """The state the old code held (its snapshot shape has no version: race ids)."""
    return WalletState.from_snapshot(LOG["states"][wallet])


def test_the_fixture_is_a_first_version_log() -> None:
    stakes = [e for e in LOG["events"] if e["type"] == "wallet.StakeReserved"]
    assert stakes
    assert all(e["schema_version"] == 1 and "race_id" in e["data"] for e in stakes)
    assert all("v" not in s for s in LOG["states"].values())
    assert any(e["type"] == "snapshot" for e in LOG["events"])


async def test_an_old_log_replays_to_the_same_states(store: EventStore) -> None:
    await load_old_log(store)
    for snapshot_every in (5, 0):  # from the old snapshots, and from the events alone
        writer = WalletWriter(store, snapshot_every=snapshot_every)
        for wallet in WALLETS:
            state = await writer.state(wallet)
            assert state == old_state(wallet), (wallet, snapshot_every)
            assert state.balance == LOG["states"][wallet]["balance"]
            assert all(book.startswith("race-") for book, _ in [*state.reserved, *state.staked])


async def test_the_cashier_and_read_model_carry_on_from_an_old_log(store: EventStore) -> None:
    await load_old_log(store)
    races, wallets = RaceWriter(store), WalletWriter(store, snapshot_every=5)
    cashier = Cashier(store, races, wallets, stale_after=0.0)
    await cashier.start()
    try:
        head = await store.head_position()
        assert await until(lambda: _at(cashier, head))
        # the reservation a crash left open in the old log is still open, then swept
        assert cashier.open_reservations == 1
        assert await cashier.sweep() == 1
        alice = await wallets.state("alice")
        assert (alice.balance, alice.reserved) == (old_state("alice").balance + 300, {})
        # carol's bet on race r4 (old events) is paid by today's cashier
        carol_before = old_state("carol")
        await settle(races, "r4", 1)

        async def paid() -> bool:
            return not (await wallets.state("carol")).staked

        assert await until(paid)
        carol = await wallets.state("carol")
        payout = carol.balance - carol_before.balance
        assert payout > 500  # the only WIN bet on runner 1: the whole pool less takeout
        assert carol.in_play == 0
    finally:
        await cashier.stop()
    # the read model of the whole log (old and new events) holds the writer's balances
    projection = WalletProjection(store, SqliteWalletStorage(":memory:"))
    await projection.start()
    try:
        assert await projection.wait_for(await store.head_position(), 10)
        for wallet in WALLETS:
            state = await WalletWriter(store).state(wallet)
            shown = await projection.balance(wallet)
            assert shown is not None
            assert (shown.balance_cents, shown.in_play_cents) == (state.balance, state.in_play)
        statement = await projection.transactions("carol", limit=1000)
        assert {t.race_id for t in statement if t.bet_id} == {"r1", "r2", "r3", "r4"}
        assert all(t.book == f"race-{t.race_id}" for t in statement if t.bet_id)
    finally:
        await projection.stop()


async def _at(cashier: Cashier, head: int) -> bool:
    return cashier.position >= head
