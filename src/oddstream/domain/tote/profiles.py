"""Rules profiles: how a jurisdiction turns a pool into dividends, as data.

Nothing else in the tote code branches on a jurisdiction; it reads these fields.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ShareRule(enum.StrEnum):
    PROFIT_SPLIT = "profit_split"
    """Stakes on the paying runners come back first; the profit (net − those stakes) is
    split equally per paying place (US place/show)."""
    NET_SPLIT = "net_split"
    """The net pool is split equally per paying place; each share is divided by the
    stakes on its runner, which are not subtracted first (Tabcorp-style place)."""


class Rounding(enum.StrEnum):
    DOWN = "down"
    """Round the quoted price down to the break step (breakage)."""
    NEAREST = "nearest"
    """Round the quoted price to the nearest step, halves up (no breakage)."""


class NoWinner(enum.StrEnum):
    REFUND = "refund"
    CARRYOVER = "carryover"


@dataclass(frozen=True, slots=True)
class RulesProfile:
    """How dividends are computed for every pool that names this profile.

    A dividend is quoted per ``price_base_cents`` staked (200: a "$2 price"), rounded to
    a multiple of ``break_step_cents`` by ``rounding``, and raised to at least
    ``min_dividend_cents`` (per the same base). A bet of ``s`` cents on a selection with
    dividend ``d`` is paid ``s × d // price_base_cents`` (rounded down to the cent).
    """

    name: str
    share_rule: ShareRule
    price_base_cents: int
    break_step_cents: int
    rounding: Rounding
    min_dividend_cents: int
    place_places: int
    show_places: int
    no_winner: NoWinner

    def __post_init__(self) -> None:
        if self.price_base_cents <= 0 or self.break_step_cents <= 0:
            raise ValueError("price base and break step must be positive")
        if self.min_dividend_cents < 0:
            raise ValueError("minimum dividend must not be negative")
        if not 1 <= self.place_places <= self.show_places:
            raise ValueError("place pays at least one place and no more than show")


#: US profit split. The published worked examples ($9.20/$6.50 place, $2.40/$3.90/$5.80
#: show with $600 breakage) come out on 10c steps of the $2 price, so that is the step
#: here (5c per $1); a "10c per $1" jurisdiction sets ``price_base_cents=100``.
US = RulesProfile(
    name="us",
    share_rule=ShareRule.PROFIT_SPLIT,
    price_base_cents=200,
    break_step_cents=10,
    rounding=Rounding.DOWN,
    min_dividend_cents=210,
    place_places=2,
    show_places=3,
    no_winner=NoWinner.REFUND,
)

#: Tabcorp-style: equal shares of the net pool, dividends per $1 to the nearest cent,
#: no breakage; exotics without a winner carry over (jackpots).
TABCORP = RulesProfile(
    name="tabcorp",
    share_rule=ShareRule.NET_SPLIT,
    price_base_cents=100,
    break_step_cents=1,
    rounding=Rounding.NEAREST,
    min_dividend_cents=105,
    place_places=3,
    show_places=3,
    no_winner=NoWinner.CARRYOVER,
)

PROFILES: dict[str, RulesProfile] = {p.name: p for p in (US, TABCORP)}


def profile_named(name: str) -> RulesProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown rules profile {name!r}; known: {sorted(PROFILES)}") from None
