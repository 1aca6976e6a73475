"""The wallet's books: a bet is keyed by its book (``race-<id>`` or ``market-<id>``) and
its bet id. Races and markets are alike to the wallet (a property: renaming every book
changes nothing but the names); money is conserved across books; the first version's
``race_id`` events and snapshots read as race books."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oddstream.domain.wallet import (
    CaptureStake,
    Credit,
    ReleaseStake,
    ReserveStake,
    SettleStake,
    WalletRejection,
    WalletState,
    book_market,
    book_race,
    decide,
    evolve,
    market_book,
    race_book,
    replay,
)
from oddstream.domain.wallet.events import (
    STAKE_EVENTS,
    Credited,
    StakeLost,
    StakeRefunded,
    WinningsCredited,
)
from oddstream.eventstore import RecordedEvent
from oddstream.runtime.codec import registry

W = "w1"
BOOKS = ("race-r1", "market-r1", "market-m1")
#: the same books, all renamed to race books (distinct still)
RENAMED = {"race-r1": "race-x", "market-r1": "race-y", "market-m1": "race-z"}


def run(state: WalletState, command) -> list:
    events = decide(state, command)
    for event in events:
        evolve(state, event)
    return events


def test_book_names():
    assert race_book("r1") == "race-r1"
    assert market_book("m1") == "market-m1"
    assert book_race("race-r1") == "r1"
    assert book_market("race-r1") is None
    assert book_market("market-m1") == "m1"
    assert book_race("market-m1") is None


def test_the_same_bet_id_in_a_race_and_a_market_is_two_bets():
    state = WalletState()
    run(state, Credit(wallet_id=W, amount_cents=1_000))
    run(state, ReserveStake(wallet_id=W, bet_id="b", book="race-r1", amount_cents=300))
    run(state, ReserveStake(wallet_id=W, bet_id="b", book="market-r1", amount_cents=500))
    assert state.reserved == {("race-r1", "b"): 300, ("market-r1", "b"): 500}
    run(state, CaptureStake(wallet_id=W, bet_id="b", book="market-r1"))
    run(
        state,
        SettleStake(
            wallet_id=W,
            bet_id="b",
            book="market-r1",
            payout_cents=955,
            refund_cents=0,
            reason="won",
        ),
    )
    # the race's bet is untouched; the market's is settled and cannot be staked again
    assert state.reserved == {("race-r1", "b"): 300}
    assert state.staked == {}
    assert (state.balance, state.in_play) == (1_000 - 300 - 500 + 955, 300)
    with pytest.raises(WalletRejection) as refused:
        decide(state, ReserveStake(wallet_id=W, bet_id="b", book="market-r1", amount_cents=500))
    assert refused.value.code == "bet_settled"


@pytest.mark.parametrize("book", ["r1", "race-", "market-", "tote-r1", "", "market-" + "m" * 200])
def test_a_book_is_a_race_or_a_market(book):
    state = WalletState()
    run(state, Credit(wallet_id=W, amount_cents=1_000))
    with pytest.raises(WalletRejection) as refused:
        decide(state, ReserveStake(wallet_id=W, bet_id="b", book=book, amount_cents=1))
    assert refused.value.code == "bad_book"


commands = st.lists(
    st.one_of(
        st.tuples(st.just("credit"), st.integers(1, 5_000)),
        st.tuples(
            st.just("reserve"), st.sampled_from(BOOKS), st.integers(0, 4), st.integers(1, 3_000)
        ),
        st.tuples(st.just("capture"), st.sampled_from(BOOKS), st.integers(0, 4)),
        st.tuples(st.just("release"), st.sampled_from(BOOKS), st.integers(0, 4)),
        st.tuples(
            st.just("settle"),
            st.sampled_from(BOOKS),
            st.integers(0, 4),
            st.integers(0, 9_000),
            st.booleans(),
        ),
    ),
    max_size=80,
)


def _command(step: tuple, books: dict[str, str]):
    action, *args = step
    if action == "credit":
        return Credit(wallet_id=W, amount_cents=args[0])
    book, bet = books[args[0]], f"b{args[1]}"
    match action:
        case "reserve":
            return ReserveStake(wallet_id=W, bet_id=bet, book=book, amount_cents=args[2])
        case "capture":
            return CaptureStake(wallet_id=W, bet_id=bet, book=book)
        case "release":
            return ReleaseStake(wallet_id=W, bet_id=bet, book=book, reason="x")
    amount, refund = args[2], args[3]
    return SettleStake(
        wallet_id=W,
        bet_id=bet,
        book=book,
        payout_cents=0 if refund else amount,
        refund_cents=amount if refund else 0,
        reason="x",
    )


def _play(script: list, books: dict[str, str]) -> tuple[WalletState, list, list]:
    state, history, outcomes = WalletState(), [], []
    for step in script:
        try:
            events = run(state, _command(step, books))
        except WalletRejection as refused:
            if refused.code not in ("bet_mismatch", "bet_settled", "wallet_not_found"):
                raise
            outcomes.append(refused.code)
            continue
        outcomes.append(events)
        history.extend(events)
    return state, history, outcomes


def _renamed(value, books: dict[str, str]):
    """``value`` with every book renamed."""
    if isinstance(value, list):
        return [_renamed(v, books) for v in value]
    if isinstance(value, msgspec.Struct) and hasattr(value, "book"):
        return msgspec.structs.replace(value, book=books[value.book])
    return value


@settings(max_examples=300, deadline=None)
@given(commands)
def test_books_are_opaque_and_money_is_conserved_across_them(script):
    state, history, outcomes = _play(script, {b: b for b in BOOKS})
    # races and markets alike: with every book renamed to a race book, the same outcomes
    renamed, _, renamed_outcomes = _play(script, RENAMED)
    assert renamed_outcomes == _renamed(outcomes, RENAMED)
    assert (renamed.balance, renamed.in_play) == (state.balance, state.in_play)
    # money: what came in, less what the books kept, plus what they paid back
    deposits = paid_in = lost = 0
    per_book = dict.fromkeys(BOOKS, 0)
    for event in history:
        match event:
            case Credited():
                deposits += event.amount_cents
            case WinningsCredited() | StakeRefunded():
                paid_in += event.amount_cents - event.stake_cents
                per_book[event.book] += event.amount_cents - event.stake_cents
            case StakeLost():
                lost += event.stake_cents
                per_book[event.book] -= event.stake_cents
    assert state.balance >= 0
    assert state.balance + state.in_play == deposits + paid_in - lost
    assert sum(per_book.values()) == paid_in - lost
    assert state.in_play == sum(state.reserved.values()) + sum(state.staked.values())
    # the log rebuilds it, also from a snapshot halfway
    assert replay(history) == state
    half = len(history) // 2
    snap = WalletState.from_snapshot(replay(history[:half]).to_snapshot())
    assert replay(history[half:], snap) == state


def test_a_first_version_snapshot_reads_its_bets_as_race_books():
    old = {
        "wallet_id": W,
        "opened": True,
        "balance": 700,
        "reserved": [["r1", "a", 100]],
        "staked": [["r2", "b", 200]],
        "settled": [["r1", "c"]],
    }
    state = WalletState.from_snapshot(old)
    assert state.reserved == {("race-r1", "a"): 100}
    assert state.staked == {("race-r2", "b"): 200}
    assert state.settled == {("race-r1", "c"): None}
    assert (state.balance, state.in_play) == (700, 300)
    assert WalletState.from_snapshot(state.to_snapshot()) == state
    with pytest.raises(ValueError, match="version 3"):
        WalletState.from_snapshot({**state.to_snapshot(), "v": 3})


def _stored(type_: str, data: dict, version: int) -> RecordedEvent:
    return RecordedEvent(
        position=7,
        stream_id=f"wallet-{W}",
        version=2,
        event_id=uuid4(),
        type=type_,
        schema_version=version,
        data=data,
        metadata={},
        recorded_at=datetime.now(UTC),
    )


@pytest.mark.parametrize("cls", STAKE_EVENTS, ids=lambda c: c.__name__)
def test_a_first_version_stake_event_reads_as_a_race_book(cls):
    fields = {f: 1 for f in cls.__struct_fields__ if f.endswith("_cents")}
    fields |= {f: "x" for f in ("reason",) if f in cls.__struct_fields__}
    new = cls(wallet_id=W, bet_id="b", book="race-r1", **fields)
    stored = registry.to_new_event(new)
    assert stored.schema_version == 2
    assert stored.data["book"] == "race-r1"
    v1 = {k: v for k, v in stored.data.items() if k != "book"} | {"race_id": "r1"}
    decoded = registry.decode(_stored(stored.type, v1, 1))
    assert decoded == new
    assert decoded.race_id == "r1"
    assert registry.decode(_stored(stored.type, dict(stored.data), 2)) == new
