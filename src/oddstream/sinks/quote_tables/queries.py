"""The analysts' "active products" queries over ``quote_item_history``: one SQL text
each, the same on SQLite, PostgreSQL and MariaDB/MySQL.

A product is active in a quote at time ``t`` when at least one of its items (product ×
rate) has an interval with ``valid_from <= t`` and ``valid_to`` NULL or ``> t``
(half-open). ``:t`` is UTC text ``'YYYY-MM-DD HH:MM:SS.fff'`` — the form the sink writes
on SQLite, which compares times as text; PostgreSQL and MariaDB read the same text as a
timestamp (a timestamp value works there too).

See ``docs/analytics.md`` ("Analysts' tables").
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final, Literal

from .mapping import to_millisecond

#: Per quote, how many products were active at ``:t`` (0 for a quote with none).
ACTIVE_PRODUCTS_AT: Final = """\
SELECT q.quote_id, COUNT(DISTINCT h.product_id) AS active_products
FROM quotes q
LEFT JOIN quote_item_history h
  ON h.quote_id = q.quote_id
 AND h.valid_from <= :t
 AND (h.valid_to IS NULL OR h.valid_to > :t)
GROUP BY q.quote_id"""

#: Per quote, at every time its items changed, how many products were active from
#: then until its next change: the quote's count over time, as steps.
ACTIVE_PRODUCTS_OVER_TIME: Final = """\
SELECT c.quote_id, c.changed_at, COUNT(DISTINCT h.product_id) AS active_products
FROM (SELECT quote_id, valid_from AS changed_at FROM quote_item_history
      UNION
      SELECT quote_id, valid_to FROM quote_item_history WHERE valid_to IS NOT NULL) c
LEFT JOIN quote_item_history h
  ON h.quote_id = c.quote_id
 AND h.valid_from <= c.changed_at
 AND (h.valid_to IS NULL OR h.valid_to > c.changed_at)
GROUP BY c.quote_id, c.changed_at"""

#: Per quote with any items, the most products active at any one time.
MAX_ACTIVE_PRODUCTS: Final = (
    "SELECT s.quote_id, MAX(s.active_products) AS max_active_products\nFROM (\n"
    + ACTIVE_PRODUCTS_OVER_TIME
    + "\n) s\nGROUP BY s.quote_id"
)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def render(
    sql: str,
    *,
    paramstyle: Literal["named", "pyformat"] = "named",
    quotes: str = "quotes",
    history: str = "quote_item_history",
) -> str:
    """``sql`` for a driver and the tables' names where they differ.

    ``paramstyle``: ``named`` keeps ``:t`` (sqlite3), ``pyformat`` makes it ``%(t)s``
    (psycopg, PyMySQL); pass ``{"t": …}`` as the parameters. The names must be plain
    identifiers (letters, digits, ``_``), written unquoted as the queries are.
    """
    for name in (quotes, history):
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a plain table name")
    sql = re.sub(r"\bquote_item_history\b", history, sql)
    sql = re.sub(r"\bquotes\b", quotes, sql)
    if paramstyle == "pyformat":
        sql = sql.replace(":t", "%(t)s")
    elif paramstyle != "named":
        raise ValueError(f"unknown paramstyle {paramstyle!r}")
    return sql


def time_parameter(at: datetime) -> str:
    """``at`` as the queries' ``:t``: UTC text to the millisecond (a naive time is UTC)."""
    return to_millisecond(at).replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")
