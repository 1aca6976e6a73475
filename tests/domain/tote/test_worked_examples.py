"""The public worked examples of the reference note, reproduced exactly."""

from __future__ import annotations

from fractions import Fraction

import pytest

from oddstream.domain.tote.board import ladder_odds, odds_board
from oddstream.domain.tote.dividends import pool_outcome
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.profiles import US
from oddstream.integrations.kafka.odds_topic import OddsTopicStream

from .helpers import Race

DOLLAR = 100


def test_win_approximates_encyclopedia_example() -> None:
    stakes = [60, 140, 24, 110, 220, 94, 300, 80]
    race = Race(runners=8, pools=(PoolType.WIN,), takeout_bps=1425, profile="tabcorp")
    for runner, dollars in enumerate(stakes, start=1):
        race.bet(PoolType.WIN, runner, dollars * DOLLAR)
    board = odds_board(race.state)
    got = [r.win_dividend_cents for r in board.runners]
    assert got == [1469, 630, 3673, 801, 401, 938, 294, 1102]


def test_us_place_example() -> None:
    # gross $60,000, takeout 18%, placegetters backed $5,000 and $8,000
    stakes = {(1,): 5_000 * DOLLAR, (2,): 8_000 * DOLLAR, (3,): 47_000 * DOLLAR}
    outcome = pool_outcome(PoolType.PLACE, US, 1800, stakes, [[1], [2], [3]])
    assert outcome.price_base == 200
    assert outcome.dividends == {(1,): 920, (2,): 650}


def test_us_show_example_through_settlement() -> None:
    # gross $30,000, takeout 16%, show stakes 12,000 / 3,000 / 1,500 → $2.40 $3.90 $5.80
    race = Race(runners=4, pools=(PoolType.SHOW,), takeout_bps=1600, profile="us")
    for runner, dollars in [(1, 12_000), (2, 3_000), (3, 1_500), (4, 13_500)]:
        race.bet(PoolType.SHOW, runner, dollars * DOLLAR)
    race.finish(1, 2, 3, 4)
    show = race.declared(PoolType.SHOW)
    assert dict(show.dividends) == {(1,): 240, (2,): 390, (3,): 580}
    assert show.takeout_cents == 4_800 * DOLLAR
    assert show.breakage_cents == 600 * DOLLAR
    assert show.topup_cents == 0
    paid = {b: s.payout_cents for b, s in race.settlements().items()}
    assert paid == {
        "b1": 14_400 * DOLLAR,
        "b2": 5_850 * DOLLAR,
        "b3": 4_350 * DOLLAR,
        "b4": 0,
    }


def test_poc_compat_vector() -> None:
    stream = OddsTopicStream()
    bets = [(1, 25), (1, 50), (1, 50), (2, 5), (2, 10), (2, 20), (2, -20)]
    rows = [stream.apply("0", runner, dollars * DOLLAR) for runner, dollars in bets]
    assert [r.race_pool_amount for r in rows] == [25, 75, 125, 130, 140, 160, 140]
    assert [round(r.odds, 2) for r in rows] == [1, 1, 1, 26, 9.33, 4.57, 9.33]
    assert [r.runner_id for r in rows] == [1, 1, 1, 2, 2, 2, 2]


@pytest.mark.parametrize(
    ("odds", "shown"),
    [
        (Fraction(5, 2), "5-2"),
        (Fraction(27, 10), "5-2"),
        (Fraction(1, 20), "1-9"),
        (Fraction(1, 1), "1-1"),
        (Fraction(999, 1), "99-1"),
        (Fraction(22, 1), "20-1"),
    ],
)
def test_us_ladder_rounds_down(odds: Fraction, shown: str) -> None:
    assert ladder_odds(odds) == shown


def test_ladder_example_five_to_two_pays_between_7_and_7_80() -> None:
    # "A runner shown at 5-2 pays between $7.00 and $7.80 for $2": true with 10c-per-$1
    # breakage ($2 prices in 20c steps). The place/show examples above need 10c steps
    # of the $2 price instead; docs/tote.md explains the profile's choice.
    from oddstream.domain.tote.money import floor_to_step

    prices = set()
    for thousandths in range(2_500, 3_000):
        odds = Fraction(thousandths, 1_000)
        assert ladder_odds(odds) == "5-2"
        prices.add(2 * floor_to_step((1 + odds) * 100, 10))
    assert min(prices) == 700
    assert max(prices) == 780
