"""Race lifecycle, rejections, and the derived cases documented in docs/tote.md."""

from __future__ import annotations

import pytest

from oddstream.domain.tote.events import (
    BetSettled,
    PoolConfig,
    Runner,
)
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.race import (
    AbandonRace,
    AddCarryover,
    AddContributions,
    AmendResult,
    CancelBet,
    CloseBetting,
    DeclareDividends,
    DeclareResult,
    OpenBetting,
    PlaceBet,
    RaceState,
    RaceStatus,
    ScheduleRace,
    ScratchRunner,
    ToteRejection,
    decide,
    replay,
)

from .helpers import Race

WIN, PLACE, SHOW = PoolType.WIN, PoolType.PLACE, PoolType.SHOW
EXACTA, QUINELLA, TRIFECTA = PoolType.EXACTA, PoolType.QUINELLA, PoolType.TRIFECTA


def rejected(race: Race, command) -> str:
    with pytest.raises(ToteRejection) as info:
        decide(race.state, command)
    return info.value.code


# ----------------------------------------------------------------------------- rejections


def bet(pool=WIN, selection=(1,), stake=200, bet_id="x"):
    return PlaceBet(race_id="r1", bet_id=bet_id, pool=pool, selection=selection, stake_cents=stake)


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (bet(stake=0), "bad_amount"),
        (bet(stake=-100), "bad_amount"),
        (bet(stake=50), "below_minimum"),
        (bet(stake=205), "bad_increment"),
        (bet(selection=(9,)), "unknown_runner"),
        (bet(selection=(1, 2)), "bad_selection"),
        (bet(pool=EXACTA, selection=(1,)), "bad_selection"),
        (bet(pool=EXACTA, selection=(2, 2)), "bad_selection"),
        (bet(pool=TRIFECTA, selection=(1, 2, 2)), "bad_selection"),
        (CancelBet("r1", "nope"), "unknown_bet"),
        (DeclareResult("r1", ((1,),)), "wrong_status"),
        (DeclareDividends("r1"), "wrong_status"),
        (AmendResult("r1", ((1,),)), "wrong_status"),
        (OpenBetting("r1"), "wrong_status"),
    ],
)
def test_bad_commands_are_rejected_with_a_reason(command, code: str) -> None:
    race = Race(runners=4)
    assert rejected(race, command) == code


def test_messages_say_what_was_wrong() -> None:
    race = Race(runners=4)
    with pytest.raises(ToteRejection, match="steps of 10 cents"):
        decide(race.state, bet(stake=205))
    with pytest.raises(ToteRejection, match="runner 9 is not in race r1"):
        decide(race.state, bet(selection=(9,)))


def test_betting_window() -> None:
    race = Race(runners=4, open_betting=False)
    assert rejected(race, bet()) == "betting_not_open"
    race.do(OpenBetting("r1"))
    race.bet(WIN, 1, 200)
    race.do(CloseBetting("r1"))
    assert rejected(race, bet(bet_id="late")) == "betting_closed"
    assert rejected(race, CancelBet("r1", "b1")) == "betting_closed"


def test_unscheduled_race_and_duplicates() -> None:
    empty = Race.__new__(Race)
    empty.state = RaceState()
    assert rejected(empty, bet()) == "race_not_found"
    race = Race(runners=4)
    race.bet(WIN, 1, 200, bet_id="same")
    assert rejected(race, bet(bet_id="same")) == "duplicate_bet"
    again = ScheduleRace(
        race_id="r1", meeting="m", venue="v", post_time="t",
        runners=(Runner(1, "a"), Runner(2, "b")),
        pools=(PoolConfig(pool=WIN, takeout_bps=0),),
    )  # fmt: skip
    assert rejected(race, again) == "already_scheduled"


