"""Wallets on the event store: the writer with snapshots, and money through the tote
(the cashier) including crashes between its steps, on every adapter."""

from __future__ import annotations

import asyncio

import pytest

from oddstream.domain.tote.race import (
    AbandonRace,
    CancelBet,
    CloseBetting,
    DeclareDividends,
    DeclareResult,
    ScratchRunner,
    ToteRejection,
)
from oddstream.domain.wallet import (
    Credit,
    Debit,
    ReserveStake,
    WalletRejection,
)
from oddstream.domain.wallet.events import DebitRejected
from oddstream.eventstore import ANY, EventStore, NewEvent
from oddstream.runtime.cashier import CHECKPOINT, Cashier, InsufficientFunds
from oddstream.runtime.race_writer import RaceWriter
from oddstream.runtime.wallet_writer import WalletWriter, wallet_stream
from oddstream.runtime.writer import snapshot_stream

from .wallet_helpers import balance, bet, open_race, started, until

# ----------------------------------------------------------------------------- writer


async def snapshots_at(store: EventStore, versions: list[int]) -> bool:
    """Whether w1's snapshots are at ``versions`` (they are written after the answer)."""
    snaps = await store.read_stream(snapshot_stream(wallet_stream("w1")))
    return [s.data["version"] for s in snaps] == versions


async def test_overdraft_is_recorded_and_the_balance_survives_a_reload(store: EventStore) -> None:
    wallets = WalletWriter(store)
    await wallets.execute(Credit(wallet_id="w1", amount_cents=500))
    outcome = await wallets.execute(Debit(wallet_id="w1", amount_cents=501))
    assert isinstance(outcome.events[0], DebitRejected)
    await wallets.execute(Debit(wallet_id="w1", amount_cents=200))
    types = [e.type for e in await store.read_stream(wallet_stream("w1"))]
    assert types == [
        "wallet.WalletOpened",
        "wallet.Credited",
        "wallet.DebitRejected",
        "wallet.Debited",
    ]
    assert await balance(WalletWriter(store), "w1") == (300, 0)


async def test_request_ids_make_credits_idempotent_across_restarts(store: EventStore) -> None:
    first = await WalletWriter(store).execute(
        Credit(wallet_id="w1", amount_cents=100), request_id="dep-1"
    )
    again = await WalletWriter(store).execute(
        Credit(wallet_id="w1", amount_cents=100), request_id="dep-1"
    )
    assert again.repeated
    assert again.last_position == first.last_position
    assert await balance(WalletWriter(store), "w1") == (100, 0)


async def test_snapshots_bound_the_load_and_keep_request_ids(store: EventStore) -> None:
    wallets = WalletWriter(store, snapshot_every=10)
    for i in range(35):
        await wallets.execute(Credit(wallet_id="w1", amount_cents=1), request_id=f"r{i}")
    assert await until(lambda: snapshots_at(store, [10, 20, 30]))
    reloaded = WalletWriter(store, snapshot_every=10)
    assert await balance(reloaded, "w1") == (35, 0)
    # a retry of a request from before the latest snapshot is still recognised
    retry = await reloaded.execute(Credit(wallet_id="w1", amount_cents=1), request_id="r25")
    assert retry.repeated
    assert await balance(reloaded, "w1") == (35, 0)


async def test_a_snapshot_is_used_on_load(store: EventStore) -> None:
    wallets = WalletWriter(store, snapshot_every=5)
    for _ in range(4):  # with the opening: 5 events, a snapshot at the head
        await wallets.execute(Credit(wallet_id="w1", amount_cents=10))
    assert await until(lambda: snapshots_at(store, [5]))
    snap = (await store.read_stream(snapshot_stream(wallet_stream("w1"))))[-1]
    # a reload starts from the snapshot: tamper with it and the state follows the snapshot
    forged = {**snap.data, "state": {**snap.data["state"], "balance": 7}}
    await store.append(snapshot_stream(wallet_stream("w1")), [NewEvent("snapshot", forged)], ANY)
    assert await balance(WalletWriter(store, snapshot_every=5), "w1") == (7, 0)


