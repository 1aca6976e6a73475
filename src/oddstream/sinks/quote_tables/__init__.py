"""The analysts' quote tables: ``quotes``, ``quote_items`` and ``quote_item_history``
fed from the log's quote events through a :class:`~oddstream.sinks.JdbcSink`, and the
"active products" queries over them.

- :mod:`.tables`: the tables' declared schemas (keys, columns, types).
- :mod:`.mapping`: :class:`QuoteTables`, logged quote events → upsert records (pure),
  optionally holding only the quotes used last.
- :mod:`.source`: :class:`QuoteSource`, the log's quote events as a sink's records (the
  quotes not held rebuilt from their streams), and :class:`QuoteTablesSink`, the sink
  consumer that runs them on the runner.
- :mod:`.connector`: the ``oddstream.QuoteTablesSinkConnector`` connector class (its
  configuration, its sink) for the connector manager.
- :mod:`.queries`: the portable SQL of "products active in a quote at a time" and over
  time.
- :mod:`.sample`: a deterministic sample of quote journeys (tests, docs).

See ``docs/analytics.md`` ("Analysts' tables").
"""

from .mapping import (
    LoggedEvent,
    LoggedQuoteEvent,
    LogTime,
    QuoteMappingError,
    QuoteRebuild,
    QuoteReplayError,
    QuoteStateMissing,
    QuoteTables,
    sink_settings,
    to_millisecond,
)
from .queries import (
    ACTIVE_PRODUCTS_AT,
    ACTIVE_PRODUCTS_OVER_TIME,
    MAX_ACTIVE_PRODUCTS,
    render,
    time_parameter,
)
from .tables import (
    NO_RATE,
    QUOTE_ITEM_HISTORY,
    QUOTE_ITEMS,
    QUOTES,
    SCHEMAS,
    TOPICS,
    quotes_value_schema,
    released_column,
)

__all__ = [
    "ACTIVE_PRODUCTS_AT",
    "ACTIVE_PRODUCTS_OVER_TIME",
    "MAX_ACTIVE_PRODUCTS",
    "NO_RATE",
    "QUOTES",
    "QUOTE_ITEMS",
    "QUOTE_ITEM_HISTORY",
    "SCHEMAS",
    "TOPICS",
    "LogTime",
    "LoggedEvent",
    "LoggedQuoteEvent",
    "QuoteMappingError",
    "QuoteRebuild",
    "QuoteReplayError",
    "QuoteStateMissing",
    "QuoteTables",
    "quotes_value_schema",
    "released_column",
    "render",
    "sink_settings",
    "time_parameter",
    "to_millisecond",
]
