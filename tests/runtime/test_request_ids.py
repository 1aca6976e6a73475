"""Request ids (issue 9, defects 1 and 2): remembered durably however much traffic follows,
across restarts and snapshots, and refused when reused for a different command.

Every test runs on every adapter (the ``store`` fixture).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from oddstream.domain.tote.race import CloseBetting
from oddstream.domain.wallet import Credit, Debit
from oddstream.eventstore import EventStore, InvalidEvent
from oddstream.runtime.race_writer import RaceWriter
from oddstream.runtime.wallet_writer import WalletWriter
from oddstream.runtime.writer import RequestIdReused, fingerprint

from .wallet_helpers import bet, open_race, started


def credit(cents: int, wallet: str = "w1") -> Credit:
    return Credit(wallet_id=wallet, amount_cents=cents)


async def test_a_credit_retried_after_many_more_and_a_restart_is_not_paid_twice(
    store: EventStore,
) -> None:
    # The defect: only the last ~200-300 events' ids were rebuilt on load.
    wallets = WalletWriter(store, snapshot_every=10)
    first = await wallets.execute(credit(500), request_id="dep-1")
    for n in range(300):
        await wallets.execute(credit(1), request_id=f"more-{n}")
    restarted = WalletWriter(store, snapshot_every=10)  # nothing in memory
    retry = await restarted.execute(credit(500), request_id="dep-1")
    assert retry.repeated
    assert (retry.first_position, retry.last_position) == (
        first.first_position,
        first.last_position,
    )
    assert retry.events == first.events
    state = await restarted.state("w1")
    assert state.balance == 500 + 300


async def test_an_old_request_id_is_recognised_by_a_long_running_writer(
    store: EventStore,
) -> None:
    # The writer trims its in-memory answers at snapshots; older ones come from the log.
    wallets = WalletWriter(store, snapshot_every=10)
    await wallets.execute(credit(700), request_id="old")
    for n in range(2000):
        await wallets.execute(credit(1), request_id=f"n-{n}")
    retry = await wallets.execute(credit(700), request_id="old")
    assert retry.repeated
    assert (await wallets.state("w1")).balance == 700 + 2000


async def test_a_request_id_reused_with_another_amount_is_refused(store: EventStore) -> None:
    wallets = WalletWriter(store, snapshot_every=10)
    await wallets.execute(credit(500), request_id="dep-1")
    with pytest.raises(RequestIdReused):
        await wallets.execute(credit(501), request_id="dep-1")
    with pytest.raises(RequestIdReused):  # another kind of command under the same id
        await wallets.execute(Debit(wallet_id="w1", amount_cents=500), request_id="dep-1")
    for n in range(50):
        await wallets.execute(credit(1), request_id=f"n-{n}")
    restarted = WalletWriter(store, snapshot_every=10)
    with pytest.raises(RequestIdReused):  # after a restart, from the log's index
        await restarted.execute(credit(501), request_id="dep-1")
    assert (await restarted.state("w1")).balance == 550


async def test_the_same_id_twice_in_one_batch_with_different_commands(store: EventStore) -> None:
    wallets = WalletWriter(store)
    results = await asyncio.gather(
        wallets.execute(credit(100), request_id="r"),
        wallets.execute(credit(200), request_id="r"),
        wallets.execute(credit(100), request_id="r"),
        return_exceptions=True,
    )
    assert not isinstance(results[0], BaseException)
    assert isinstance(results[1], RequestIdReused)
    assert not isinstance(results[2], BaseException)
    assert results[2].repeated
    assert (await wallets.state("w1")).balance == 100


async def test_recall_answers_without_writing(store: EventStore) -> None:
    races = RaceWriter(store)
    await open_race(races, "r1")
    placed = await races.execute(bet("r1", "b1", 1, 500, None), request_id="rq")
    head = await store.head_position()
    for writer in (races, RaceWriter(store)):  # in memory, and from the log
        assert await writer.recall(bet("r1", "b1", 1, 500, None), "rq") == replace(
            placed, repeated=True
        )
        assert await writer.recall(bet("r1", "b1", 1, 500, None), "other") is None
        with pytest.raises(RequestIdReused):
            await writer.recall(bet("r1", "b1", 1, 900, None), "rq")
    assert await store.head_position() == head


async def test_a_wallet_bet_retried_with_another_stake_moves_no_money(store: EventStore) -> None:
    races, wallets, cashier = await started(store)
    try:
        await open_race(races, "r1")
        await wallets.execute(credit(1000))
        await cashier.place_bet(bet("r1", "b1", 1, 300, "w1"))
        with pytest.raises(RequestIdReused):
            await cashier.place_bet(bet("r1", "b1", 1, 600, "w1"))
        state = await wallets.state("w1")
        assert (state.balance, state.in_play) == (700, 300)
    finally:
        await cashier.stop()


async def test_ids_of_one_race_do_not_answer_for_another(store: EventStore) -> None:
    races = RaceWriter(store)
    for race in ("r1", "r2"):
        await open_race(races, race)
    await races.execute(CloseBetting("r1"), request_id="close")
    second = await races.execute(CloseBetting("r2"), request_id="close")
    assert not second.repeated
    assert (await races.state("r2")).status.value == "closed"


async def test_read_requests_validates_its_arguments(store: EventStore) -> None:
    assert await store.read_requests("wallet-w1", []) == []
    with pytest.raises(InvalidEvent):
        await store.read_requests("wallet-w1", [""])
    with pytest.raises(InvalidEvent):
        await store.read_requests("wallet-w1", [f"r{n}" for n in range(1001)])


def test_fingerprints_tell_commands_apart() -> None:
    assert fingerprint(credit(500)) == fingerprint(credit(500))
    assert fingerprint(credit(500)) != fingerprint(credit(501))
    assert fingerprint(credit(500)) != fingerprint(Debit(wallet_id="w1", amount_cents=500))