async def test_concurrent_writes_to_one_wallet_never_overdraw(store: EventStore) -> None:
    wallets = WalletWriter(store)
    await wallets.execute(Credit(wallet_id="w1", amount_cents=1_000))
    outcomes = await asyncio.gather(
        *(wallets.execute(Debit(wallet_id="w1", amount_cents=30)) for _ in range(50))
    )
    done = sum(not isinstance(o.events[0], DebitRejected) for o in outcomes)
    assert done == 33  # 33 × 30 = 990; the 34th would overdraw
    assert await balance(WalletWriter(store), "w1") == (10, 0)


# ----------------------------------------------------------------------------- cashier


async def test_a_wallet_bet_reserves_captures_and_is_paid_once(store: EventStore) -> None:
    races, wallets, cashier = await started(store)
    try:
        await open_race(races, "r1")
        await wallets.execute(Credit(wallet_id="alice", amount_cents=10_000))
        await wallets.execute(Credit(wallet_id="bob", amount_cents=10_000))
        await cashier.place_bet(bet("r1", "a1", 1, 3_000, "alice"))
        await cashier.place_bet(bet("r1", "b1", 2, 1_000, "bob"))
        assert await balance(wallets, "alice") == (7_000, 3_000)
        await races.execute(CloseBetting("r1"))
        await races.execute(DeclareResult("r1", ((1,), (2,), (3,))))
        await races.execute(DeclareDividends("r1"))
        # pool 40.00, takeout 15% → 34.00 net to alice's 30.00: dividend $1.13 a $1
        won = 3_000 * 113 // 100

        async def paid() -> bool:
            return (await balance(wallets, "alice")) == (7_000 + won, 0)

        assert await until(paid)
        assert await balance(wallets, "bob") == (9_000, 0)
    finally:
        await cashier.stop()
    # a restart from the checkpoint replays nothing twice
    races, wallets, cashier = await started(store)
    try:
        assert await cashier.wait_caught_up(5)
        assert await balance(wallets, "alice") == (7_000 + won, 0)
    finally:
        await cashier.stop()
    # and neither does following the whole log again (a lost checkpoint)
    await store.save_checkpoint(CHECKPOINT, 0)
    races, wallets, cashier = await started(store)
    try:
        assert await cashier.wait_caught_up(5)
        assert await balance(WalletWriter(store), "alice") == (7_000 + won, 0)
    finally:
        await cashier.stop()


async def test_refusals_release_the_stake(store: EventStore) -> None:
    races, wallets, cashier = await started(store)
    try:
        await open_race(races, "r1")
        await wallets.execute(Credit(wallet_id="w", amount_cents=1_000))
        with pytest.raises(InsufficientFunds) as short:
            await cashier.place_bet(bet("r1", "big", 1, 2_000, "w"))
        assert short.value.balance == 1_000
        with pytest.raises(ToteRejection) as refused:
            await cashier.place_bet(bet("r1", "bad", 9, 500, "w"))
        assert refused.value.code == "unknown_runner"
        assert await balance(wallets, "w") == (1_000, 0)
        types = [e.type for e in await store.read_stream(wallet_stream("w"))]
        assert types[-3:] == [
            "wallet.StakeRejected",
            "wallet.StakeReserved",
            "wallet.StakeReleased",
        ]
        with pytest.raises(WalletRejection) as unknown:
            await cashier.place_bet(bet("r1", "x", 1, 500, "nobody"))
        assert unknown.value.code == "wallet_not_found"
    finally:
        await cashier.stop()


async def test_the_same_bet_id_from_another_wallet_does_not_ride_on_the_first(
    store: EventStore,
) -> None:
    races, wallets, cashier = await started(store)
    try:
        await open_race(races, "r1")
        for w in ("a", "b"):
            await wallets.execute(Credit(wallet_id=w, amount_cents=1_000))
        await cashier.place_bet(bet("r1", "same", 1, 500, "a"))
        retry = await cashier.place_bet(bet("r1", "same", 1, 500, "a"))
        assert retry.repeated
        with pytest.raises(ToteRejection) as dup:
            await cashier.place_bet(bet("r1", "same", 1, 500, "b"))
        assert dup.value.code == "duplicate_bet"
        assert await balance(wallets, "a") == (500, 500)
        assert await balance(wallets, "b") == (1_000, 0)
    finally:
        await cashier.stop()


