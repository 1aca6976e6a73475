"""Which parts of a quote are personal data, and the view of a quote analysts may see.

A ``QuoteStarted``'s contact says who asked for the quote. Its personal fields — the
ones that identify a person — are listed once, here, in :data:`PERSONAL_CONTACT_FIELDS`
(by wire name). The business's name, trading name and registration number are in the
list too: for a sole trader they are a person's name and identity. A contact field the
source sends that this code does not know (``dateOfBirth``, say) is treated as personal
until someone decides otherwise, since nobody has looked at it.

:func:`analyst_view` is what an analysts' table gets: the quote's reporting fields and
no personal field unless it is released by name. Top-level fields of the event that
this code does not know (``QuoteStarted.extra``) are not in the view at all, nor are the
unknown fields of an ``industry`` entry (``Industry.extra``).

``QuoteProductsUpdated`` has no contact, but its rates' free-form ``ratingInputs`` and
``ratingAttributes`` may echo what the customer typed; a sink that copies them should
copy the keys it needs, not the whole objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import msgspec

from .events import Contact, Industry, QuoteStarted

#: Personal contact fields: wire name → attribute of :class:`~.events.Contact`.
PERSONAL_CONTACT_FIELDS: dict[str, str] = {
    "firstName": "first_name",
    "lastName": "last_name",
    "email": "email",
    "phone": "phone",
    "ipAddress": "ip_address",
    "businessName": "business_name",
    "tradingName": "trading_name",
    "businessNumber": "business_number",
}

#: Contact fields analysts get by default: wire name → attribute.
REPORTING_CONTACT_FIELDS: dict[str, str] = {
    "businessType": "business_type",
    "industry": "industry",
    "turnover": "turnover_pence",
    "employeeCount": "employee_count",
    "effectiveDate": "effective_date",
}


def is_personal(contact_field: str) -> bool:
    """Whether the contact field of this wire name is personal (unknown ones are)."""
    return contact_field not in REPORTING_CONTACT_FIELDS


class AnalystQuote(msgspec.Struct, frozen=True, kw_only=True):
    """A started quote as analysts see it: one row of a ``quotes`` table."""

    quote_id: str
    reference: str
    started_at: datetime
    is_first_quote: bool
    business_type: str | None
    industry: tuple[Industry, ...]
    turnover_pence: int | None
    employee_count: int | None
    effective_date: date | None
    #: the personal contact fields released by configuration, by wire name; a released
    #: field the contact lacks (or has as null) is absent
    personal: dict[str, Any] = msgspec.field(default_factory=dict)


def analyst_view(event: QuoteStarted, *, release: Iterable[str] = ()) -> AnalystQuote:
    """``event`` without its personal data, except the contact fields named in
    ``release`` (wire names: ``"email"``, or an unknown field such as ``"dateOfBirth"``).

    ``release`` is configuration, decided once for a sink, not per quote. Naming a
    reporting field (already in the view) is refused, as it would say nothing.
    """
    if isinstance(release, str):
        raise TypeError("release is a collection of field names, not one string")
    names = list(dict.fromkeys(release))
    pointless = [name for name in names if not is_personal(name)]
    if pointless:
        raise ValueError(f"{pointless} are in the analysts' view already")
    contact = event.contact
    return AnalystQuote(
        quote_id=event.id,
        reference=event.reference,
        started_at=event.timestamp,
        is_first_quote=event.is_first_quote,
        business_type=contact.business_type,
        industry=tuple(_known_industry(entry) for entry in contact.industry),
        turnover_pence=contact.turnover_pence,
        employee_count=contact.employee_count,
        effective_date=contact.effective_date,
        personal={
            name: value for name in names if (value := _contact_field(contact, name)) is not None
        },
    )


def _known_industry(entry: Industry) -> Industry:
    """The entry without the fields this code does not know: part of the contact, so
    personal until someone decides otherwise, like the contact's own unknown fields."""
    return msgspec.structs.replace(entry, extra={}) if entry.extra else entry


def _contact_field(contact: Contact, name: str) -> Any:
    attr = PERSONAL_CONTACT_FIELDS.get(name)
    if attr is not None:
        return getattr(contact, attr)
    return contact.extra.get(name)
