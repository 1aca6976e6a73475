"""Pounds to pence: exact vectors, and (hypothesis) exact for every decimal of at most two
places, refused for every one with a non-zero third place, through the decoder too."""

from __future__ import annotations

import re
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from oddstream.domain.quotes import (
    InvalidQuoteEvent,
    QuoteEvent,
    QuoteProductsUpdated,
    decode_quote_event,
)
from oddstream.domain.quotes.money import (
    MAX_MONEY_PENCE,
    MoneyError,
    pence_to_pounds,
    pounds_to_pence,
)

LIMIT = Decimal(MAX_MONEY_PENCE).scaleb(-2)


@pytest.mark.parametrize(
    ("text", "pence"),
    [
        ("1234.56", 123456),
        ("0.1", 10),
        ("0.2", 20),
        ("0.3", 30),
        ("0.01", 1),
        ("0", 0),
        ("-0.00", 0),
        ("0E-50", 0),
        ("12.340", 1234),
        ("12.3400000000000000000000000000000", 1234),
        ("1E+2", 10000),
        ("1.5e3", 150000),
        ("12E-2", 12),
        ("999999999.99", 99999999999),
        ("100000000000", MAX_MONEY_PENCE),
    ],
)
def test_exact_vectors(text, pence):
    assert pounds_to_pence(Decimal(text)) == pence


@pytest.mark.parametrize(
    "text",
    [
        "12.345",
        "0.001",
        "1.0000000000000000000000000000001",  # past Decimal's 28-digit context
        "1E-3",
        "1E-999999999",
    ],
)
def test_sub_penny_amounts_are_refused(text):
    with pytest.raises(MoneyError, match="more than 2 decimal places"):
        pounds_to_pence(Decimal(text))


def test_negative_only_where_allowed():
    with pytest.raises(MoneyError, match="negative"):
        pounds_to_pence(Decimal("-0.01"))
    with pytest.raises(MoneyError, match="negative"):
        pounds_to_pence(-3)
    assert pounds_to_pence(Decimal("-47.72"), allow_negative=True) == -4772
    assert pounds_to_pence(-3, allow_negative=True) == -300


@pytest.mark.parametrize(
    "value",
    [
        Decimal("100000000000.01"),
        Decimal("1E+12"),
        Decimal("1E+999999999"),
        10**11 + 1,
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
    ],
)
def test_too_large_or_not_a_number(value):
    with pytest.raises(MoneyError):
        pounds_to_pence(value, allow_negative=True)


def test_only_ints_and_decimals():
    with pytest.raises(TypeError):
        pounds_to_pence(0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pounds_to_pence(True)


def test_pence_back_to_pounds():
    assert str(pence_to_pounds(123456)) == "1234.56"
    assert str(pence_to_pounds(-5)) == "-0.05"
    assert str(pence_to_pounds(0)) == "0.00"
    # no context rounding, even past Decimal's 28 digits
    assert str(pence_to_pounds(10**40 + 1)) == "1" + "0" * 37 + "0.01"


money_2dp = st.decimals(min_value=-LIMIT, max_value=LIMIT, places=2)


@given(money_2dp)
def test_any_two_place_decimal_is_exact(value):
    pence = pounds_to_pence(value, allow_negative=True)
    assert Fraction(pence, 100) == Fraction(value)
    assert pence_to_pounds(pence) == value


@given(
    money_2dp,
    st.integers(min_value=1, max_value=9),
    st.integers(min_value=3, max_value=40),
)
def test_any_non_zero_sub_penny_digit_is_refused(value, digit, place):
    with localcontext() as exact:
        exact.prec = 100  # the sum itself must not round
        sub_penny = value + Decimal((0, (digit,), -place))
    assume(abs(sub_penny) <= LIMIT)
    with pytest.raises(MoneyError, match="more than 2 decimal places"):
        pounds_to_pence(sub_penny, allow_negative=True)


@given(money_2dp.filter(lambda d: d >= 0), st.sampled_from(["", "0", "000"]))
def test_the_decoder_reads_the_number_text_exactly(value, zeros):
    text = f"{value}{zeros}" if "E" not in str(value) and "." in str(value) else str(value)
    raw = (
        '{"quoteId": "q", "products": [{"id": "p", "key": "k", "name": "n", '
        f'"total": {text}, "ipt": 0, "rates": []}}]}}'
    )
    event = decode_quote_event(raw)
    assert isinstance(event, QuoteProductsUpdated)
    assert Fraction(event.products[0].total_pence, 100) == Fraction(value)


#: any JSON number text: sign, integer part, fraction, exponent (of any size)
NUMBER = r"(-?)(0|[1-9][0-9]{0,24})(?:\.([0-9]{1,25}))?(?:[eE]([+-]?[0-9]{1,25}))?"


def _pence_of(text: str) -> int | None:
    """The number's exact value in pence when it is whole pence, else None; by integer
    arithmetic on its parts, bounded whatever the exponent."""
    match = re.fullmatch(NUMBER, text)
    assert match
    sign, whole, fraction, exponent = match.groups()
    coefficient = int(whole + (fraction or ""))
    shift = int(exponent or 0) - len(fraction or "") + 2  # pence = coefficient × 10**shift
    if coefficient == 0:
        return 0
    if shift > 30:
        return None  # at least 10**30 pence: past any limit
    if shift >= 0:
        pence = coefficient * 10**shift
    elif -shift > 50:
        return None  # coefficient < 10**50 cannot be a multiple of 10**-shift
    else:
        pence, rest = divmod(coefficient, 10**-shift)
        if rest:
            return None
    return -pence if sign else pence


@settings(max_examples=500, deadline=None)
@given(st.from_regex(NUMBER, fullmatch=True))
def test_any_json_number_as_money_is_exact_pence_or_refused_as_money(text):
    raw = (
        '{"quoteId": "q", "products": [{"id": "p", "key": "k", "name": "n", '
        f'"total": {text}, "ipt": 0, "rates": []}}]}}'
    )
    pence = _pence_of(text)
    acceptable = pence is not None and 0 <= pence <= MAX_MONEY_PENCE
    match = re.fullmatch(NUMBER, text)
    assert match
    exponent = match.group(4)
    outcome = _outcome(raw)
    if isinstance(outcome, InvalidQuoteEvent):
        if outcome.reason == "too_big":  # only past what a Decimal's exponent holds
            assert exponent is not None, text
            assert abs(int(exponent)) > 10**17, (text, outcome)
        else:
            assert outcome.reason == "bad_money", (text, outcome)
            assert not acceptable, (text, outcome)
        return
    assert isinstance(outcome, QuoteProductsUpdated)
    assert acceptable, text
    assert outcome.products[0].total_pence == pence


def _outcome(raw: str) -> QuoteEvent | InvalidQuoteEvent:
    """The event, or the refusal: anything else raised fails the test."""
    try:
        return decode_quote_event(raw)
    except InvalidQuoteEvent as error:
        return error
