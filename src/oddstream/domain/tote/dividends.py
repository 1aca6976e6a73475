"""Parimutuel dividends: from a pool's stakes and a result to a price per selection.

Exact arithmetic (``Fraction``) until the one rounding each rule names; money in cents.
See ``docs/tote.md`` for the formulas and the worked examples that test them.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from .money import floor_to_step, percent_of, round_half_up
from .pools import PoolType, Selection, selection_key
from .profiles import NoWinner, Rounding, RulesProfile, ShareRule

Placings = Sequence[Sequence[int]]
"""Finishing order as groups: ``[[3], [1, 5], [2]]`` is 3 first, 1 and 5 dead-heating
for second (so 2 is fourth)."""


@dataclass(frozen=True, slots=True)
class PoolOutcome:
    """What a pool pays, before individual bets are settled.

    ``allotted`` is the exact share of the net pool each paying selection receives
    (stakes returned plus profit share); ``dividends`` the rounded price per
    ``price_base`` cents staked. ``refund`` means every bet in the pool gets its stake
    back; ``carry_out`` is gross carried to a later pool.
    """

    pool: PoolType
    gross: int
    carry_in: int
    takeout: int
    net: int
    price_base: int
    dividends: dict[Selection, int] = field(default_factory=dict)
    allotted: dict[Selection, Fraction] = field(default_factory=dict)
    refund: bool = False
    carry_out: int = 0


def _round_price(value: Fraction, profile: RulesProfile) -> int:
    step = profile.break_step_cents
    if profile.rounding is Rounding.DOWN:
        price = floor_to_step(value, step)
    else:
        price = round_half_up(value / step) * step
    return max(price, profile.min_dividend_cents)


def _place_weights(placings: Placings, places: int) -> dict[int, Fraction]:
    """Each runner's fraction of the paying places: a dead heat shares the places its
    group spans, counting only places up to ``places``."""
    weights: dict[int, Fraction] = {}
    position = 1
    for group in placings:
        size = len(group)
        paying = max(0, min(places, position + size - 1) - position + 1)
        if paying:
            for runner in group:
                weights[runner] = Fraction(paying, size)
        position += size
    return weights


def _single_runner_pool(
    pool: PoolType,
    profile: RulesProfile,
    stakes: Mapping[Selection, int],
    placings: Placings,
    net: int,
    places: int,
) -> dict[Selection, Fraction] | None:
    """Allotted amounts for a win, place or show pool; ``None`` when nobody is paid."""
    finishers = sum(len(g) for g in placings)
    while places <= finishers:
        weights = {
            r: w for r, w in _place_weights(placings, places).items() if stakes.get((r,), 0) > 0
        }
        if weights:
            break
        places += 1  # nothing backed in the paying places: the next finisher's backers
    else:
        return None
    total_weight = sum(weights.values())
    if profile.share_rule is ShareRule.PROFIT_SPLIT:
        profit = net - sum(stakes[(r,)] for r in weights)
        return {(r,): stakes[(r,)] + profit * w / total_weight for r, w in weights.items()}
    return {(r,): net * w / total_weight for r, w in weights.items()}


def winning_combinations(pool: PoolType, placings: Placings) -> set[Selection]:
    """The selections an exotic pool pays for this result, dead heats included."""
    n = pool.runners_per_selection
    groups: list[Sequence[int]] = []
    covered = 0
    for group in placings:
        if covered >= n:
            break
        groups.append(group)
        covered += len(group)
    if covered < n:
        return set()
    combos: set[Selection] = set()
    for order in itertools.product(*(itertools.permutations(g) for g in groups)):
        flat = [r for part in order for r in part]
        combos.add(selection_key(pool, flat[:n]))
    return combos


def pool_outcome(
    pool: PoolType,
    profile: RulesProfile,
    takeout_bps: int,
    stakes: Mapping[Selection, int],
    placings: Placings,
    *,
    carry_in: int = 0,
    no_winner: NoWinner | None = None,
) -> PoolOutcome:
    """Dividends of one pool.

    ``stakes`` maps canonical selections (see :func:`selection_key`) to live stakes in
    cents (refunded bets already removed). ``carry_in`` is a carryover taken into this
    pool; the takeout is on stakes plus carry-in, and only when the pool is won.
    """
    gross = sum(stakes.values())
    if gross == 0 and carry_in == 0:
        return PoolOutcome(pool, 0, 0, 0, 0, profile.price_base_cents)
    takeout = percent_of(gross + carry_in, takeout_bps)
    net = gross + carry_in - takeout
    if pool.is_exotic:
        backed = sorted(c for c in winning_combinations(pool, placings) if stakes.get(c, 0) > 0)
        allotted = {c: Fraction(net, len(backed)) for c in backed} if backed else None
    else:
        places = {
            PoolType.WIN: 1,
            PoolType.PLACE: profile.place_places,
            PoolType.SHOW: profile.show_places,
        }[pool]
        allotted = _single_runner_pool(pool, profile, stakes, placings, net, places)
    if not allotted:
        rule = no_winner or profile.no_winner
        if pool.is_exotic and rule is NoWinner.CARRYOVER:
            return PoolOutcome(
                pool, gross, carry_in, 0, 0, profile.price_base_cents, carry_out=gross + carry_in
            )
        # Refund every bet; a carried-in amount cannot be refunded to anyone, so it
        # carries on.
        return PoolOutcome(
            pool, gross, carry_in, 0, 0, profile.price_base_cents, refund=True, carry_out=carry_in
        )
    base = profile.price_base_cents
    dividends = {
        sel: _round_price(amount * base / stakes[sel], profile) for sel, amount in allotted.items()
    }
    return PoolOutcome(pool, gross, carry_in, takeout, net, base, dividends, allotted)


def scenario_price(profile: RulesProfile, net: int, stake: int, others: Sequence[int]) -> int:
    """The price of a runner with ``stake`` if it and runners holding ``others`` (their
    stakes) fill a place or show pool's paying places, without dead heats.

    The same rule as :func:`pool_outcome` in closed form: unbacked runners drop out and
    their share goes to the backed ones, then the profile's share rule and rounding. The
    odds board evaluates it four times per runner on every push, where the general
    function cost ~4 ms a board.
    """
    backed = [s for s in others if s > 0]
    n = 1 + len(backed)
    if profile.share_rule is ShareRule.PROFIT_SPLIT:
        allotted = Fraction(stake * n + net - stake - sum(backed), n)
    else:
        allotted = Fraction(net, n)
    return _round_price(allotted * profile.price_base_cents / stake, profile)


def approximate_dividend(net: int, runner_stakes: int) -> Fraction | None:
    """The exact approximate dividend per unit staked, ``net / stakes``."""
    if runner_stakes <= 0:
        return None
    return Fraction(net, runner_stakes)
