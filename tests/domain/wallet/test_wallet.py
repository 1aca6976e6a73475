"""The wallet aggregate: every command's events, refusals, idempotent stake commands,
snapshots, and (hypothesis) a balance that never goes negative with money conserved."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oddstream.domain.wallet import (
    CaptureStake,
    Credit,
    Debit,
    OpenWallet,
    ReleaseStake,
    ReserveStake,
    SettleStake,
    WalletRejection,
    WalletState,
    decide,
    evolve,
    replay,
)
from oddstream.domain.wallet.events import (
    Credited,
    Debited,
    DebitRejected,
    StakeCaptured,
    StakeLost,
    StakeRefunded,
    StakeRejected,
    StakeReserved,
    WalletOpened,
    WinningsCredited,
)
from oddstream.domain.wallet.wallet import MAX_AMOUNT_CENTS, MAX_BALANCE_CENTS, SETTLED_MEMORY

W = "w1"


def run(state: WalletState, command) -> list:
    events = decide(state, command)
    for event in events:
        evolve(state, event)
    return events


def funded(amount: int = 10_000) -> WalletState:
    state = WalletState()
    run(state, Credit(wallet_id=W, amount_cents=amount))
    return state


def test_first_credit_opens_the_wallet_and_carries_the_balance_after():
    state = WalletState()
    events = run(state, Credit(wallet_id=W, amount_cents=500, reference="dep-1"))
    assert events == [
        WalletOpened(wallet_id=W),
        Credited(
            wallet_id=W, amount_cents=500, balance_cents=500, in_play_cents=0, reference="dep-1"
        ),
    ]
    assert run(state, Credit(wallet_id=W, amount_cents=250)) == [
        Credited(wallet_id=W, amount_cents=250, balance_cents=750, in_play_cents=0)
    ]
    assert state.balance == 750


def test_open_is_idempotent():
    state = WalletState()
    assert run(state, OpenWallet(wallet_id=W)) == [WalletOpened(wallet_id=W)]
    assert run(state, OpenWallet(wallet_id=W)) == []


def test_debit_moves_money_out():
    state = funded(1_000)
    assert run(state, Debit(wallet_id=W, amount_cents=400)) == [
        Debited(wallet_id=W, amount_cents=400, balance_cents=600, in_play_cents=0)
    ]
    assert state.balance == 600


def test_overdraft_is_recorded_as_rejected_and_moves_nothing():
    state = funded(1_000)
    events = run(state, Debit(wallet_id=W, amount_cents=1_001))
    assert events == [
        DebitRejected(
            wallet_id=W,
            amount_cents=1_001,
            balance_cents=1_000,
            in_play_cents=0,
            reason="insufficient_funds",
        )
    ]
    assert state.balance == 1_000


@pytest.mark.parametrize("amount", [0, -5, MAX_AMOUNT_CENTS + 1])
def test_bad_amounts_are_refused_unrecorded(amount):
    state = funded()
    for command in (
        Credit(wallet_id=W, amount_cents=amount),
        Debit(wallet_id=W, amount_cents=amount),
        ReserveStake(wallet_id=W, bet_id="b", book="race-r", amount_cents=amount),
    ):
        with pytest.raises(WalletRejection) as info:
            decide(state, command)
        assert info.value.code == "bad_amount"


def test_non_integer_amounts_are_refused():
    with pytest.raises(WalletRejection):
        decide(funded(), Credit(wallet_id=W, amount_cents=1.5))  # type: ignore[arg-type]


def test_balance_limit():
    state = funded(MAX_AMOUNT_CENTS)
    state.balance = MAX_BALANCE_CENTS
    with pytest.raises(WalletRejection) as info:
        decide(state, Credit(wallet_id=W, amount_cents=1))
    assert info.value.code == "balance_limit"


def test_unknown_wallet_cannot_be_debited_or_staked():
    for command in (
        Debit(wallet_id=W, amount_cents=1),
        ReserveStake(wallet_id=W, bet_id="b", book="race-r", amount_cents=1),
    ):
        with pytest.raises(WalletRejection) as info:
            decide(WalletState(), command)
        assert info.value.code == "wallet_not_found"


def test_stake_reserved_captured_and_won():
    state = funded(1_000)
    assert run(state, ReserveStake(wallet_id=W, bet_id="b1", book="race-r", amount_cents=300)) == [
        StakeReserved(
            wallet_id=W,
            bet_id="b1",
            book="race-r",
            amount_cents=300,
            balance_cents=700,
            in_play_cents=300,
        )
    ]
    assert run(state, CaptureStake(wallet_id=W, bet_id="b1", book="race-r")) == [
        StakeCaptured(
            wallet_id=W,
            bet_id="b1",
            book="race-r",
            amount_cents=300,
            balance_cents=700,
            in_play_cents=300,
        )
    ]
    settle = SettleStake(
        wallet_id=W, bet_id="b1", book="race-r", payout_cents=840, refund_cents=0, reason="won"
    )
    assert run(state, settle) == [
        WinningsCredited(
            wallet_id=W,
            bet_id="b1",
            book="race-r",
            amount_cents=840,
            stake_cents=300,
            balance_cents=1_540,
            in_play_cents=0,
        )
    ]
    assert run(state, settle) == []  # a replayed settlement finds nothing to settle
    assert (state.balance, state.in_play, state.reserved, state.staked) == (1_540, 0, {}, {})


def test_stake_lost_and_refunded():
    state = funded(1_000)
    for bet in ("lost", "refunded"):
        run(state, ReserveStake(wallet_id=W, bet_id=bet, book="race-r", amount_cents=200))
        run(state, CaptureStake(wallet_id=W, bet_id=bet, book="race-r"))
    assert run(
        state,
        SettleStake(
            wallet_id=W, bet_id="lost", book="race-r", payout_cents=0, refund_cents=0, reason="lost"
        ),
    ) == [
        StakeLost(
            wallet_id=W,
            bet_id="lost",
            book="race-r",
            stake_cents=200,
            balance_cents=600,
            in_play_cents=200,
        )
    ]
    assert run(
        state,
        SettleStake(
            wallet_id=W,
            bet_id="refunded",
            book="race-r",
            payout_cents=0,
            refund_cents=200,
            reason="scratched",
        ),
    ) == [
        StakeRefunded(
            wallet_id=W,
            bet_id="refunded",
            book="race-r",
            amount_cents=200,
            stake_cents=200,
            balance_cents=800,
            in_play_cents=0,
            reason="scratched",
        )
    ]


def test_stake_beyond_the_balance_is_recorded_as_rejected():
    state = funded(100)
    events = run(state, ReserveStake(wallet_id=W, bet_id="b", book="race-r", amount_cents=101))
    assert events == [
        StakeRejected(
            wallet_id=W,
            bet_id="b",
            book="race-r",
            amount_cents=101,
            balance_cents=100,
            in_play_cents=0,
            reason="insufficient_funds",
        )
    ]
    assert state.balance == 100
    assert not state.reserved


def test_stake_commands_are_idempotent():
    state = funded(1_000)
    reserve = ReserveStake(wallet_id=W, bet_id="b", book="race-r", amount_cents=100)
    assert len(run(state, reserve)) == 1
    assert run(state, reserve) == []  # a retry reserves nothing twice
    assert (
        len(run(state, ReleaseStake(wallet_id=W, bet_id="b", book="race-r", reason="closed"))) == 1
    )
    assert run(state, ReleaseStake(wallet_id=W, bet_id="b", book="race-r", reason="closed")) == []
    assert (
        run(state, CaptureStake(wallet_id=W, bet_id="b", book="race-r")) == []
    )  # released: nothing held
    assert state.balance == 1_000


def test_a_bet_is_its_race_and_its_id():
    state = funded(1_000)
    run(state, ReserveStake(wallet_id=W, bet_id="b", book="race-r1", amount_cents=400))
    # the same bet id on another race is another bet: it needs its own money
    events = run(state, ReserveStake(wallet_id=W, bet_id="b", book="race-r2", amount_cents=700))
    assert [type(e).__name__ for e in events] == ["StakeRejected"]
    # the same bet with another stake is a client's mistake, refused unrecorded
    with pytest.raises(WalletRejection) as mismatch:
        decide(state, ReserveStake(wallet_id=W, bet_id="b", book="race-r1", amount_cents=500))
    assert mismatch.value.code == "bet_mismatch"


def test_a_settled_bet_cannot_be_staked_again():
    state = funded(1_000)
    run(state, ReserveStake(wallet_id=W, bet_id="b", book="race-r", amount_cents=400))
    run(state, CaptureStake(wallet_id=W, bet_id="b", book="race-r"))
    run(
        state,
        SettleStake(
            wallet_id=W, bet_id="b", book="race-r", payout_cents=0, refund_cents=0, reason="lost"
        ),
    )
    with pytest.raises(WalletRejection) as settled:
        decide(state, ReserveStake(wallet_id=W, bet_id="b", book="race-r", amount_cents=400))
    assert settled.value.code == "bet_settled"
    # the memory is bounded: the oldest settled bets are forgotten first
    for n in range(SETTLED_MEMORY):
        key = f"x{n}"
        run(state, ReserveStake(wallet_id=W, bet_id=key, book="race-r", amount_cents=1))
        run(
            state,
            SettleStake(
                wallet_id=W, bet_id=key, book="race-r", payout_cents=0, refund_cents=1, reason="x"
            ),
        )
    assert len(state.settled) == SETTLED_MEMORY
    assert ("r", "b") not in state.settled
    assert WalletState.from_snapshot(state.to_snapshot()) == state


def test_a_settlement_before_the_capture_settles_the_reserved_stake():
    state = funded(1_000)
    run(state, ReserveStake(wallet_id=W, bet_id="b", book="race-r", amount_cents=100))
    run(
        state,
        SettleStake(
            wallet_id=W,
            bet_id="b",
            book="race-r",
            payout_cents=0,
            refund_cents=100,
            reason="scratched",
        ),
    )
    assert run(state, CaptureStake(wallet_id=W, bet_id="b", book="race-r")) == []
    assert (state.balance, state.in_play) == (1_000, 0)


def test_snapshot_round_trip():
    state = funded(1_000)
    run(state, ReserveStake(wallet_id=W, bet_id="a", book="race-r", amount_cents=100))
    run(state, ReserveStake(wallet_id=W, bet_id="b", book="race-r", amount_cents=50))
    run(state, CaptureStake(wallet_id=W, bet_id="b", book="race-r"))
    assert WalletState.from_snapshot(state.to_snapshot()) == state


# ----------------------------------------------------------------------------- properties

commands = st.lists(
    st.one_of(
        st.tuples(st.just("credit"), st.integers(1, 5_000)),
        st.tuples(st.just("debit"), st.integers(1, 5_000)),
        st.tuples(st.just("reserve"), st.integers(0, 6), st.integers(1, 3_000)),
        st.tuples(st.just("capture"), st.integers(0, 6)),
        st.tuples(st.just("release"), st.integers(0, 6)),
        st.tuples(st.just("settle"), st.integers(0, 6), st.integers(0, 9_000), st.booleans()),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(commands)
def test_balance_never_negative_and_money_conserved(script):
    state = WalletState()
    history: list = run(state, OpenWallet(wallet_id=W))
    deposits = withdrawals = paid_in = 0
    lost = 0
    for action, *args in script:
        match action:
            case "credit":
                command = Credit(wallet_id=W, amount_cents=args[0])
            case "debit":
                command = Debit(wallet_id=W, amount_cents=args[0])
            case "reserve":
                command = ReserveStake(
                    wallet_id=W, bet_id=f"b{args[0]}", book="race-r", amount_cents=args[1]
                )
            case "capture":
                command = CaptureStake(wallet_id=W, bet_id=f"b{args[0]}", book="race-r")
            case "release":
                command = ReleaseStake(wallet_id=W, bet_id=f"b{args[0]}", book="race-r", reason="x")
            case _:
                amount, refund = args[1], args[2]
                command = SettleStake(
                    wallet_id=W,
                    bet_id=f"b{args[0]}",
                    book="race-r",
                    payout_cents=0 if refund else amount,
                    refund_cents=amount if refund else 0,
                    reason="x",
                )
        try:
            events = run(state, command)
        except WalletRejection as refused:  # the same bet with another stake, or settled
            if refused.code not in ("bet_mismatch", "bet_settled"):
                raise
            continue
        history.extend(events)
        for event in events:
            match event:
                case Credited():
                    deposits += event.amount_cents
                case Debited():
                    withdrawals += event.amount_cents
                case WinningsCredited() | StakeRefunded():
                    paid_in += event.amount_cents - event.stake_cents
                case StakeLost():
                    lost += event.stake_cents
            if hasattr(event, "balance_cents"):
                assert event.balance_cents == state.balance
                assert event.in_play_cents == state.in_play
        assert state.balance >= 0
        assert state.in_play == sum(state.reserved.values()) + sum(state.staked.values())
        assert state.balance + state.in_play == deposits - withdrawals + paid_in - lost
    # the log alone rebuilds the same state, also from a snapshot halfway
    assert replay(history) == state
    half = len(history) // 2
    snap = WalletState.from_snapshot(replay(history[:half]).to_snapshot())
    assert replay(history[half:], snap) == state
