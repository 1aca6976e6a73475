"""Money is conserved in every race, for both profiles (hypothesis).

Σ payouts + Σ refunds + takeout + breakage − top-ups + carried out − carried in
    = Σ stakes of every bet placed
and every bet is settled exactly once.
"""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from oddstream.domain.tote.events import (
    BetPlaced,
    BetSettled,
    DividendsDeclared,
    RaceAbandoned,
)
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.race import (
    AbandonRace,
    AddCarryover,
    AmendResult,
    CancelBet,
    CloseBetting,
    DeclareDividends,
    DeclareResult,
    ScratchRunner,
    ToteRejection,
)

from .helpers import Race

POOLS = list(PoolType)


@st.composite
def races(draw):
    profile = draw(st.sampled_from(["us", "tabcorp"]))
    runners = draw(st.integers(3, 8))
    takeout = draw(st.sampled_from([0, 1425, 1700, 2100]))
    no_winner = draw(st.sampled_from([None, "refund", "carryover"]))
    actions = draw(
        st.lists(
            st.one_of(
                st.tuples(
                    st.just("bet"),
                    st.sampled_from(POOLS),
                    st.permutations(range(1, runners + 1)),
                    st.integers(10, 500).map(lambda x: x * 10),
                ),
                st.tuples(st.just("cancel"), st.integers(0, 40)),
                st.tuples(st.just("scratch"), st.integers(1, runners)),
                st.tuples(st.just("carry"), st.sampled_from(POOLS), st.integers(1, 5_000)),
            ),
            max_size=60,
        )
    )
    late_scratch = draw(st.one_of(st.none(), st.integers(1, runners)))
    ending = draw(st.sampled_from(["result", "amend", "abandon", "abandon_after_result"]))
    order = draw(st.permutations(range(1, runners + 1)))
    cuts = draw(st.lists(st.booleans(), min_size=runners, max_size=runners))
    finishers = draw(st.integers(1, runners))
    return (
        profile,
        runners,
        takeout,
        no_winner,
        actions,
        late_scratch,
        ending,
        order,
        cuts,
        finishers,
    )


def _placings(order, cuts, finishers, scratched):
    live = [r for r in order if r not in scratched][:finishers]
    groups: list[list[int]] = []
    for runner, joins in zip(live, cuts, strict=False):
        if groups and joins:
            groups[-1].append(runner)  # a dead heat with the previous finisher
        else:
            groups.append([runner])
    return tuple(tuple(g) for g in groups)


def _try(race: Race, command) -> bool:
    try:
        race.do(command)
    except ToteRejection:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(races())
def test_money_is_conserved(params) -> None:
    profile, runners, takeout, no_winner, actions, late, ending, order, cuts, finishers = params
    race = Race(runners=runners, profile=profile, takeout_bps=takeout, no_winner=no_winner)
    bet_ids: list[str] = []
    for action in actions:
        if action[0] == "bet":
            _, pool, perm, stake = action
            selection = tuple(perm[: pool.runners_per_selection])
            with contextlib.suppress(ToteRejection):
                bet_ids.append(race.bet(pool, selection, stake))
        elif action[0] == "cancel" and bet_ids:
            _try(race, CancelBet("r1", bet_ids[action[1] % len(bet_ids)]))
        elif action[0] == "scratch":
            _try(race, ScratchRunner("r1", action[1]))
        elif action[0] == "carry":
            _try(
                race,
                AddCarryover(race_id="r1", pool=action[1], amount_cents=action[2], from_race="r0"),
            )
    race.do(CloseBetting("r1"))
    if late is not None:
        _try(race, ScratchRunner("r1", late))
    placings = _placings(order, cuts, finishers, race.state.scratched)
    if ending == "abandon":
        race.do(AbandonRace("r1", "weather"))
    else:
        race.do(DeclareResult("r1", placings))
        if ending == "amend":
            _try(race, AmendResult("r1", tuple(reversed(placings))))
        if ending == "abandon_after_result":
            race.do(AbandonRace("r1", "objection upheld"))
        else:
            race.do(DeclareDividends("r1"))

    placed = [e for e in race.events if isinstance(e, BetPlaced)]
    settled = [e for e in race.events if isinstance(e, BetSettled)]
    assert sorted(e.bet_id for e in settled) == sorted(e.bet_id for e in placed)
    assert all(e.payout_cents >= 0 and e.refund_cents >= 0 for e in settled)

    stakes = sum(e.stake_cents for e in placed)
    payouts = sum(e.payout_cents for e in settled)
    refunds = sum(e.refund_cents for e in settled)
    carried_in = sum(p.carry_in for p in race.state.pools.values())
    takeout_total = breakage = topup = carried_out = 0
    for event in race.events:
        if isinstance(event, DividendsDeclared):
            for pool in event.pools:
                assert pool.breakage_cents >= 0
                assert pool.topup_cents >= 0
                takeout_total += pool.takeout_cents
                breakage += pool.breakage_cents
                topup += pool.topup_cents
                carried_out += pool.carry_out_cents
        if isinstance(event, RaceAbandoned):
            carried_out += event.carry_out_cents
    assert payouts + refunds + takeout_total + breakage - topup + carried_out - carried_in == stakes
