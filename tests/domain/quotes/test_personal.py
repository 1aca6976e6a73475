"""Personal data: the analysts' view of a quote holds none of it unless released."""

from __future__ import annotations

from datetime import UTC, date, datetime

import msgspec
import pytest

from oddstream.domain.quotes import (
    PERSONAL_CONTACT_FIELDS,
    AnalystQuote,
    Industry,
    QuoteStarted,
    analyst_view,
    decode_quote_event,
    is_personal,
)

from .samples import QUOTE_ID, QUOTE_STARTED

#: every personal value in the sample, known fields and unknown ones alike
PERSONAL_VALUES = [
    "Priya",
    "Shah",
    "priya@shahbakery.example",
    "+44 7700 900123",
    "Shah Bakery Ltd",
    "Shah's Kitchen",
    "12345678",
    "203.0.113.7",
    "1984-02-29",
]


def sample() -> QuoteStarted:
    event = decode_quote_event(QUOTE_STARTED)
    assert isinstance(event, QuoteStarted)
    return event


def test_the_default_view_has_the_reporting_fields_and_no_personal_data():
    view = analyst_view(sample())
    assert view == AnalystQuote(
        quote_id=QUOTE_ID,
        reference="QTE-2024-000123",
        started_at=datetime(2024, 3, 14, 9, 26, 53, 589000, tzinfo=UTC),
        is_first_quote=True,
        business_type="Limited company",
        industry=(Industry(id=5611, value="bakery", text="Bakery", label="Bakeries"),),
        turnover_pence=25_000_000,
        employee_count=7,
        effective_date=date(2024, 4, 1),
        personal={},
    )
    text = msgspec.json.encode(view).decode()
    leaked = [value for value in PERSONAL_VALUES if value in text]
    assert not leaked
    assert "web" not in text  # the event's unknown top-level fields are left out too


def test_released_fields_come_through_by_wire_name():
    view = analyst_view(sample(), release=["email", "dateOfBirth", "ipAddress"])
    assert view.personal == {
        "email": "priya@shahbakery.example",
        "dateOfBirth": "1984-02-29",
        "ipAddress": "203.0.113.7",
    }
    text = msgspec.json.encode(view).decode()
    assert "Priya" not in text
    # a released field the contact lacks is absent, not null
    assert analyst_view(sample(), release=["nationalInsurance"]).personal == {}


def test_which_fields_are_personal():
    for name in PERSONAL_CONTACT_FIELDS:
        assert is_personal(name)
    assert is_personal("dateOfBirth")  # unknown: personal until decided otherwise
    for name in ("businessType", "industry", "turnover", "employeeCount", "effectiveDate"):
        assert not is_personal(name)
    assert set(PERSONAL_CONTACT_FIELDS) >= {"firstName", "lastName", "email", "phone", "ipAddress"}


def test_release_must_name_personal_fields():
    with pytest.raises(ValueError, match="already"):
        analyst_view(sample(), release=["turnover"])
    with pytest.raises(TypeError):
        analyst_view(sample(), release="email")


def test_unknown_fields_of_an_industry_entry_are_left_out_of_the_view():
    # an industry entry is part of the contact: a field nobody has looked at (a free-text
    # note, the person who picked it) is personal until decided otherwise, as in the contact
    raw = QUOTE_STARTED.replace(
        '"label": "Bakeries"}',
        '"label": "Bakeries", "note": "Priya Shah, sole trader", "pickedBy": "priya@home"}',
    )
    event = decode_quote_event(raw)
    assert isinstance(event, QuoteStarted)
    assert event.contact.industry[0].extra == {
        "note": "Priya Shah, sole trader",
        "pickedBy": "priya@home",
    }  # kept in the event itself
    view = analyst_view(event)
    assert view.industry == (Industry(id=5611, value="bakery", text="Bakery", label="Bakeries"),)
    text = msgspec.json.encode(view).decode()
    assert "Priya" not in text
    assert "priya@home" not in text
