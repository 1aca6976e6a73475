"""The two events of an insurance quote journey, as typed values. Pure.

The source system sends ``QuoteStarted`` and ``QuoteProductsUpdated`` as JSON with
camelCase field names (``isFirstQuote``, ``basePremium``). Here every field has a
snake_case attribute, and money is integer pence with the unit in the name
(``total`` on the wire → ``total_pence``); :mod:`.codec` maps one to the other, exactly,
and is the only place that knows the wire names. Fields the source sends that these
classes do not name are kept, as sent, in each object's ``extra`` (numbers as exact
``Decimal`` or ``int``), so nothing the source said is lost.

Both classes are version 1 of their event (:data:`CURRENT_VERSIONS`); how a version 2
is added is in :mod:`.codec`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec


def _extra() -> Any:
    return msgspec.field(default_factory=dict)


class Industry(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of the contact's industry pick list (``{id, value, text, label}``)."""

    #: the option's id, a string or a number as the source sends it
    id: int | str
    value: str | None = None
    text: str | None = None
    label: str | None = None
    extra: dict[str, Any] = _extra()


class Contact(msgspec.Struct, frozen=True, kw_only=True):
    """Who asks for the quote. Several fields are personal data: see :mod:`.personal`."""

    first_name: str
    last_name: str
    email: str
    phone: str | None = None
    business_type: str | None = None
    business_name: str | None = None
    business_number: str | None = None
    trading_name: str | None = None
    industry: tuple[Industry, ...] = ()
    #: the business's annual turnover, in pence
    turnover_pence: int | None = None
    employee_count: int | None = None
    effective_date: date | None = None
    ip_address: str | None = None
    #: contact fields the source sent that are not named above (treated as personal)
    extra: dict[str, Any] = _extra()


class QuoteStarted(msgspec.Struct, frozen=True, kw_only=True):
    """A customer started a quote (``QuoteStarted`` v1)."""

    id: str
    reference: str
    contact: Contact
    #: when the quote started, with its UTC offset
    timestamp: datetime
    is_first_quote: bool
    extra: dict[str, Any] = _extra()

    @property
    def quote_id(self) -> str:
        """The quote's id (``id`` on the wire; ``quoteId`` in the other event)."""
        return self.id


class AgencyProduct(msgspec.Struct, frozen=True, kw_only=True):
    """The agency's product a quoted product is sold as (``{guid, name}``)."""

    guid: str
    name: str | None = None
    extra: dict[str, Any] = _extra()


class Rate(msgspec.Struct, frozen=True, kw_only=True):
    """One rate (a priced option) of a product. Money in pence; ``None`` where the source
    sent ``null`` (a rate that was not priced, e.g. declined or in error)."""

    key: str
    description: str | None = None
    is_offered: bool
    base_premium_pence: int | None
    #: may be negative (a negative loading reduces the premium)
    loading_pence: int | None
    #: may be negative: the source's sign convention for discounts is kept as sent
    discount_pence: int | None
    ipt_pence: int | None
    commission_pence: int | None
    total_pence: int | None
    status: str
    rating_attributes: dict[str, Any] = _extra()
    rating_inputs: dict[str, Any] = _extra()
    errors: list[Any] = msgspec.field(default_factory=list)
    extra: dict[str, Any] = _extra()


class Product(msgspec.Struct, frozen=True, kw_only=True):
    """One product of the quote and its rates."""

    id: str
    key: str
    name: str
    total_pence: int
    ipt_pence: int
    agency_product: AgencyProduct | None = None
    rates: tuple[Rate, ...] = ()
    extra: dict[str, Any] = _extra()


class QuoteProductsUpdated(msgspec.Struct, frozen=True, kw_only=True):
    """The full list of the quote's products after a change (``QuoteProductsUpdated``
    v1): a product or rate absent from it is no longer in the quote."""

    quote_id: str
    products: tuple[Product, ...]
    extra: dict[str, Any] = _extra()


QuoteEvent = QuoteStarted | QuoteProductsUpdated

#: The event types by the name they are sent (and stored) under.
EVENT_CLASSES: dict[str, type[QuoteStarted] | type[QuoteProductsUpdated]] = {
    "QuoteStarted": QuoteStarted,
    "QuoteProductsUpdated": QuoteProductsUpdated,
}

#: The version of each event type that the classes above describe. Raising one means
#: registering an upcaster from the previous version (see :mod:`.codec`).
CURRENT_VERSIONS: dict[str, int] = {"QuoteStarted": 1, "QuoteProductsUpdated": 1}


def event_type_of(event: QuoteEvent) -> str:
    """The name ``event`` is sent under (``"QuoteStarted"`` …)."""
    return type(event).__name__
