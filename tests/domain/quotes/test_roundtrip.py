"""(hypothesis) Any valid event survives encode → decode unchanged, as bytes and as a
parsed envelope; and a sample payload with any part replaced by any JSON value decodes
or is refused with an ``InvalidQuoteEvent`` — never another exception."""

from __future__ import annotations

import json
from datetime import UTC, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from oddstream.domain.quotes import (
    REASONS,
    AgencyProduct,
    Contact,
    Industry,
    InvalidQuoteEvent,
    Product,
    QuoteEvent,
    QuoteProductsUpdated,
    QuoteStarted,
    Rate,
    decode_quote_event,
    encode_quote_event,
)
from oddstream.domain.quotes.codec import DEFAULT_CODEC
from oddstream.domain.quotes.money import MAX_MONEY_PENCE

from .samples import PRODUCTS_UPDATED, QUOTE_STARTED, as_dict, to_json

ids = st.text(min_size=1, max_size=12).filter(lambda s: s.strip() != "")
text = st.text(max_size=20)
pence = st.integers(min_value=0, max_value=MAX_MONEY_PENCE)
signed_pence = st.integers(min_value=-MAX_MONEY_PENCE, max_value=MAX_MONEY_PENCE)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.decimals(
        allow_nan=False, allow_infinity=False, places=4, min_value=-(10**9), max_value=10**9
    ),
    st.decimals(allow_nan=False, allow_infinity=False).filter(lambda d: len(str(d)) <= 60),
    text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=8,
)
free_objects = st.dictionaries(text, json_values, max_size=3)


def extras(known: set[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Unknown fields: any names but the object's own."""
    return st.dictionaries(text.filter(lambda k: k not in known), json_values, max_size=2)


timezones = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=1)),
        timezone(timedelta(hours=-5)),
        timezone(timedelta(hours=5, minutes=30)),
    ]
)

industries = st.builds(
    Industry,
    id=st.one_of(st.integers(min_value=-(10**18), max_value=10**18), text),
    value=st.none() | text,
    text=st.none() | text,
    label=st.none() | text,
    extra=extras({"id", "value", "text", "label"}),
)

CONTACT_FIELDS = {
    "firstName", "lastName", "email", "phone", "businessType", "businessName",
    "businessNumber", "tradingName", "industry", "turnover", "employeeCount",
    "effectiveDate", "ipAddress",
}  # fmt: skip

contacts = st.builds(
    Contact,
    first_name=text,
    last_name=text,
    email=text,
    phone=st.none() | text,
    business_type=st.none() | text,
    business_name=st.none() | text,
    business_number=st.none() | text,
    trading_name=st.none() | text,
    industry=st.lists(industries, max_size=2).map(tuple),
    turnover_pence=st.none() | pence,
    employee_count=st.none() | st.integers(min_value=0, max_value=10**9),
    effective_date=st.none() | st.dates(),
    ip_address=st.none() | text,
    extra=extras(CONTACT_FIELDS),
)

quotes_started = st.builds(
    QuoteStarted,
    id=ids,
    reference=ids,
    contact=contacts,
    timestamp=st.datetimes(timezones=timezones),
    is_first_quote=st.booleans(),
    extra=extras({"id", "reference", "contact", "timestamp", "isFirstQuote", "type"}),
)

RATE_FIELDS = {
    "key", "description", "isOffered", "basePremium", "loading", "discount", "ipt",
    "commission", "total", "status", "ratingAttributes", "ratingInputs", "errors",
}  # fmt: skip


def rates(key: str) -> st.SearchStrategy[Rate]:
    return st.builds(
        Rate,
        key=st.just(key),
        description=st.none() | text,
        is_offered=st.booleans(),
        base_premium_pence=st.none() | pence,
        loading_pence=st.none() | signed_pence,
        discount_pence=st.none() | signed_pence,
        ipt_pence=st.none() | pence,
        commission_pence=st.none() | pence,
        total_pence=st.none() | pence,
        status=text,
        rating_attributes=free_objects,
        rating_inputs=free_objects,
        errors=st.lists(json_values, max_size=2),
        extra=extras(RATE_FIELDS),
    )


@st.composite
def products(draw: st.DrawFn, pid: str) -> Product:
    keys = draw(st.lists(ids, unique=True, max_size=3))
    return Product(
        id=pid,
        key=draw(ids),
        name=draw(text),
        total_pence=draw(pence),
        ipt_pence=draw(pence),
        agency_product=draw(
            st.none()
            | st.builds(
                AgencyProduct, guid=ids, name=st.none() | text, extra=extras({"guid", "name"})
            )
        ),
        rates=tuple(draw(rates(key)) for key in keys),
        extra=draw(extras({"id", "key", "name", "total", "ipt", "agencyProduct", "rates"})),
    )


@st.composite
def products_updated(draw: st.DrawFn) -> QuoteProductsUpdated:
    pids = draw(st.lists(ids, unique=True, max_size=3))
    return QuoteProductsUpdated(
        quote_id=draw(ids),
        products=tuple(draw(products(pid)) for pid in pids),
        extra=draw(extras({"quoteId", "products", "type"})),
    )


events = st.one_of(quotes_started, products_updated())


@settings(max_examples=200, deadline=None)
@given(events)
def test_encode_then_decode_is_the_identity(event: QuoteEvent):
    encoded = encode_quote_event(event)
    assert decode_quote_event(encoded) == event
    assert decode_quote_event(encoded.decode()) == event
    assert decode_quote_event(DEFAULT_CODEC.to_wire(event)) == event
    # and encoding is stable: the decoded event encodes to the same bytes
    assert encode_quote_event(decode_quote_event(encoded)) == encoded


@settings(max_examples=100, deadline=None)
@given(events)
def test_the_bare_data_of_an_encoded_event_decodes_alike(event: QuoteEvent):
    data = json.loads(encode_quote_event(event), parse_float=Decimal)["data"]
    assert decode_quote_event(to_json(data)) == event


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*path, i))
    return found


SAMPLES = [as_dict(QUOTE_STARTED), as_dict(PRODUCTS_UPDATED)]
SAMPLE_PATHS = [(i, path) for i, sample in enumerate(SAMPLES) for path in _paths(sample)]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SAMPLE_PATHS), json_values, st.booleans())
def test_any_part_replaced_by_anything_decodes_or_is_refused(where, replacement, as_envelope):
    index, path = where
    message: Any = as_dict(QUOTE_STARTED if index == 0 else PRODUCTS_UPDATED)
    if path:
        target = message
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = replacement
    else:
        message = replacement
    if as_envelope:
        message = {
            "type": ["QuoteStarted", "QuoteProductsUpdated"][index],
            "version": 1,
            "data": message,
        }
    result = _outcome(to_json(message))
    if isinstance(result, InvalidQuoteEvent):
        assert result.reason in REASONS
        assert result.path
        assert result.message
    else:
        assert isinstance(result, (QuoteStarted, QuoteProductsUpdated))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_any_bytes_or_text_decode_or_are_refused(raw):
    result = _outcome(raw)
    assert isinstance(result, (QuoteStarted, QuoteProductsUpdated)) or result.reason in REASONS


def _outcome(raw: Any) -> QuoteEvent | InvalidQuoteEvent:
    """The event, or the refusal: anything else raised fails the test."""
    try:
        return decode_quote_event(raw)
    except InvalidQuoteEvent as error:
        return error
