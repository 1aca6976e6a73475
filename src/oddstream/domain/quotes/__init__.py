"""Quote events of an insurance quote journey (``QuoteStarted``, ``QuoteProductsUpdated``):
typed and versioned, decoded exactly from the source's JSON, the analyst-safe view of a
quote and the items active in a quote over time. Pure.

See ``docs/analytics.md``.
"""

from .codec import (
    DEFAULT_CODEC,
    MAX_EVENT_BYTES,
    UPCASTERS,
    QuoteCodec,
    Upcaster,
    decode_quote_event,
    encode_quote_event,
)
from .errors import REASONS, InvalidQuoteEvent
from .events import (
    CURRENT_VERSIONS,
    EVENT_CLASSES,
    AgencyProduct,
    Contact,
    Industry,
    Product,
    QuoteEvent,
    QuoteProductsUpdated,
    QuoteStarted,
    Rate,
    event_type_of,
)
from .items import (
    ItemChanges,
    ItemInterval,
    ItemKey,
    ItemTimeline,
    QuoteHistoryError,
    QuoteItem,
    active_at,
    item_intervals,
    items_of,
)
from .money import MAX_MONEY_PENCE, MoneyError, pence_to_pounds, pounds_to_pence
from .personal import PERSONAL_CONTACT_FIELDS, AnalystQuote, analyst_view, is_personal

__all__ = [
    "CURRENT_VERSIONS",
    "DEFAULT_CODEC",
    "EVENT_CLASSES",
    "MAX_EVENT_BYTES",
    "MAX_MONEY_PENCE",
    "PERSONAL_CONTACT_FIELDS",
    "REASONS",
    "UPCASTERS",
    "AgencyProduct",
    "AnalystQuote",
    "Contact",
    "Industry",
    "InvalidQuoteEvent",
    "ItemChanges",
    "ItemInterval",
    "ItemKey",
    "ItemTimeline",
    "MoneyError",
    "Product",
    "QuoteCodec",
    "QuoteEvent",
    "QuoteHistoryError",
    "QuoteItem",
    "QuoteProductsUpdated",
    "QuoteStarted",
    "Rate",
    "Upcaster",
    "active_at",
    "analyst_view",
    "decode_quote_event",
    "encode_quote_event",
    "event_type_of",
    "is_personal",
    "item_intervals",
    "items_of",
    "pence_to_pounds",
    "pounds_to_pence",
]
