"""Odds in the formats people read: fractional, American, implied probability, and a
book's overround. Exact (``Fraction``) wherever the format allows; every display rounding
is named here and in ``docs/fixed-odds.md``.

Display roundings, one rule each:

- decimal: exact when the decimal terminates, else to the nearest ``places`` digits (a
  non-terminating value is never exactly halfway, so no tie rule is needed);
- fractional: never rounded — the exact reduced fraction (8/13 stays 8/13);
- American: to the nearest whole number, an exact half toward minus infinity, which is the
  less generous side for both signs (+150.5 shows +150, -162.5 shows -163);
- percentages (implied probability, book, overround): to the nearest ``places`` digits,
  halves away from zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

from ..tote.money import round_half_up
from .odds import Odds

_HALF = Fraction(1, 2)


def fractional(odds: Odds) -> Fraction:
    """Fractional odds (profit per unit staked), exact: 2.5 → 3/2."""
    return odds.value - 1


def fractional_str(odds: Odds) -> str:
    """``"3/2"``; evens is ``"1/1"``. Exact: a reduced fraction, no ladder."""
    value = fractional(odds)
    return f"{value.numerator}/{value.denominator}"


def american(odds: Odds) -> Fraction:
    """American odds, exact: ``+100 × (d − 1)`` from evens up, ``−100 / (d − 1)`` below.
    Evens (2.0) is +100."""
    profit = fractional(odds)
    return 100 * profit if profit >= 1 else -100 / profit


def american_line(odds: Odds) -> int:
    """American odds as quoted, a whole number: the nearest one, an exact half rounded
    toward minus infinity (the less generous price on either side of evens)."""
    return math.ceil(american(odds) - _HALF)


def american_str(odds: Odds) -> str:
    """``"+150"``, ``"-110"`` (rounded as :func:`american_line`)."""
    return f"{american_line(odds):+d}"


def decimal_str(odds: Odds, places: int = 2) -> str:
    """Decimal odds as text with at least ``places`` decimals: every digit when the
    decimal terminates (``"2.10"``, ``"1.905"``), else rounded to the nearest ``places``
    digits (8/13 → ``"1.62"``)."""
    return _digits(odds.value, places)


def exact_str(odds: Odds) -> str:
    """The price as text that never shows two prices alike (for messages and logs): the
    decimal when it terminates (``"2.10"``, ``"1.905"``), else its first four decimals,
    cut, an ellipsis and the exact fractional odds (8/13 → ``"1.6153… (8/13)"``).

    :func:`decimal_str` rounds 8/13 to ``"1.62"``, which is also the text of the better
    price 1.62: a refusal quoting both would read "1.62 now, below the 1.62 asked"."""
    if _terminates(odds.value):
        return decimal_str(odds)
    cut = math.floor(odds.value * 10**4)
    return f"{cut // 10**4}.{cut % 10**4:04d}… ({fractional_str(odds)})"


def implied_probability(odds: Odds) -> Fraction:
    """The probability the price implies, ``1 / d``, exact (1.91 → 100/191)."""
    return 1 / odds.value


def fair_odds(probability: Fraction) -> Odds:
    """The price with no margin for an exact ``probability`` (0 < p < 1): ``1 / p``."""
    if not 0 < probability < 1:
        raise ValueError("a probability for a price is above 0 and below 1")
    return Odds.exact(1 / probability)


def book_percentage(prices: Iterable[Odds]) -> Fraction:
    """The book's percentage, ``100 × Σ 1/d`` over its outcomes, exact (1.91/1.91 →
    20000/191 = 104.71…). Above 100 the book has a margin."""
    return 100 * sum((implied_probability(p) for p in prices), Fraction(0))


def overround(prices: Iterable[Odds]) -> Fraction:
    """The overround as a percentage, ``book_percentage − 100``, exact (negative for a
    book below 100 %)."""
    return book_percentage(prices) - 100


def probability_percent(odds: Odds) -> Fraction:
    """The implied probability as a percentage, exact."""
    return 100 * implied_probability(odds)


def percent_str(value: Fraction, places: int = 1) -> str:
    """A percentage as text, to the nearest ``places`` digits, halves away from zero
    (104.712… → ``"104.7"``)."""
    _check_places(places)
    scale = 10**places
    magnitude = round_half_up(abs(value) * scale)
    sign = "-" if value < 0 and magnitude else ""
    whole, part = divmod(magnitude, scale)
    return f"{sign}{whole}.{part:0{places}d}" if places else f"{sign}{whole}"


def _check_places(places: int) -> None:
    if type(places) is not int or places < 0:
        raise ValueError(f"places is a whole number, 0 or more (got {places!r})")


def _twos_fives(den: int) -> tuple[int, int, int]:
    """``den`` as ``2**twos × 5**fives × rest``: ``(twos, fives, rest)``."""
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    return twos, fives, den


def _terminates(value: Fraction) -> bool:
    return _twos_fives(value.denominator)[2] == 1


def _digits(value: Fraction, places: int) -> str:
    """Non-negative ``value`` with every digit if it terminates, else rounded to
    ``places`` (nearest; a non-terminating value has no ties)."""
    _check_places(places)
    twos, fives, rest = _twos_fives(value.denominator)
    if rest == 1:
        places = max(places, twos, fives)
        scaled = int(value * 10**places)
    else:
        scaled = round_half_up(value * 10**places)
    whole, part = divmod(scaled, 10**places)
    return f"{whole}.{part:0{places}d}" if places else str(whole)
