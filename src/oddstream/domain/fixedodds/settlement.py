"""What a fixed-odds bet returns: each settlement rule, in integer cents.

One rounding, named: a payout is the exact ``stake × price`` (divided by the number of
runners tied in a dead heat) rounded **down** to the cent. The book cannot pay a fraction
of a cent, and rounding up would pay more than the price the customer accepted; rounding
down costs the customer less than a cent and is what the tote's payouts do too
(``docs/tote.md``). The fraction of a cent stays with the book.
"""

from __future__ import annotations

import enum
from fractions import Fraction

from .odds import Odds


class SettleReason(enum.StrEnum):
    """Why a bet was settled as it was (``BetSettled.reason``)."""

    WON = "won"
    LOST = "lost"
    DEAD_HEAT = "dead_heat"
    VOID = "void"


def win_payout(stake_cents: int, price: Odds) -> int:
    """A winning bet's return, stake included: ``⌊stake × price⌋`` cents."""
    return stake_cents * price.num // price.den


def dead_heat_payout(stake_cents: int, price: Odds, tied: int) -> int:
    """A bet on one of ``tied`` runners sharing the winning place: ``stake / tied`` is
    paid at the price and the rest of the stake is lost, ``⌊stake × price / tied⌋``.

    The stake is divided exactly, not in cents first, so there is no remainder cent to
    place: the one rounding is the final one, down, and the fraction of a cent is the
    book's. (Rounding the undivided payout down first gives the same cents, since
    ``⌊⌊x⌋ / n⌋ = ⌊x / n⌋``.) With ``tied == 1`` it is :func:`win_payout`.
    """
    if tied < 1:
        raise ValueError("a dead heat has at least one runner")
    return stake_cents * price.num // (price.den * tied)


def exact_return(stake_cents: int, price: Odds, tied: int = 1) -> Fraction:
    """The unrounded return in cents, ``stake × price / tied`` (for checks and reports)."""
    return Fraction(stake_cents * price.num, price.den * tied)