@pytest.mark.parametrize(
    ("runners", "pools", "message"),
    [
        ((Runner(1, "a"),), (PoolConfig(pool=WIN, takeout_bps=0),), "2 to 40 runners"),
        ((Runner(1, "a"), Runner(1, "b")), (PoolConfig(pool=WIN, takeout_bps=0),), "distinct"),
        ((Runner(1, "a"), Runner(2, "b")), (), "at least one pool"),
        ((Runner(1, "a"), Runner(2, "b")), (PoolConfig(pool=WIN, takeout_bps=10_000),), "0 to"),
        (
            (Runner(1, "a"), Runner(2, "b")),
            (PoolConfig(pool=WIN, takeout_bps=0, profile="mars"),),
            "unknown rules profile",
        ),
        (
            (Runner(1, "a"), Runner(2, "b")),
            (PoolConfig(pool=TRIFECTA, takeout_bps=0),),
            "needs more runners",
        ),
    ],
)
def test_bad_schedules(runners, pools, message: str) -> None:
    cmd = ScheduleRace(
        race_id="r9", meeting="m", venue="v", post_time="t", runners=runners, pools=pools
    )
    with pytest.raises(ToteRejection, match=message):
        decide(RaceState(), cmd)


def test_scratched_runner_takes_no_bets_and_result_must_be_valid() -> None:
    race = Race(runners=4)
    race.do(ScratchRunner("r1", 2))
    assert rejected(race, bet(selection=(2,))) == "scratched_runner"
    assert rejected(race, bet(pool=QUINELLA, selection=(1, 2))) == "scratched_runner"
    race.do(CloseBetting("r1"))
    assert rejected(race, DeclareResult("r1", ((2,),))) == "scratched_runner"
    assert rejected(race, DeclareResult("r1", ((1,), (1,)))) == "bad_result"
    assert rejected(race, DeclareResult("r1", ((1,), ()))) == "bad_result"


# ----------------------------------------------------------------------------- lifecycle


def test_every_bet_is_settled_exactly_once() -> None:
    race = Race(runners=6, takeout_bps=1500)
    race.bet(WIN, 1, 1_000)
    race.bet(WIN, 2, 500)
    cancelled = race.bet(PLACE, 3, 300)
    race.do(CancelBet("r1", cancelled))
    race.bet(EXACTA, (1, 2), 200)
    race.bet(TRIFECTA, (4, 5, 6), 200)
    race.do(ScratchRunner("r1", 6))
    race.finish(1, 2, 3)
    settled = [e for e in race.events if isinstance(e, BetSettled)]
    assert sorted(e.bet_id for e in settled) == sorted(race.state.bets)
    assert len(settled) == len(race.state.bets) == 5
    by_id = race.settlements()
    assert by_id[cancelled].refund_cents == 300
    assert by_id[cancelled].reason == "cancelled"
    assert by_id["b5"].reason == "scratched"
    assert race.state.status is RaceStatus.FINAL
    assert rejected(race, DeclareDividends("r1")) == "wrong_status"
    assert rejected(race, AmendResult("r1", ((2,), (1,)))) == "wrong_status"


def test_replay_rebuilds_the_same_state_and_settlements_are_deterministic() -> None:
    race = Race(runners=5, takeout_bps=1700)
    for i, (pool, sel, stake) in enumerate(
        [(WIN, 1, 500), (WIN, 2, 700), (PLACE, 2, 300), (QUINELLA, (2, 1), 400), (SHOW, 5, 100)]
    ):
        race.bet(pool, sel, stake, bet_id=f"k{i}")
    race.do(CloseBetting("r1"))
    race.do(DeclareResult("r1", ((2,), (1,), (5,))))
    rebuilt = replay(race.events)
    assert rebuilt == race.state
    first = decide(race.state, DeclareDividends("r1"))
    second = decide(rebuilt, DeclareDividends("r1"))
    assert first == second


def test_two_way_dead_heat_for_win() -> None:
    # net $1,000 (no takeout); runners 1 and 2 dead-heat: the win pool is split like a
    # place pool: stakes back, profit halved. Profit = 1000 - 100 - 300 = 600 → 300 each.
    race = Race(runners=4, pools=(WIN,), profile="us")
    race.bet(WIN, 1, 10_000)
    race.bet(WIN, 2, 30_000)
    race.bet(WIN, 3, 60_000)
    race.finish((1, 2), 3)
    win = race.declared(WIN)
    # runner 1: 1 + 300/100 = $4.00 per $1 → $8.00 per $2; runner 2: 1 + 300/300 → $4.00
    assert dict(win.dividends) == {(1,): 800, (2,): 400}
    paid = race.settlements()
    assert paid["b1"].payout_cents == 40_000
    assert paid["b2"].payout_cents == 60_000
    assert paid["b3"].payout_cents == 0
    assert win.breakage_cents == 0


