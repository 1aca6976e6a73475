"""The board's will-pay ranges: the closed form agrees with the general dividend rule."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from oddstream.domain.tote.dividends import pool_outcome, scenario_price
from oddstream.domain.tote.money import percent_of
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.profiles import PROFILES


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
