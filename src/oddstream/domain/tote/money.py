"""Integer-cent arithmetic with every rounding rule spelled out."""

from __future__ import annotations

from fractions import Fraction

BPS = 10_000  # basis points in 100 %


def percent_of(amount_cents: int, rate_bps: int) -> int:
    """``amount × rate``, rounded half up to the cent (takeouts)."""
    if amount_cents < 0 or rate_bps < 0:
        raise ValueError("amount and rate must not be negative")
    return (amount_cents * rate_bps + BPS // 2) // BPS


def round_half_up(value: Fraction) -> int:
    """Round a non-negative exact value to the nearest integer, halves up."""
    return int((value * 2 + 1) // 2)


def floor_to_step(value: Fraction, step: int) -> int:
    """Round a non-negative exact value down to a multiple of ``step``."""
    return int(value // step) * step


def cents_to_str(cents: int) -> str:
    """``1234`` → ``"12.34"`` (negative amounts keep their sign)."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"
