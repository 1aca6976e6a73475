"""The live odds board: what a bettor sees while betting is open.

Computed from a race's running pool totals (kept O(1) per bet by ``evolve``), so a board
built after any event reflects every bet up to that event: never a step behind.
"""

from __future__ import annotations

from fractions import Fraction

import msgspec

from .dividends import scenario_price
from .money import round_half_up
from .pools import PoolType
from .race import RaceState

#: The US odds ladder shown to bettors; odds are rounded down onto it.
US_LADDER: tuple[tuple[int, int], ...] = (
    (1, 9), (1, 5), (2, 5), (1, 2), (3, 5), (4, 5), (1, 1), (6, 5), (7, 5), (3, 2), (8, 5),
    (9, 5), (2, 1), (5, 2), (3, 1), (7, 2), (4, 1), (9, 2), (5, 1), (6, 1), (7, 1), (8, 1),
    (9, 1), (10, 1), (11, 1), (12, 1), (13, 1), (14, 1), (15, 1), (16, 1), (17, 1), (18, 1),
    (19, 1), (20, 1), (25, 1), (30, 1), (35, 1), (40, 1), (45, 1), (50, 1), (60, 1), (75, 1),
    (99, 1),
)  # fmt: skip


def ladder_odds(odds_to_one: Fraction) -> str:
    """Round ``odds_to_one`` down onto the US ladder (below 1-9 shows 1-9)."""
    shown = US_LADDER[0]
    for num, den in US_LADDER:
        if Fraction(num, den) <= odds_to_one:
            shown = (num, den)
        else:
            break
    return f"{shown[0]}-{shown[1]}"


class PoolTotals(msgspec.Struct, frozen=True, kw_only=True):
    pool: PoolType
    gross_cents: int
    carry_in_cents: int
    net_cents: int


class RunnerOdds(msgspec.Struct, frozen=True, kw_only=True):
    """One runner's line. Dividends are cents per $1 (nearest cent, approximate; at least
    the profile's minimum dividend); ranges are (low, high) cents per the profile's price
    base, after breakage. A runner without stakes (or scratched) has no win dividend,
    odds or ladder (``None``)."""

    number: int
    name: str
    scratched: bool
    win_stakes_cents: int
    place_stakes_cents: int
    show_stakes_cents: int
    win_dividend_cents: int | None
    odds_to_one: float | None
    ladder: str | None
    place_pays: tuple[int, int] | None
    show_pays: tuple[int, int] | None


class OddsBoard(msgspec.Struct, frozen=True, kw_only=True):
    race_id: str
    status: str
    pools: tuple[PoolTotals, ...]
    runners: tuple[RunnerOdds, ...]
    price_base_cents: int


def _will_pay(state: RaceState, kind: PoolType, runner: int) -> tuple[int, int] | None:
    """The lowest and highest price ``runner`` can pay in a place or show pool: with the
    other paying places taken by the most backed runners, and by the least backed."""
    pool = state.pools.get(kind)
    if pool is None or pool.stakes.get((runner,), 0) <= 0:
        return None
    places = pool.profile.place_places if kind is PoolType.PLACE else pool.profile.show_places
    others = sorted(
        (r for r in state.live_runners if r != runner),
        key=lambda r: (pool.stakes.get((r,), 0), r),
    )
    if len(others) < places - 1:
        return None
    stakes = pool.stakes
    net = pool.net
    prices = [
        scenario_price(pool.profile, net, stakes[(runner,)], [stakes.get((r,), 0) for r in chosen])
        for chosen in (others[::-1][: places - 1], others[: places - 1])
    ]
    return (min(prices), max(prices))


def odds_board(state: RaceState) -> OddsBoard:
    """The board for ``state``: pools, and for every runner its approximate win
    dividend, odds-to-one, ladder odds and place/show will-pay ranges."""
    win = state.pools.get(PoolType.WIN)
    place = state.pools.get(PoolType.PLACE)
    show = state.pools.get(PoolType.SHOW)
    base = next(iter(state.pools.values())).profile.price_base_cents if state.pools else 100
    runners = []
    for number, name in state.runners.items():
        scratched = number in state.scratched
        w = win.stakes.get((number,), 0) if win else 0
        dividend = odds = ladder = None
        if win and w > 0 and not scratched:
            # what the runner pays per unit if it wins: its share of the net pool, but
            # never below the profile's minimum dividend, as settlement pays it (and as
            # the place/show ranges show it). A runner holding more than the net pool
            # after takeout (a heavy favourite, the first bet of a race) showed negative
            # odds and a dividend below its stake.
            profile = win.profile
            per_unit = max(
                Fraction(win.net, w),
                Fraction(profile.min_dividend_cents, profile.price_base_cents),
            )
            dividend = round_half_up(per_unit * 100)
            exact_odds = per_unit - 1
            odds = float(exact_odds)
            ladder = ladder_odds(exact_odds)
        runners.append(
            RunnerOdds(
                number=number,
                name=name,
                scratched=scratched,
                win_stakes_cents=w,
                place_stakes_cents=place.stakes.get((number,), 0) if place else 0,
                show_stakes_cents=show.stakes.get((number,), 0) if show else 0,
                win_dividend_cents=dividend,
                odds_to_one=odds,
                ladder=ladder,
                place_pays=None if scratched else _will_pay(state, PoolType.PLACE, number),
                show_pays=None if scratched else _will_pay(state, PoolType.SHOW, number),
            )
        )
    return OddsBoard(
        race_id=state.race_id,
        status=state.status.value,
        pools=tuple(
            PoolTotals(
                pool=kind,
                gross_cents=pool.gross,
                carry_in_cents=pool.carry_in,
                net_cents=pool.net,
            )
            for kind, pool in state.pools.items()
        ),
        runners=tuple(runners),
        price_base_cents=base,
    )
