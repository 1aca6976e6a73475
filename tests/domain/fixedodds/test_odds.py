"""Exact odds: reading each format, converting between them, the display roundings.

Published figures: decimal 2.5 = 3/2 = +150, 1.5 = 1/2 = -200, 2.10 = 11/10 = +110,
1.91 ≈ -110, 8/13 = 1.62 = -163 (-162.5 exactly), 4/6 = -150, 1/3 = -300, 100/30 = +333;
-110 implies 52.38 %, a 1.91/1.91 book is 104.7 % (overround 4.7 %), a -110/-110 book
104.76 % (the "4.76 % vig")."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oddstream.domain.fixedodds.errors import FixedOddsRejection
from oddstream.domain.fixedodds.formats import (
    american,
    american_line,
    american_str,
    book_percentage,
    decimal_str,
    exact_str,
    fair_odds,
    fractional,
    fractional_str,
    implied_probability,
    overround,
    percent_str,
    probability_percent,
)
from oddstream.domain.fixedodds.odds import MAX_DECIMAL_ODDS, MAX_DENOMINATOR, Odds

# ----------------------------------------------------------------------------- published


@pytest.mark.parametrize(
    ("fractional_text", "decimal_text", "american_text", "american_exact"),
    [
        ("3/2", "2.50", "+150", Fraction(150)),
        ("1/2", "1.50", "-200", Fraction(-200)),
        ("1/1", "2.00", "+100", Fraction(100)),
        ("11/10", "2.10", "+110", Fraction(110)),
        ("91/100", "1.91", "-110", Fraction(-10000, 91)),
        ("8/13", "1.62", "-163", Fraction(-325, 2)),
        ("4/6", "1.67", "-150", Fraction(-150)),
        ("1/3", "1.33", "-300", Fraction(-300)),
        ("100/30", "4.33", "+333", Fraction(1000, 3)),
        ("11/4", "3.75", "+275", Fraction(275)),
        ("1/4", "1.25", "-400", Fraction(-400)),
        ("5/1", "6.00", "+500", Fraction(500)),
        ("1/10", "1.10", "-1000", Fraction(-1000)),
    ],
)
def test_published_conversions(fractional_text, decimal_text, american_text, american_exact):
    price = Odds.from_fractional(fractional_text)
    assert decimal_str(price) == decimal_text
    assert american(price) == american_exact
    assert american_str(price) == american_text
    num, den = (int(x) for x in fractional_text.split("/"))
    assert fractional(price) == Fraction(num, den)


def test_decimal_prices_round_trip_exactly():
    assert Odds.from_decimal("2.10") == Odds(21, 10)
    assert fractional_str(Odds.from_decimal("2.10")) == "11/10"
    assert Odds.from_fractional("11/10") == Odds.from_decimal("2.1")
    assert Odds.from_decimal("1.91") == Odds(191, 100)
    assert decimal_str(Odds.from_decimal("1.905")) == "1.905"  # every digit it has
    # a float is the decimal it prints as, not the binary number nearest it
    assert Odds.from_decimal(1.91) == Odds(191, 100)
    assert Odds.from_decimal(Decimal("2.100")) == Odds(21, 10)
    assert Odds.from_fractional("evens") == Odds.from_decimal(2) == Odds.from_american(100)


def test_american_lines_read_exactly():
    assert Odds.from_american("-110") == Odds.exact(1 + Fraction(100, 110))
    assert decimal_str(Odds.from_american(-110)) == "1.91"
    assert Odds.from_american("+120") == Odds.from_decimal("2.20")
    assert Odds.from_american(-150) == Odds.from_fractional("4/6")
    # -100 and +100 are both evens; evens is shown as +100
    assert Odds.from_american(-100) == Odds.from_american(100)
    assert american_line(Odds.from_american(-100)) == 100


def test_implied_probability_and_the_book():
    assert percent_str(probability_percent(Odds.from_american(-110)), 2) == "52.38"
    assert percent_str(probability_percent(Odds.from_american(150)), 2) == "40.00"
    assert percent_str(probability_percent(Odds.from_american(-200)), 2) == "66.67"
    assert implied_probability(Odds.from_decimal("1.91")) == Fraction(100, 191)
    book = [Odds.from_decimal("1.91")] * 2
    assert book_percentage(book) == Fraction(20000, 191)
    assert percent_str(book_percentage(book)) == "104.7"
    assert percent_str(overround(book)) == "4.7"
    vig = [Odds.from_american(-110)] * 2
    assert percent_str(book_percentage(vig), 2) == "104.76"
    assert percent_str(overround(vig), 2) == "4.76"
    assert overround([Odds(2, 1), Odds(2, 1)]) == 0
    # a book below 100 % (an arbitrage): the overround is negative
    assert percent_str(book_percentage([Odds.from_decimal("2.10")] * 2)) == "95.2"
    assert percent_str(overround([Odds.from_decimal("2.10")] * 2)) == "-4.8"


def test_display_ties_follow_their_rules():
    # American: an exact half goes toward minus infinity, the less generous price
    assert american(Odds.from_decimal("2.005")) == Fraction(201, 2)
    assert american_line(Odds.from_decimal("2.005")) == 100
    assert american_line(Odds.from_fractional("8/13")) == -163
    # percentages: halves away from zero
    assert percent_str(Fraction(25, 2), 0) == "13"
    assert percent_str(Fraction(-25, 2), 0) == "-13"
    assert percent_str(Fraction(-1, 30), 1) == "0.0"  # no "-0.0"


@pytest.mark.parametrize(
    ("reader", "value", "code"),
    [
        (Odds.from_decimal, "1.00", "odds_too_low"),
        (Odds.from_decimal, "1", "odds_too_low"),
        (Odds.from_decimal, "0.5", "odds_too_low"),
        (Odds.from_decimal, Decimal("0.99"), "odds_too_low"),
        (Odds.from_decimal, Decimal("1E-999999"), "odds_too_low"),
        (Odds.from_decimal, Decimal("1E+999999"), "odds_too_high"),
        # at or below 1.0 is too low however large its exponent (a JSON number read as a
        # Decimal): not "too high" because the exponent is checked before the sign
        (Odds.from_decimal, Decimal("-1E+6"), "odds_too_low"),
        (Odds.from_decimal, Decimal("-5E+999999"), "odds_too_low"),
        (Odds.from_decimal, Decimal("0E+10"), "odds_too_low"),
        (Odds.from_decimal, Decimal("-1E-999999"), "odds_too_low"),
        (Odds.from_decimal, "10001.01", "odds_too_high"),
        (Odds.from_decimal, "-2.0", "bad_odds"),
        (Odds.from_decimal, "2,10", "bad_odds"),
        (Odds.from_decimal, " 2.10", "bad_odds"),
        (Odds.from_decimal, "1." + "0" * 40 + "1", "bad_odds"),
        (Odds.from_decimal, "1.0000001", "bad_odds"),  # finer than 1/1000000
        (Odds.from_decimal, float("nan"), "bad_odds"),
        (Odds.from_decimal, float("inf"), "bad_odds"),
        (Odds.from_decimal, Decimal("NaN"), "bad_odds"),
        (Odds.from_decimal, True, "bad_odds"),
        (Odds.from_fractional, "0/1", "odds_too_low"),
        (Odds.from_fractional, "1/0", "bad_odds"),
        (Odds.from_fractional, "-1/2", "bad_odds"),
        (Odds.from_fractional, "1.5/2", "bad_odds"),
        (Odds.from_fractional, (1, 0), "bad_odds"),
        (Odds.from_american, 99, "bad_odds"),
        (Odds.from_american, -99, "bad_odds"),
        (Odds.from_american, 0, "bad_odds"),
        (Odds.from_american, "+1x0", "bad_odds"),
        (Odds.from_american, 1.5, "bad_odds"),
        (Odds.from_american, 10**7, "odds_too_high"),
        (Odds.from_american, -(10**9), "bad_odds"),  # finer than 1/1000000
    ],
)
def test_bad_odds_are_refused_with_a_stable_code(reader, value, code):
    with pytest.raises(FixedOddsRejection) as info:
        reader(value)
    assert info.value.code == code


def test_stored_odds_are_checked_on_decoding():
    assert msgspec.json.decode(b'{"num":21,"den":13}', type=Odds) == Odds.from_fractional("8/13")
    for bad in (b'{"num":4,"den":2}', b'{"num":1,"den":1}', b'{"num":3,"den":0}'):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(bad, type=Odds)


# ----------------------------------------------------------------------------- properties

prices = (
    st.fractions(min_value=Fraction(1), max_value=MAX_DECIMAL_ODDS, max_denominator=MAX_DENOMINATOR)
    .filter(lambda f: f > 1)
    .map(Odds.exact)
)


@settings(max_examples=500)
@given(prices)
def test_fractional_round_trips_exactly(price):
    assert Odds.from_fractional(fractional_str(price)) == price


@settings(max_examples=500)
@given(prices)
def test_decimal_round_trips_when_it_terminates(price):
    text = decimal_str(price)
    den = price.den
    while den % 2 == 0:
        den //= 2
    while den % 5 == 0:
        den //= 5
    if den == 1:
        assert Odds.from_decimal(text) == price
    else:
        # rounded to two places, to the nearest: within half a hundredth, never a tie
        assert abs(Fraction(text) - price.value) < Fraction(1, 200)


@settings(max_examples=500)
@given(
    st.integers(0, 4)
    .flatmap(
        lambda places: st.tuples(st.integers(1, 10_000), st.integers(0, 10**places - 1)).map(
            lambda wp: f"{wp[0]}.{wp[1]:0{places}d}" if places else str(wp[0])
        )
    )
    .filter(lambda text: Fraction(text) > 1)
)
def test_published_decimal_text_round_trips(text):
    places = len(text.partition(".")[2])
    shown = decimal_str(Odds.from_decimal(text), max(places, 2))
    assert Fraction(shown) == Fraction(text)
    assert shown.partition(".")[2].startswith(text.partition(".")[2])


@settings(max_examples=500)
@given(st.one_of(st.integers(-(10**6), -100), st.integers(100, 10**6)))
def test_american_lines_round_trip(line):
    price = Odds.from_american(line)
    assert american_line(price) == (100 if line == -100 else line)
    assert american(price) == (100 if line == -100 else line)
    assert Odds.from_american(american_str(price)) == price


@settings(max_examples=500)
@given(prices)
def test_american_rounding_is_nearest_with_halves_down(price):
    exact = american(price)
    shown = american_line(price)
    assert abs(shown - exact) <= Fraction(1, 2)
    if abs(shown - exact) == Fraction(1, 2):
        assert shown < exact  # the less generous side
    assert shown >= 100 or shown <= -100


@settings(max_examples=300)
@given(prices, prices)
def test_every_format_keeps_the_order_of_prices(a, b):
    if a.value < b.value:
        assert fractional(a) < fractional(b)
        assert american(a) < american(b)
        assert implied_probability(a) > implied_probability(b)


@settings(max_examples=500)
@given(prices)
def test_implied_probability_round_trips(price):
    assert fair_odds(implied_probability(price)) == price


@settings(max_examples=200)
@given(st.lists(st.integers(1, 1000), min_size=2, max_size=3))
def test_a_book_of_fair_prices_is_exactly_one_hundred_percent(weights):
    total = sum(weights)
    book = [fair_odds(Fraction(w, total)) for w in weights if w < total]
    if len(book) == len(weights):
        assert book_percentage(book) == 100
        assert overround(book) == 0


@settings(max_examples=300)
@given(st.fractions(min_value=-1000, max_value=1000, max_denominator=10_000), st.integers(0, 3))
def test_percentages_round_to_the_nearest_halves_away_from_zero(value, places):
    shown = Fraction(percent_str(value, places))
    error = abs(shown - value)
    assert error <= Fraction(1, 2 * 10**places)
    if error == Fraction(1, 2 * 10**places):
        assert abs(shown) > abs(value)
    assert math.copysign(1, shown) == math.copysign(1, value) or shown == 0


@settings(max_examples=500)
@given(prices)
def test_exact_text_names_the_price_exactly(price):
    # read back from the text alone: the decimal when it terminates, else the fraction
    text = exact_str(price)
    if "…" in text:
        shown, _, fraction = text.partition("… (")
        assert Odds.from_fractional(fraction.removesuffix(")")) == price
        # the decimals shown are the price's own, cut (not rounded)
        assert Fraction(shown) <= price.value < Fraction(shown) + Fraction(1, 10**4)
    else:
        assert Odds.from_decimal(text) == price


def test_exact_text_examples():
    assert exact_str(Odds.from_fractional("8/13")) == "1.6153… (8/13)"
    assert exact_str(Odds.from_fractional("1/3")) == "1.3333… (1/3)"
    assert exact_str(Odds.from_american(-110)) == "1.9090… (10/11)"
    assert exact_str(Odds.from_decimal("1.62")) == "1.62"
    assert exact_str(Odds.from_decimal("1.905")) == "1.905"


@pytest.mark.parametrize("places", [-1, 1.5, True])
def test_display_places_are_a_whole_number(places):
    # a negative count made 10**places a float (money-style rounding of a float)
    for show in (
        lambda: decimal_str(Odds(21, 13), places),
        lambda: percent_str(Fraction(1, 3), places),
    ):
        with pytest.raises(ValueError, match="places"):
            show()
