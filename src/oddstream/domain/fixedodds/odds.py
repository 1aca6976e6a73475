"""Decimal odds, held exactly as a reduced fraction, and read exactly from each format.

Why a fraction and not integer ten-thousandths: bookmakers publish fractional prices
such as 8/13, 4/6 or 1/3 whose decimal odds (1.615384…, 1.666…, 1.333…) have no finite
decimal form. In ten-thousandths they would be stored as 1.6154, and a winning £13 bet
at 8/13 would pay £21.0002 instead of the £21 the customer was quoted. As a fraction
every published price — decimal (2.10 is 21/10), fractional (8/13 is 21/13 decimal),
American (-110 is 21/11 decimal) — is held exactly and converts back to what was
published. See ``docs/fixed-odds.md``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction

import msgspec

from .errors import FixedOddsRejection

#: The longest price taken (decimal 10001, fractional 10000/1, American +1000000).
MAX_DECIMAL_ODDS = 10_001
#: The finest price taken: decimal odds with a denominator above this are refused, so a
#: price stays small however it was written (six decimal places, American -999999).
MAX_DENOMINATOR = 1_000_000

#: The longest text a reader takes, so no input costs more than a few operations.
MAX_TEXT = 32

_DECIMAL_TEXT = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_FRACTIONAL_TEXT = re.compile(r"([0-9]+)/([0-9]+)")
_AMERICAN_TEXT = re.compile(r"[+-]?[0-9]+")


def _bad(message: str) -> FixedOddsRejection:
    return FixedOddsRejection("bad_odds", message)


class Odds(msgspec.Struct, frozen=True):
    """Decimal odds ``num / den``: what one unit staked returns, stake included (2.5 is
    ``Odds(5, 2)``). Always reduced, above 1, at most :data:`MAX_DECIMAL_ODDS`, with
    ``den`` at most :data:`MAX_DENOMINATOR`; build one with :meth:`exact` or a
    ``from_*`` reader. Compare prices by :attr:`value`."""

    num: int
    den: int

    def __post_init__(self) -> None:
        num, den = self.num, self.den
        if type(num) is not int or type(den) is not int or den < 1:
            raise _bad("odds are a whole numerator over a positive whole denominator")
        if math.gcd(num, den) != 1:
            raise _bad(f"{num}/{den} is not reduced")
        if num <= den:
            raise FixedOddsRejection(
                "odds_too_low", f"decimal odds must be above 1.0 (got {Fraction(num, den)})"
            )
        if den > MAX_DENOMINATOR:
            raise _bad(f"odds may be at most 1/{MAX_DENOMINATOR} finer than a whole number")
        if num > MAX_DECIMAL_ODDS * den:
            raise FixedOddsRejection(
                "odds_too_high", f"decimal odds may be at most {MAX_DECIMAL_ODDS}"
            )

    @property
    def value(self) -> Fraction:
        """The decimal odds as an exact fraction."""
        return Fraction(self.num, self.den)

    @classmethod
    def exact(cls, decimal_odds: Fraction | int) -> Odds:
        """The odds whose decimal value is exactly ``decimal_odds``."""
        value = Fraction(decimal_odds)
        return cls(value.numerator, value.denominator)

    @classmethod
    def from_decimal(cls, value: str | int | Decimal | float | Fraction) -> Odds:
        """Decimal odds, read exactly: ``"2.10"``, ``2``, ``Decimal("1.91")``.

        A float is read as the shortest decimal that prints as it (``1.91`` is 191/100,
        not the binary number nearest to it), which is what a JSON number means.
        """
        if isinstance(value, bool):
            raise _bad("a boolean is not odds")
        if isinstance(value, str):
            if len(value) > MAX_TEXT or not _DECIMAL_TEXT.fullmatch(value):
                raise _bad(f"{value!r} is not decimal odds (digits, at most one point)")
            return cls.exact(Fraction(value))
        if isinstance(value, float):
            if not math.isfinite(value):
                raise _bad("odds must be a finite number")
            return cls.exact(Fraction(repr(value)))
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise _bad("odds must be a finite number")
            # checked before the exact conversion, which would build 10**exponent; the
            # comparison first (cheap at any exponent), so that zero and negative odds are
            # too low whatever their exponent
            if value <= 1 or value.adjusted() < 0:
                raise FixedOddsRejection("odds_too_low", "decimal odds must be above 1.0")
            if value.adjusted() > len(str(MAX_DECIMAL_ODDS)):
                raise FixedOddsRejection(
                    "odds_too_high", f"decimal odds may be at most {MAX_DECIMAL_ODDS}"
                )
            if len(value.as_tuple().digits) > MAX_TEXT:
                raise _bad(f"decimal odds have at most {MAX_TEXT} digits")
            return cls.exact(Fraction(value))
        if isinstance(value, int | Fraction):
            return cls.exact(value)
        raise _bad(f"{type(value).__name__} is not decimal odds")

    @classmethod
    def from_fractional(cls, value: str | tuple[int, int] | Fraction) -> Odds:
        """Fractional (UK) odds, profit per unit staked: ``"11/10"``, ``(8, 13)``,
        ``"evens"`` — decimal odds are one more."""
        if isinstance(value, str):
            if value.lower() in ("evens", "evs"):
                return cls(2, 1)
            match = _FRACTIONAL_TEXT.fullmatch(value) if len(value) <= MAX_TEXT else None
            if not match:
                raise _bad(f"{value!r} is not fractional odds (like 11/10)")
            num, den = int(match[1]), int(match[2])
        elif isinstance(value, Fraction):
            num, den = value.numerator, value.denominator
        elif isinstance(value, tuple) and len(value) == 2:
            num, den = value
            if type(num) is not int or type(den) is not int:
                raise _bad("fractional odds are two whole numbers")
        else:
            raise _bad(f"{value!r} is not fractional odds")
        if den <= 0 or num < 0:
            raise _bad("fractional odds need a positive denominator and no sign")
        return cls.exact(1 + Fraction(num, den))

    @classmethod
    def from_american(cls, value: int | str) -> Odds:
        """American (moneyline) odds: ``+150`` wins 150 per 100 staked, ``-110`` stakes
        110 to win 100. Whole numbers, at most -100 or at least +100."""
        if isinstance(value, str):
            if len(value) > MAX_TEXT or not _AMERICAN_TEXT.fullmatch(value):
                raise _bad(f"{value!r} is not American odds (like +150 or -110)")
            line = int(value)
        elif type(value) is int:
            line = value
        else:
            raise _bad("American odds are a whole number")
        if -100 < line < 100:
            raise _bad(f"American odds are at most -100 or at least +100 (got {line})")
        profit = Fraction(line, 100) if line > 0 else Fraction(100, -line)
        return cls.exact(1 + profit)
