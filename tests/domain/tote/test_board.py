"""The board: its will-pay ranges agree with the general dividend rule, and its win
line shows what a runner would pay (never negative odds, never below the minimum)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oddstream.domain.tote.board import odds_board
from oddstream.domain.tote.dividends import pool_outcome, scenario_price
from oddstream.domain.tote.events import ContributionsAdded
from oddstream.domain.tote.money import percent_of, round_half_up
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.profiles import PROFILES
from oddstream.domain.tote.race import AddContributions, evolve
from oddstream.integrations.kafka.odds_topic import OddsTopicStream

from .helpers import Race


@settings(max_examples=500, deadline=None)
@given(
    profile=st.sampled_from(sorted(PROFILES)),
    kind=st.sampled_from([PoolType.PLACE, PoolType.SHOW]),
    stakes=st.lists(st.integers(0, 5_000).map(lambda x: x * 10), min_size=4, max_size=12),
    takeout=st.sampled_from([0, 1425, 1800]),
    carry=st.integers(0, 2_000),
    data=st.data(),
)
def test_scenario_price_matches_pool_outcome(profile, kind, stakes, takeout, carry, data) -> None:
    rules = PROFILES[profile]
    places = rules.place_places if kind is PoolType.PLACE else rules.show_places
    runners = list(range(1, len(stakes) + 1))
    backed = [r for r in runners if stakes[r - 1] > 0]
    if not backed:
        return
    runner = data.draw(st.sampled_from(backed))
    others = data.draw(
        st.lists(
            st.sampled_from([r for r in runners if r != runner]),
            min_size=places - 1,
            max_size=places - 1,
            unique=True,
        )
    )
    table = {(r,): s for r, s in zip(runners, stakes, strict=True)}
    gross = sum(stakes)
    net = gross + carry - percent_of(gross + carry, takeout)
    outcome = pool_outcome(
        kind, rules, takeout, table, [[runner], *[[o] for o in others]], carry_in=carry
    )
    closed = scenario_price(rules, net, table[(runner,)], [table[(o,)] for o in others])
    assert closed == outcome.dividends[(runner,)]


# ------------------------------------------------- the board's odds are never negative


def _line(board, number):
    line = next(r for r in board.runners if r.number == number)
    return line.win_dividend_cents, line.odds_to_one, line.ladder


def test_a_runner_holding_more_than_the_net_pool_shows_the_minimum_dividend() -> None:
    # $2 on runner 1 only, 15% takeout: net $1.70 for $2 of stakes. It showed a dividend
    # of 85c per $1 and odds of -0.15; settlement would pay the US minimum, $2.10 per $2.
    race = Race(runners=4, pools=(PoolType.WIN,), takeout_bps=1500, profile="us")
    race.bet(PoolType.WIN, 1, 200)
    board = odds_board(race.state)
    assert _line(board, 1) == (105, 0.05, "1-9")
    assert _line(board, 2) == (None, None, None)  # no stakes: no dividend, as before
    # a heavy favourite: 90% of a pool that keeps 85%
    race.bet(PoolType.WIN, 1, 8_800)
    race.bet(PoolType.WIN, 2, 1_000)
    board = odds_board(race.state)
    assert _line(board, 1) == (105, 0.05, "1-9")
    assert _line(board, 2) == (850, 7.5, "7-1")  # 8,500 / 1,000: unchanged


def _added(runner: int, amount: int) -> ContributionsAdded:
    return ContributionsAdded(
        race_id="r1", source="t", refs=(0,), runners=(runner,), amounts_cents=(amount,)
    )


def test_a_race_with_a_runner_below_zero_shows_no_negative_odds() -> None:
    # Old per-bet events (now read as contributions) are applied as stored: one that
    # withdrew more than its runner held (the decider refuses that now) left runner 2 at
    # -3.00 and the pool below runner 1's stake. Runner 1 showed odds of -0.3.
    race = Race(runners=4, pools=(PoolType.WIN,), profile="us", contributions_from="t")
    for runner, amount in [(1, 1_000), (2, 500), (2, -800)]:
        evolve(race.state, _added(runner, amount))
    board = odds_board(race.state)
    assert _line(board, 1) == (105, 0.05, "1-9")
    assert _line(board, 2) == (None, None, None)
    # a pool below zero altogether: the board still answers (it raised ValueError)
    evolve(race.state, _added(3, -2_000))
    board = odds_board(race.state)
    assert board.pools[0].net_cents == -1_300
    assert _line(board, 1) == (105, 0.05, "1-9")
    refused = race.do(
        AddContributions(race_id="r1", source="t", refs=(9,), runners=(1,), amounts_cents=(-1_001,))
    )
    assert refused[0].refs == ()
    assert "withdrawing" in refused[0].rejected[0][2]
    # the POC's odds rows are left as the POC emitted them (race pool / runner pool)
    stream = OddsTopicStream()
    rows = [
        stream.apply("r1", runner, amount) for runner, amount in [(1, 1_000), (2, 500), (2, -800)]
    ]
    assert rows[-1].odds == pytest.approx(700 / -300)


compat_or_tote = st.sampled_from([False, True])


@settings(max_examples=300, deadline=None)
@given(
    compat=compat_or_tote,
    profile=st.sampled_from(sorted(PROFILES)),
    takeout=st.sampled_from([0, 1500, 2500, 9999]),
    bets=st.lists(
        st.tuples(st.integers(1, 6), st.integers(-5_000, 5_000).filter(bool)),
        min_size=1,
        max_size=30,
    ),
)
def test_board_odds_are_never_negative(compat, profile, takeout, bets) -> None:
    race = Race(
        runners=6,
        pools=(PoolType.WIN,),
        profile=profile,
        takeout_bps=0 if compat else takeout,
        min_stake=1,
        increment=1,
        contributions_from="t" if compat else None,
    )
    for runner, amount in bets:
        if compat:  # applied as stored, negative amounts and all (old logs)
            evolve(race.state, _added(runner, amount))
        else:
            race.bet(PoolType.WIN, runner, abs(amount))
    rules = PROFILES[profile]
    minimum = round_half_up(Fraction(rules.min_dividend_cents * 100, rules.price_base_cents))
    for line in odds_board(race.state).runners:
        if line.odds_to_one is None:
            assert line.win_dividend_cents is None
            assert line.ladder is None
            assert line.win_stakes_cents <= 0 or line.scratched
        else:
            assert line.odds_to_one >= 0
            assert line.win_dividend_cents >= minimum
