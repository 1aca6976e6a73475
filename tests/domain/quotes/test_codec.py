"""Decoding quote events: exact examples from realistic payloads, envelopes and bare
shapes, versions and upcasters, unknown fields, and every reason a message is refused."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from oddstream.domain.quotes import (
    MAX_EVENT_BYTES,
    REASONS,
    AgencyProduct,
    Industry,
    InvalidQuoteEvent,
    QuoteCodec,
    QuoteProductsUpdated,
    QuoteStarted,
    decode_quote_event,
    encode_quote_event,
)
from oddstream.domain.quotes.money import MAX_MONEY_PENCE

from .samples import PRODUCTS_UPDATED, QUOTE_ID, QUOTE_STARTED, as_dict, envelope, to_json


def refused(raw: Any, codec: QuoteCodec | None = None) -> InvalidQuoteEvent:
    with pytest.raises(InvalidQuoteEvent) as info:
        (codec or QuoteCodec()).decode(raw)
    assert info.value.reason in REASONS
    return info.value


def started() -> dict[str, Any]:
    return as_dict(QUOTE_STARTED)


def updated() -> dict[str, Any]:
    return as_dict(PRODUCTS_UPDATED)


# ------------------------------------------------------------------ exact examples


def test_quote_started_decodes_to_exact_values():
    event = decode_quote_event(QUOTE_STARTED.encode())
    assert isinstance(event, QuoteStarted)
    assert event.id == QUOTE_ID == event.quote_id
    assert event.reference == "QTE-2024-000123"
    assert event.timestamp == datetime(2024, 3, 14, 9, 26, 53, 589000, tzinfo=UTC)
    assert event.is_first_quote is True
    contact = event.contact
    assert (contact.first_name, contact.last_name) == ("Priya", "Shah")
    assert contact.email == "priya@shahbakery.example"
    assert contact.turnover_pence == 25_000_000
    assert contact.employee_count == 7
    assert contact.effective_date == date(2024, 4, 1)
    assert contact.industry == (Industry(id=5611, value="bakery", text="Bakery", label="Bakeries"),)
    # fields this code does not name are kept as sent, never fatal
    assert contact.extra == {"dateOfBirth": "1984-02-29", "marketingConsent": False}
    assert event.extra == {"channel": "web"}


def test_products_updated_money_is_exact_integer_pence():
    event = decode_quote_event(PRODUCTS_UPDATED)
    assert isinstance(event, QuoteProductsUpdated)
    assert event.quote_id == QUOTE_ID
    pl, el = event.products
    assert (pl.id, pl.key, pl.total_pence, pl.ipt_pence) == (
        "prod-pl-1",
        "public-liability",
        123456,
        13228,
    )
    assert pl.agency_product == AgencyProduct(
        guid="0d6f3c1e-1111-4a2b-8c3d-4e5f60718293", name="PL Select"
    )
    one_m, two_m, five_m = pl.rates
    assert one_m.base_premium_pence == 100000
    assert one_m.loading_pence == 15000
    assert one_m.discount_pence == -4772  # a discount may be negative
    assert one_m.ipt_pence == 13228
    assert one_m.commission_pence == 22057
    assert one_m.total_pence == 123456
    # the money adds up exactly, as it did in the source's decimals
    assert (
        one_m.base_premium_pence + one_m.loading_pence + one_m.discount_pence + one_m.ipt_pence
        == one_m.total_pence
    )
    assert one_m.rating_attributes == {"limit": 1000000, "excess": Decimal("250.00"), "band": "B"}
    # 0.1 + 0.2 == 0.3, which binary floats get wrong
    assert (two_m.base_premium_pence, two_m.loading_pence, two_m.total_pence) == (10, 20, 30)
    assert two_m.base_premium_pence + two_m.loading_pence == two_m.total_pence
    assert 0.1 + 0.2 != 0.3  # what the decoder avoided
    assert two_m.commission_pence == 3
    # an unpriced rate keeps its nulls
    assert five_m.is_offered is False
    assert five_m.total_pence is None
    assert five_m.base_premium_pence is None
    assert five_m.errors == [{"code": "LIMIT_TOO_HIGH", "message": "Refer to underwriter"}]
    assert (el.total_pence, el.ipt_pence, el.agency_product) == (9876543, 1, None)
    assert el.rates[0].base_premium_pence == 9800000  # a whole-pound JSON integer
    assert el.rates[0].description is None


def test_an_envelope_and_the_bare_shape_decode_alike():
    bare = decode_quote_event(PRODUCTS_UPDATED)
    wrapped = decode_quote_event(to_json(envelope("QuoteProductsUpdated", updated())))
    assert wrapped == bare
    # envelope keys other than type, version and data are ignored
    message = envelope("QuoteStarted", started()) | {"eventId": "e-1", "source": "quotes"}
    assert decode_quote_event(to_json(message)) == decode_quote_event(QUOTE_STARTED)


def test_bytes_text_and_parsed_objects_decode_alike():
    event = decode_quote_event(PRODUCTS_UPDATED)
    assert decode_quote_event(PRODUCTS_UPDATED.encode()) == event
    assert decode_quote_event(bytearray(PRODUCTS_UPDATED.encode())) == event
    assert decode_quote_event(updated()) == event
    # a dict holding floats (parsed elsewhere) is read through each float's repr
    assert decode_quote_event(json.loads(PRODUCTS_UPDATED)) == event


def test_encoding_writes_the_envelope_with_pounds_and_decodes_back():
    for text in (QUOTE_STARTED, PRODUCTS_UPDATED):
        event = decode_quote_event(text)
        encoded = encode_quote_event(event)
        message = json.loads(encoded, parse_float=Decimal)
        assert message["type"] == type(event).__name__
        assert message["version"] == 1
        assert decode_quote_event(encoded) == event
    data = json.loads(encode_quote_event(decode_quote_event(PRODUCTS_UPDATED)))["data"]
    assert b'"total":1234.56' in encode_quote_event(decode_quote_event(PRODUCTS_UPDATED))
    assert data["products"][0]["rates"][0]["discount"] == -47.72
    assert data["products"][0]["rates"][2]["total"] is None


def test_money_with_trailing_zeros_or_an_exponent_is_exact():
    data = updated()
    rate = data["products"][0]["rates"][0]
    rate["total"] = Decimal("1234.5600")
    rate["basePremium"] = Decimal("1.5E+3")
    rate["commission"] = Decimal("12E-2")
    event = decode_quote_event(to_json(data))
    assert isinstance(event, QuoteProductsUpdated)
    decoded = event.products[0].rates[0]
    assert (decoded.total_pence, decoded.base_premium_pence, decoded.commission_pence) == (
        123456,
        150000,
        12,
    )


def test_optional_contact_fields_may_be_absent_or_null():
    data = started()
    contact = data["contact"]
    for name in ("phone", "businessName", "industry", "turnover", "employeeCount"):
        del contact[name]
    contact["ipAddress"] = None
    contact["effectiveDate"] = None
    event = decode_quote_event(to_json(data))
    assert isinstance(event, QuoteStarted)
    assert event.contact.phone is None
    assert event.contact.ip_address is None
    assert event.contact.industry == ()
    assert event.contact.turnover_pence is None


# ------------------------------------------------------------------ versions


def test_a_version_2_is_read_through_an_upcaster():
    # a pretend v1 that called isFirstQuote "firstQuote"; the classes are v2
    def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        data = dict(data)
        data["isFirstQuote"] = data.pop("firstQuote")
        return data

    codec = QuoteCodec(
        versions={"QuoteStarted": 2, "QuoteProductsUpdated": 1},
        upcasters={("QuoteStarted", 1): v1_to_v2},
    )
    v1 = started()
    v1["firstQuote"] = v1.pop("isFirstQuote")
    expected = decode_quote_event(QUOTE_STARTED)
    assert codec.decode(to_json(envelope("QuoteStarted", v1, 1))) == expected
    assert codec.decode(to_json(v1)) == expected  # a bare shape is v1
    assert codec.decode(to_json(envelope("QuoteStarted", started(), 2))) == expected
    assert json.loads(codec.encode(expected))["version"] == 2


def test_unsupported_versions_are_refused():
    error = refused(to_json(envelope("QuoteStarted", started(), 2)))
    assert (error.reason, error.path, error.version) == ("unsupported_version", "version", 2)
    assert refused(to_json(envelope("QuoteStarted", started(), 0))).reason == (
        "unsupported_version"
    )
    # v3 known, but nothing lifts v1 to v2
    codec = QuoteCodec(versions={"QuoteStarted": 3, "QuoteProductsUpdated": 1})
    error = refused(to_json(envelope("QuoteStarted", started(), 1)), codec)
    assert (error.reason, error.path) == ("unsupported_version", "version")
    assert "from v1" in error.message


def test_a_failing_upcaster_is_upcast_failed():
    def broken(data: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("firstQuote")

    def not_a_dict(data: dict[str, Any]) -> dict[str, Any]:
        return []  # type: ignore[return-value]

    for step in (broken, not_a_dict):
        codec = QuoteCodec(
            versions={"QuoteStarted": 2, "QuoteProductsUpdated": 1},
            upcasters={("QuoteStarted", 1): step},
        )
        error = refused(QUOTE_STARTED, codec)
        assert (error.reason, error.path, error.event_type) == (
            "upcast_failed",
            "data",
            "QuoteStarted",
        )


def test_a_codec_must_know_every_event_type():
    with pytest.raises(ValueError, match="versions"):
        QuoteCodec(versions={"QuoteStarted": 1})


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b'{"quoteId": "q", "products": []',
        b"\xff\xfe{}",
        b'{"quoteId": "q", "products": [], "x": NaN}',
        b'{"quoteId": "q", "products": [], "x": Infinity}',
        "{'quoteId': 'q'}",
    ],
)
def test_invalid_json(raw):
    error = refused(raw)
    assert (error.reason, error.path) == ("invalid_json", "$")


def test_unknown_type():
    error = refused(to_json(envelope("QuoteDeleted", {})))
    assert (error.reason, error.path) == ("unknown_type", "type")
    assert "QuoteDeleted" in error.message
    error = refused(b'{"hello": "world"}')
    assert (error.reason, error.path) == ("unknown_type", "$")
    error = refused(to_json(started() | {"quoteId": QUOTE_ID}))  # both shapes at once
    assert (error.reason, error.path) == ("unknown_type", "$")


def _without(data: dict[str, Any], *path: Any) -> dict[str, Any]:
    target = data
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return data


def _with(data: dict[str, Any], value: Any, *path: Any) -> dict[str, Any]:
    target = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("message", "path"),
    [
        (_without(updated(), "products", 0, "rates", 2, "total"), "products[0].rates[2].total"),
        (_without(updated(), "products", 1, "rates"), "products[1].rates"),
        (_without(updated(), "quoteId"), "quoteId"),
        (_without(started(), "contact", "email"), "contact.email"),
        (_without(started(), "timestamp"), "timestamp"),
        (
            _without(updated(), "products", 0, "agencyProduct", "guid"),
            "products[0].agencyProduct.guid",
        ),
        (_without(started(), "contact", "industry", 0, "id"), "contact.industry[0].id"),
        ({"type": "QuoteStarted", "data": {}}, "version"),
        ({"type": "QuoteStarted", "version": 1}, "data"),
    ],
)
def test_missing_field(message, path):
    error = refused(to_json(message))
    assert (error.reason, error.path) == ("missing_field", path)
    assert path in str(error)


@pytest.mark.parametrize(
    ("message", "path"),
    [
        (
            _with(updated(), "12.00", "products", 0, "rates", 2, "total"),
            "products[0].rates[2].total",
        ),
        (_with(updated(), True, "products", 0, "total"), "products[0].total"),
        (_with(updated(), {"a": 1}, "products", 0, "ipt"), "products[0].ipt"),
        (
            _with(updated(), "yes", "products", 0, "rates", 0, "isOffered"),
            "products[0].rates[0].isOffered",
        ),
        (_with(updated(), {}, "products"), "products"),
        (_with(updated(), [1], "products"), "products[0]"),
        (_with(updated(), 42, "quoteId"), "quoteId"),
        (
            _with(updated(), "[]", "products", 0, "rates", 0, "ratingInputs"),
            "products[0].rates[0].ratingInputs",
        ),
        (_with(updated(), {}, "products", 0, "rates", 0, "errors"), "products[0].rates[0].errors"),
        (_with(started(), "true", "isFirstQuote"), "isFirstQuote"),
        (_with(started(), 1710408413, "timestamp"), "timestamp"),
        (_with(started(), Decimal("7.0"), "contact", "employeeCount"), "contact.employeeCount"),
        (_with(started(), [1.5], "contact", "industry", 0, "id"), "contact.industry[0].id"),
        (_with(started(), "bakery", "contact", "industry"), "contact.industry"),
        (_with(started(), [], "contact"), "contact"),
        (envelope("QuoteStarted", started(), "1"), "version"),
        (envelope("QuoteStarted", [], 1), "data"),
        ({"type": 7, "version": 1, "data": {}}, "type"),
        ([started()], "$"),
        ("QuoteStarted", "$"),
    ],
)
def test_wrong_type(message, path):
    error = refused(to_json(message))
    assert (error.reason, error.path) == ("wrong_type", path)


def test_wrong_type_in_a_parsed_object():
    error = refused({"quoteId": "q", "products": [], 1: "a number as a key"})
    assert (error.reason, error.path) == ("wrong_type", "$")
    error = refused(
        _with(updated(), {"x": float("nan")}, "products", 0, "rates", 0, "ratingInputs")
    )
    assert (error.reason, error.path) == ("wrong_type", "products[0].rates[0].ratingInputs.x")
    error = refused(_with(updated(), {"x": object()}, "products", 0, "rates", 0, "ratingInputs"))
    assert error.reason == "wrong_type"


@pytest.mark.parametrize(
    ("message", "path"),
    [
        (_with(updated(), None, "products", 0, "id"), "products[0].id"),
        (_with(updated(), None, "products", 0, "total"), "products[0].total"),
        (_with(updated(), None, "products"), "products"),
        (
            _with(updated(), None, "products", 1, "rates", 0, "status"),
            "products[1].rates[0].status",
        ),
        (_with(started(), None, "contact"), "contact"),
        (_with(started(), None, "contact", "firstName"), "contact.firstName"),
        (_with(started(), None, "isFirstQuote"), "isFirstQuote"),
        (envelope("QuoteStarted", started(), None), "version"),
        (envelope("QuoteStarted", None), "data"),
    ],
)
def test_null_required(message, path):
    error = refused(to_json(message))
    assert (error.reason, error.path) == ("null_required", path)


@pytest.mark.parametrize(
    ("value", "field", "why"),
    [
        (Decimal("12.345"), "total", "more than 2 decimal places"),
        (Decimal("0.001"), "total", "more than 2 decimal places"),
        (Decimal("1E-999999999"), "total", "more than 2 decimal places"),
        (Decimal("-0.01"), "total", "negative"),
        (Decimal("-5"), "ipt", "negative"),
        (Decimal("-5"), "basePremium", "negative"),
        (Decimal("-5"), "commission", "negative"),
        (Decimal("100000000000.01"), "total", "largest amount"),
        (Decimal("1E+999999999"), "total", "largest amount"),
        (10**12, "total", "largest amount"),
        (Decimal("-1E+20"), "discount", "largest amount"),
    ],
)
def test_bad_money(value, field, why):
    message = _with(updated(), value, "products", 0, "rates", 2, field)
    error = refused(to_json(message))
    assert (error.reason, error.path) == ("bad_money", f"products[0].rates[2].{field}")
    assert why in error.message
    assert (error.event_type, error.version) == ("QuoteProductsUpdated", 1)


def test_money_at_the_limits_is_accepted():
    limit_pounds = Decimal(MAX_MONEY_PENCE).scaleb(-2)
    for field, value in (("total", limit_pounds), ("discount", -limit_pounds)):
        message = _with(updated(), value, "products", 0, "rates", 2, field)
        event = decode_quote_event(to_json(message))
        assert isinstance(event, QuoteProductsUpdated)
        rate = event.products[0].rates[2]
        assert getattr(rate, f"{field}_pence") == int(value * 100)
    refused_negative = _with(started(), Decimal("-1"), "contact", "turnover")
    assert refused(to_json(refused_negative)).path == "contact.turnover"


@pytest.mark.parametrize(
    ("message", "path"),
    [
        (_with(updated(), "", "quoteId"), "quoteId"),
        (_with(updated(), "  ", "products", 0, "id"), "products[0].id"),
        (_with(updated(), "", "products", 0, "rates", 1, "key"), "products[0].rates[1].key"),
        (_with(started(), "2024-03-14T09:26:53", "timestamp"), "timestamp"),
        (_with(started(), "14/03/2024 09:26", "timestamp"), "timestamp"),
        (_with(started(), "2024-02-30", "contact", "effectiveDate"), "contact.effectiveDate"),
        (_with(started(), -1, "contact", "employeeCount"), "contact.employeeCount"),
        (_with(started(), 10**10, "contact", "employeeCount"), "contact.employeeCount"),
    ],
)
def test_bad_value(message, path):
    error = refused(to_json(message))
    assert (error.reason, error.path) == ("bad_value", path)


@pytest.mark.parametrize(
    ("message", "path"),
    [
        (_with(updated(), "pl\ud800", "products", 0, "name"), "products[0].name"),
        (_with(started(), {"\udfff": 1}, "contact", "notes"), "contact.notes"),
        (_with(started(), ["\ud83d"], "contact", "notes"), "contact.notes[0]"),
        (_with(started(), "\ud800", "contact", "industry", 0, "id"), "contact.industry[0].id"),
    ],
)
def test_a_lone_surrogate_is_not_text(message, path):
    # JSON may spell one ("\ud800"); no UTF-8 writer (ours or a database's) can store it
    raw = json.dumps(message, default=float).encode()  # ensure_ascii: "\\udXXX" escapes
    assert b"\\ud" in raw
    for form in (message, raw):
        error = refused(form)
        assert (error.reason, error.path) == ("bad_value", path)


def test_duplicate_key():
    data = updated()
    data["products"][1]["id"] = data["products"][0]["id"]
    error = refused(to_json(data))
    assert (error.reason, error.path) == ("duplicate_key", "products[1].id")
    assert "products[0]" in error.message
    data = updated()
    data["products"][0]["rates"][2]["key"] = "pl-1m"
    error = refused(to_json(data))
    assert (error.reason, error.path) == ("duplicate_key", "products[0].rates[2].key")


def test_too_big():
    data = updated()
    data["products"][0]["rates"][0]["ratingInputs"]["notes"] = "x" * MAX_EVENT_BYTES
    error = refused(to_json(data))
    assert (error.reason, error.path) == ("too_big", "$")
    assert refused(to_json(data).decode()).reason == "too_big"
    # a smaller limit of one's own
    assert refused(PRODUCTS_UPDATED, QuoteCodec(max_bytes=100)).reason == "too_big"
    # nested past any sense, in free-form data or as the whole message
    deep: Any = 1
    for _ in range(100):
        deep = [deep]
    data = _with(updated(), {"deep": deep}, "products", 0, "rates", 0, "ratingInputs")
    error = refused(to_json(data))
    assert error.reason == "too_big"
    assert error.path.startswith("products[0].rates[0].ratingInputs.deep[0]")
    assert refused(data).reason == "too_big"  # the same as a parsed object
    assert refused(b"[" * 200_000 + b"]" * 200_000).reason == "too_big"
    # a number of more digits than any amount or count has
    error = refused(b'{"quoteId": "q", "products": [], "n": 1' + b"0" * 200 + b"}")
    assert error.reason == "too_big"
    error = refused(b'{"quoteId": "q", "products": [], "n": 1.' + b"0" * 200 + b"}")
    assert error.reason == "too_big"


@pytest.mark.parametrize(
    "number", ["1e999999999999999999999", "1E-999999999999999999999", "0e999999999999999999999"]
)
def test_a_short_number_past_the_decimal_range_is_too_big(number):
    # valid JSON (the grammar bounds no exponent) that no Decimal holds: too_big, saying why
    error = refused(f'{{"quoteId": "q", "products": [], "n": {number}}}')
    assert (error.reason, error.path) == ("too_big", "$")
    assert number in error.message
    data = updated()
    data["products"][0]["total"] = msgspec.Raw(number.encode())
    assert refused(to_json(data)).reason == "too_big"


def test_every_reason_is_covered_here():
    covered = {
        "invalid_json",
        "unknown_type",
        "unsupported_version",
        "upcast_failed",
        "missing_field",
        "wrong_type",
        "null_required",
        "bad_money",
        "bad_value",
        "duplicate_key",
        "too_big",
    }
    assert covered == REASONS


def test_only_mappings_and_text_are_messages():
    with pytest.raises(TypeError):
        decode_quote_event(42)  # type: ignore[arg-type]


def test_a_timestamp_past_microseconds_is_cut_to_microseconds():
    # as docs/analytics.md says: .NET writes 7 digits; a datetime holds 6, so the 7th goes
    raw = QUOTE_STARTED.replace("2024-03-14T09:26:53.589Z", "2024-03-14T09:26:53.5891239Z")
    event = decode_quote_event(raw)
    assert isinstance(event, QuoteStarted)
    assert event.timestamp == datetime(2024, 3, 14, 9, 26, 53, 589123, tzinfo=UTC)