async def test_refunds_on_cancel_scratch_and_abandon(store: EventStore) -> None:
    races, wallets, cashier = await started(store)
    try:
        await open_race(races, "r1")
        await open_race(races, "r2")
        await wallets.execute(Credit(wallet_id="w", amount_cents=10_000))
        await cashier.place_bet(bet("r1", "c", 1, 1_000, "w"))
        await cashier.place_bet(bet("r1", "s", 2, 1_000, "w"))
        await cashier.place_bet(bet("r2", "a", 1, 1_000, "w"))
        assert await balance(wallets, "w") == (7_000, 3_000)
        await races.execute(CancelBet("r1", "c"))
        await races.execute(ScratchRunner("r1", 2))
        await races.execute(AbandonRace("r2", "track"))

        async def refunded() -> bool:
            return (await balance(wallets, "w")) == (10_000, 0)

        assert await until(refunded)
    finally:
        await cashier.stop()


async def test_a_crash_after_the_reservation_is_resolved_by_the_sweep(store: EventStore) -> None:
    races, wallets = RaceWriter(store), WalletWriter(store)
    await open_race(races, "r1")
    await wallets.execute(Credit(wallet_id="w", amount_cents=5_000))
    # crash 1: reserved, never sent to the race → released
    await wallets.execute(
        ReserveStake(wallet_id="w", bet_id="lost", book="race-r1", amount_cents=1_000)
    )
    # crash 2: reserved and placed, never captured → captured
    await wallets.execute(
        ReserveStake(wallet_id="w", bet_id="kept", book="race-r1", amount_cents=2_000)
    )
    await races.execute(bet("r1", "kept", 1, 2_000, "w"))
    cashier = Cashier(store, RaceWriter(store), WalletWriter(store), stale_after=0.0)
    await cashier.start()
    try:
        assert await cashier.wait_caught_up(5)
        assert cashier.open_reservations == 2
        assert await cashier.sweep() == 2
        fresh = WalletWriter(store)
        state = await fresh.state("w")
        assert (state.balance, state.reserved, state.staked) == (
            3_000,
            {},
            {("race-r1", "kept"): 2_000},
        )

        async def closed() -> bool:
            return cashier.open_reservations == 0

        assert await until(closed)
    finally:
        await cashier.stop()
    assert await store.get_checkpoint(CHECKPOINT) == await store.head_position()


async def test_the_checkpoint_never_passes_an_open_reservation(store: EventStore) -> None:
    races, wallets, cashier = await started(store, checkpoint_every=0.01)
    try:
        await open_race(races, "r1")
        await wallets.execute(Credit(wallet_id="w", amount_cents=5_000))
        held = await wallets.execute(
            ReserveStake(wallet_id="w", bet_id="held", book="race-r1", amount_cents=1_000)
        )
        await cashier.place_bet(bet("r1", "b", 1, 1_000, "w"))

        async def saved() -> bool:
            return await store.get_checkpoint(CHECKPOINT) == held.first_position - 1

        assert await until(saved)
    finally:
        await cashier.stop()


async def test_a_bet_being_placed_is_not_placed_twice_at_once(store: EventStore) -> None:
    races, wallets, cashier = await started(store)
    try:
        await open_race(races, "r1")
        await wallets.execute(Credit(wallet_id="w", amount_cents=5_000))
        first, second = await asyncio.gather(
            cashier.place_bet(bet("r1", "b", 1, 1_000, "w")),
            cashier.place_bet(bet("r1", "b", 1, 1_000, "w")),
            return_exceptions=True,
        )
        assert not isinstance(first, BaseException)
        assert isinstance(second, WalletRejection)
        assert second.code == "bet_in_progress"
        assert await balance(wallets, "w") == (4_000, 1_000)
    finally:
        await cashier.stop()