def test_dead_heat_for_second_in_place_pool() -> None:
    # half the profit to the winner, a quarter to each tied runner
    race = Race(runners=5, pools=(PLACE,), profile="us")
    for runner, stake in [(1, 20_000), (2, 10_000), (3, 10_000), (4, 60_000)]:
        race.bet(PLACE, runner, stake)
    race.finish(1, (2, 3), 4)
    # profit = 1000 - 200 - 100 - 100 = 600: winner 300, tied 150 each
    place = race.declared(PLACE)
    assert dict(place.dividends) == {(1,): 500, (2,): 500, (3,): 500}


def test_scratched_runner_is_refunded_in_every_pool() -> None:
    race = Race(runners=5, takeout_bps=1500)
    ids = {
        race.bet(WIN, 3, 200): "win",
        race.bet(PLACE, 3, 200): "place",
        race.bet(SHOW, 3, 200): "show",
        race.bet(EXACTA, (1, 3), 200): "exacta",
        race.bet(QUINELLA, (3, 2), 200): "quinella",
        race.bet(TRIFECTA, (2, 1, 3), 200): "trifecta",
    }
    keep = race.bet(WIN, 1, 500)
    race.do(CloseBetting("r1"))  # scratched after close: still refunded
    race.do(ScratchRunner("r1", 3))
    settled = race.settlements()
    assert {b for b in settled} == set(ids)
    assert all(settled[b].refund_cents == 200 and settled[b].reason == "scratched" for b in ids)
    assert race.state.pools[WIN].gross == 500
    assert all(race.state.pools[p].gross == 0 for p in (PLACE, SHOW, EXACTA, QUINELLA, TRIFECTA))
    race.do(DeclareResult("r1", ((1,), (2,), (4,))))
    race.do(DeclareDividends("r1"))
    assert race.settlements()[keep].payout_cents > 0


@pytest.mark.parametrize("rule", ["refund", "carryover"])
def test_exacta_with_no_winning_ticket(rule: str) -> None:
    race = Race(runners=4, pools=(EXACTA,), takeout_bps=2000, no_winner=rule)
    race.bet(EXACTA, (2, 1), 1_000)
    race.bet(EXACTA, (3, 4), 500)
    race.finish(1, 2, 3)
    exacta = race.declared(EXACTA)
    settled = race.settlements()
    if rule == "refund":
        assert exacta.refunded
        assert exacta.takeout_cents == 0
        assert [s.refund_cents for s in settled.values()] == [1_000, 500]
        assert exacta.carry_out_cents == 0
    else:
        assert not exacta.refunded
        assert exacta.carry_out_cents == 1_500  # gross, no deduction until it is won
        assert exacta.takeout_cents == 0
        assert [(s.payout_cents, s.refund_cents) for s in settled.values()] == [(0, 0), (0, 0)]


def test_carryover_is_taken_into_a_later_pool() -> None:
    later = Race(runners=4, pools=(EXACTA,), takeout_bps=2000, race_id="r1", profile="tabcorp")
    later.do(AddCarryover(race_id="r1", pool=EXACTA, amount_cents=1_500, from_race="r0"))
    later.bet(EXACTA, (1, 2), 500)
    later.finish(1, 2)
    exacta = later.declared(EXACTA)
    assert exacta.carry_in_cents == 1_500
    assert exacta.takeout_cents == 400  # 20% of (500 + 1500)
    assert exacta.net_cents == 1_600
    assert later.settlements()["b1"].payout_cents == 1_600  # $3.20 per $1 on $5


