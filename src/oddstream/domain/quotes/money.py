"""Pounds on the wire, integer pence inside: exact both ways, never through binary float.

The source system sends money as JSON numbers in pounds (``1234.56``). The decoder hands
this module the number's exact value — a ``Decimal`` parsed from the number's own text,
or an ``int`` — and gets integer pence back, or a :class:`MoneyError` saying why not:

- more than two decimal places that are not zeros (``12.345``): refused, never rounded
  (``12.340`` is exactly 1234 pence and is accepted);
- a negative amount where the field does not allow one;
- more than :data:`MAX_MONEY_PENCE` in magnitude, NaN or an infinity.
"""

from __future__ import annotations

from decimal import Decimal

#: The largest amount accepted, in pence (£100bn): far above any premium or a business's
#: turnover, far below where a BIGINT column (or a float64 read by an analyst's tool)
#: stops being exact.
MAX_MONEY_PENCE = 10**13
_MAX_DIGITS = len(str(MAX_MONEY_PENCE)) + 1


class MoneyError(ValueError):
    """An amount that cannot be stored exactly as integer pence; ``str()`` says why."""


def pounds_to_pence(value: Decimal | int, *, allow_negative: bool = False) -> int:
    """The exact number of pence in ``value`` pounds.

    ``Decimal("1234.56")`` → ``123456``; ``Decimal("0.3")`` → ``30``; ``5`` → ``500``.
    Works on the decimal's digits and exponent only (no context arithmetic, which would
    round past 28 significant digits), so the answer is exact for any input.
    """
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise TypeError(f"expected an int or a Decimal, got {type(value).__name__}")
    if isinstance(value, int):
        if abs(value) > MAX_MONEY_PENCE // 100:
            raise MoneyError(f"more than the largest amount accepted ({_limit()})")
        pence = value * 100
    else:
        if not value.is_finite():
            raise MoneyError(f"{value} is not an amount")
        sign, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)  # finite
        coefficient = int("".join(map(str, digits)))
        if coefficient == 0:
            return 0
        if value.adjusted() + 2 >= _MAX_DIGITS:  # cheap bound before any big power of ten
            raise MoneyError(f"more than the largest amount accepted ({_limit()})")
        shift = exponent + 2  # pence = coefficient × 10**shift
        if shift >= 0:
            pence = coefficient * 10**shift
        else:
            if -shift > len(digits):  # coefficient < 10**len(digits) <= 10**-shift
                raise MoneyError(f"{value} has more than 2 decimal places")
            whole, rest = divmod(coefficient, 10**-shift)
            if rest:
                raise MoneyError(f"{value} has more than 2 decimal places")
            pence = whole
        if sign:
            pence = -pence
        if abs(pence) > MAX_MONEY_PENCE:
            raise MoneyError(f"more than the largest amount accepted ({_limit()})")
    if pence < 0 and not allow_negative:
        raise MoneyError(f"{value} is negative")
    return pence


def pence_to_pounds(pence: int) -> Decimal:
    """``123456`` → ``Decimal("1234.56")``: always two places, exact."""
    if isinstance(pence, bool) or not isinstance(pence, int):
        raise TypeError(f"expected int pence, got {type(pence).__name__}")
    sign = 1 if pence < 0 else 0
    return Decimal((sign, tuple(int(d) for d in str(abs(pence))), -2))


def _limit() -> str:
    return f"£{MAX_MONEY_PENCE // 100:,}"
