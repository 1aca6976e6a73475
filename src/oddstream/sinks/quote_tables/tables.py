"""The analysts' quote tables as the sink's declared schemas: ``quotes``,
``quote_items`` and ``quote_item_history``.

Each table is a topic of its own (the sink's ``table.name.format`` turns it into the
table's name) with a struct key (``pk.mode=record_key``): the key's fields are the
table's primary key, the value's the other columns. Money is integer pence (int64:
BIGINT, exact on all three databases), times are Connect Timestamps kept to the
millisecond (the finest MariaDB's ``DATETIME(3)`` and SQLite's text hold), in UTC.

See ``docs/analytics.md`` ("Analysts' tables").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from oddstream.domain.quotes import is_personal

from ...sinks.schema import FieldSchema, RecordSchema

#: The topics the mapping writes, one per table (the table's name by default).
QUOTES: Final = "quotes"
QUOTE_ITEMS: Final = "quote_items"
QUOTE_ITEM_HISTORY: Final = "quote_item_history"
TOPICS: Final = (QUOTES, QUOTE_ITEMS, QUOTE_ITEM_HISTORY)

#: The ``rate_key`` of a product sent without rates (an item of its own). Rate keys
#: are non-empty strings, so it is no rate's key; a key column cannot be NULL.
NO_RATE: Final = ""


def _s(name: str, optional: bool = False) -> FieldSchema:
    return FieldSchema(name, "string", optional)


def _i64(name: str, optional: bool = False) -> FieldSchema:
    return FieldSchema(name, "int64", optional)


def _i32(name: str, optional: bool = False) -> FieldSchema:
    return FieldSchema(name, "int32", optional)


def _b(name: str, optional: bool = False) -> FieldSchema:
    return FieldSchema(name, "boolean", optional)


def _ts(name: str, optional: bool = False) -> FieldSchema:
    return FieldSchema(name, "int64", optional, "Timestamp")


QUOTES_KEY: Final = RecordSchema((_s("quote_id"),), name="quotes_key")

_QUOTE_FIELDS: Final = (
    _s("reference"),
    _ts("started_at"),
    _b("is_first_quote"),
    _s("business_type", True),
    _s("industry_id", True),
    _s("industry_label", True),
    _s("industries_json", True),
    _i64("turnover_pence", True),
    _i64("employee_count", True),
    FieldSchema("effective_date", "int32", True, "Date"),
    _i32("products_count"),
    _i32("items_count"),
    _ts("last_updated_at"),
    _i64("last_position"),
)

ITEM_KEY: Final = RecordSchema(
    (_s("quote_id"), _s("product_id"), _s("rate_key")), name="quote_items_key"
)

#: The columns of one item's values, in ``quote_items`` and ``quote_item_history``.
_ITEM_FIELDS: Final = (
    _s("product_key"),
    _s("product_name"),
    _i64("product_total_pence"),
    _i64("product_ipt_pence"),
    _s("agency_product_guid", True),
    _s("agency_product_name", True),
    _s("rate_description", True),
    _b("is_offered", True),
    _s("status", True),
    _i64("base_premium_pence", True),
    _i64("loading_pence", True),
    _i64("discount_pence", True),
    _i64("ipt_pence", True),
    _i64("commission_pence", True),
    _i64("total_pence", True),
)

QUOTE_ITEMS_VALUE: Final = RecordSchema(
    (
        *_ITEM_FIELDS,
        _b("is_current"),
        _ts("valid_from"),
        _ts("removed_at", True),
        _i64("last_position"),
    ),
    name="quote_items",
)

#: An interval is named by the log position of the event that opened it and the item:
#: an event opens an item at most once, so the key is unique and a replay writes the
#: same rows. (Not the quote and ``valid_from``: two updates may share a time, and four
#: key columns of which three are strings pass MariaDB's 3072-byte key limit.)
HISTORY_KEY: Final = RecordSchema(
    (_i64("opened_position"), _s("product_id"), _s("rate_key")), name="quote_item_history_key"
)

HISTORY_VALUE: Final = RecordSchema(
    (
        _s("quote_id"),
        *_ITEM_FIELDS,
        _ts("valid_from"),
        _ts("valid_to", True),
        _i64("closed_position", True),
    ),
    name="quote_item_history",
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def released_column(wire_name: str) -> str:
    """The ``quotes`` column of a released personal contact field: ``contact_`` and its
    name in snake case (``firstName`` → ``contact_first_name``)."""
    return "contact_" + _CAMEL.sub("_", wire_name).lower()


def quotes_value_schema(release: Iterable[str] = ()) -> RecordSchema:
    """The ``quotes`` value schema: the analysts' view, and a nullable text column for
    each personal contact field released (wire names, see :func:`analyst_view`)."""
    names = list(dict.fromkeys(release))
    pointless = [name for name in names if not is_personal(name)]
    if pointless:
        raise ValueError(f"{pointless} are in the analysts' view already")
    columns = [released_column(name) for name in names]
    if len(set(columns)) != len(columns):
        raise ValueError(f"released fields {names} name one column twice")
    return RecordSchema((*_QUOTE_FIELDS, *(_s(column, True) for column in columns)), name="quotes")


#: The schemas of each table (the ``quotes`` value with nothing released).
SCHEMAS: Final = {
    QUOTES: (QUOTES_KEY, quotes_value_schema()),
    QUOTE_ITEMS: (ITEM_KEY, QUOTE_ITEMS_VALUE),
    QUOTE_ITEM_HISTORY: (HISTORY_KEY, HISTORY_VALUE),
}