def test_minus_pool_is_topped_up_and_recorded() -> None:
    # everyone backs the winner: net < stakes, so the $2.10 minimum costs the operator
    race = Race(runners=3, pools=(WIN,), takeout_bps=1700, profile="us")
    race.bet(WIN, 1, 100_000)
    race.bet(WIN, 2, 1_000)
    race.finish(1, 2)
    win = race.declared(WIN)
    assert dict(win.dividends) == {(1,): 210}
    assert race.settlements()["b1"].payout_cents == 105_000
    # net = 101,000 - 17,170 = 83,830; paid 105,000 → top-up 21,170
    assert win.net_cents == 83_830
    assert win.topup_cents == 21_170
    assert win.breakage_cents == 0


def test_amended_result_before_dividends_changes_who_is_paid() -> None:
    race = Race(runners=4, pools=(WIN,), profile="us")
    race.bet(WIN, 1, 1_000)
    race.bet(WIN, 2, 1_000)
    race.do(CloseBetting("r1"))
    race.do(DeclareResult("r1", ((1,), (2,))))
    assert rejected(race, AmendResult("r1", ((1,), (2,)))) == "no_change"
    race.do(AmendResult("r1", ((2,), (1,))))  # runner 1 disqualified
    race.do(DeclareDividends("r1"))
    settled = race.settlements()
    assert settled["b1"].payout_cents == 0
    assert settled["b2"].payout_cents == 2_000


def test_abandoned_race_refunds_everything() -> None:
    race = Race(runners=4, takeout_bps=1500)
    race.bet(WIN, 1, 300)
    race.bet(TRIFECTA, (1, 2, 3), 200)
    race.do(CloseBetting("r1"))
    race.do(AbandonRace("r1", "track unsafe"))
    settled = race.settlements()
    assert [(s.refund_cents, s.reason) for s in settled.values()] == [
        (300, "abandoned"),
        (200, "abandoned"),
    ]
    assert race.state.status is RaceStatus.ABANDONED
    assert rejected(race, AbandonRace("r1", "again")) == "wrong_status"


def test_unbacked_placegetter_share_goes_to_backed_ones() -> None:
    race = Race(runners=4, pools=(PLACE,), profile="us")
    race.bet(PLACE, 1, 1_000)
    race.bet(PLACE, 3, 1_000)
    race.finish(1, 2, 3)  # runner 2 placed but unbacked
    place = race.declared(PLACE)
    # profit 2000 - 1000 = 1000 all to runner 1: $2 price = 2 × (1 + 1) = $4.00
    assert dict(place.dividends) == {(1,): 400}


def test_nothing_backed_in_win_pays_next_finishers_backers() -> None:
    race = Race(runners=4, pools=(WIN,), profile="us")
    race.bet(WIN, 2, 1_000)
    race.bet(WIN, 3, 1_000)
    race.finish(1, 2, 3)
    assert dict(race.declared(WIN).dividends) == {(2,): 400}


def _give(runner: int, amount: int, source: str = "feed") -> AddContributions:
    return AddContributions(
        race_id="r1", source=source, refs=(0,), runners=(runner,), amounts_cents=(amount,)
    )


def test_a_race_taking_contributions_accepts_signed_and_zero_amounts() -> None:
    race = Race(runners=2, pools=(WIN,), min_stake=1, increment=1, contributions_from="feed")
    for amount in (2_500, -1_000, 0):
        race.do(_give(1, amount))
    assert race.state.pools[WIN].stakes[(1,)] == 1_500
    assert race.state.pools[WIN].gross == 1_500
    zero = race.events[-1]
    assert zero.amounts_cents == (0,)
    assert not zero.rejected
    refused = decide(race.state, _give(1, -9_999))[0]
    assert refused.refs == ()
    assert "withdrawing" in refused.rejected[0][2]
    race.do(CloseBetting("r1"))
    assert rejected(race, DeclareResult("r1", ((1,),))) == "not_resultable"
    plain = Race(runners=2, pools=(WIN,))
    assert rejected(plain, _give(1, 1)) == "no_contributions"
    other = Race(runners=2, pools=(WIN,), contributions_from="feed", race_id="r1")
    assert rejected(other, _give(1, 1, source="elsewhere")) == "no_contributions"
