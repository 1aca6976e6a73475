"""The quote tables as a connector: ``connector.class=oddstream.QuoteTablesSinkConnector``.

A connector of this class writes the analysts' quote tables from the log's quote events
(:class:`~.source.QuoteSource`) with a JDBC sink, managed like any other connector
(created, paused, resumed, restarted, deleted through the manager and Kafka Connect's
REST API; in ``/healthz``, ``/readyz`` and ``/metrics``). Its config takes the JDBC
sink's connection, table name, batch, retry and error settings; the class fixes what
the tables need — ``topics`` (the three tables), ``insert.mode=upsert``,
``pk.mode=record_key``, ``db.timezone=UTC``, no deletes, no field or key lists —, so
those may be left out, and a different value is refused. ``auto.create`` and
``auto.evolve`` default to true. Its own settings:

- ``quote.tables.release``: personal contact fields (wire names, comma-separated) the
  ``quotes`` table gets; none by default;
- ``quote.tables.max.quotes``: how many quotes' states the sink holds (the ones used
  last; the others are rebuilt from their streams when their next event comes),
  10,000 by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...eventstore import EventStore
from ...runtime.deadletters import DeadLetterStore
from ..config import (
    SINK_CLASS,
    ConfigProblem,
    JdbcSinkConfig,
    SinkConfigError,
    parse_config,
)
from ..connectors import SinkPlugin
from .source import DEFAULT_MAX_QUOTES, QuoteSource, QuoteTablesSink
from .tables import TOPICS, quotes_value_schema

#: the connector class of the quote tables (Connect's ``connector.class``)
QUOTE_TABLES_CLASS = "oddstream.QuoteTablesSinkConnector"
#: what ``GET /connector-plugins`` reports for it
QUOTE_TABLES_VERSION = "1.0.0"
#: the connector the ``ODDSTREAM_QUOTE_TABLES_URL`` setting keeps
QUOTE_TABLES_CONNECTOR = "quote-tables"

RELEASE = "quote.tables.release"
MAX_QUOTES = "quote.tables.max.quotes"
_FIXED = {
    "insert.mode": "upsert",
    "pk.mode": "record_key",
    "db.timezone": "UTC",
    "delete.enabled": "false",
}
_NOT_SET = ("topics.regex", "pk.fields", "fields.whitelist")
_DEFAULTS = {"auto.create": "true", "auto.evolve": "true"}


@dataclass(frozen=True)
class QuoteTablesOptions:
    """The quote tables' own settings of a connector's config."""

    release: tuple[str, ...] = ()
    max_quotes: int = DEFAULT_MAX_QUOTES


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _options(config: Mapping[str, Any], problems: list[ConfigProblem]) -> QuoteTablesOptions:
    release: tuple[str, ...] = ()
    raw = config.get(RELEASE)
    if raw is not None:
        release = tuple(n.strip() for n in _text(raw).split(",") if n.strip())
        try:
            quotes_value_schema(release)
        except ValueError as exc:
            problems.append(ConfigProblem(RELEASE, str(exc)))
            release = ()
    max_quotes = DEFAULT_MAX_QUOTES
    raw = config.get(MAX_QUOTES)
    if raw is not None:
        text = _text(raw)
        if isinstance(raw, bool) or not text.isdigit() or int(text) < 1:
            problems.append(ConfigProblem(MAX_QUOTES, "a whole number, at least 1"))
        else:
            max_quotes = int(text)
    return QuoteTablesOptions(release, max_quotes)


def parse_quote_tables_config(config: Mapping[str, Any]) -> JdbcSinkConfig:
    """A quote tables connector's config → its JDBC sink config (``connector_class``
    :data:`QUOTE_TABLES_CLASS`, ``redacted()`` the config as given), or
    :class:`SinkConfigError` naming every refused setting."""
    if not isinstance(config, Mapping):
        raise SinkConfigError([ConfigProblem("config", "expected an object of settings")])
    problems: list[ConfigProblem] = []
    _options(config, problems)
    given = {k: v for k, v in config.items() if k not in (RELEASE, MAX_QUOTES)}
    topics = given.get("topics")
    if topics is not None and {t.strip() for t in _text(topics).split(",")} != set(TOPICS):
        problems.append(ConfigProblem("topics", f"the quote tables are {','.join(TOPICS)}"))
    for key, value in _FIXED.items():
        if key in given and given[key] is not None and _text(given[key]).lower() != value.lower():
            problems.append(ConfigProblem(key, f"the quote tables need {key}={value}"))
    for key in _NOT_SET:
        if _text(given.get(key) or ""):
            problems.append(ConfigProblem(key, "not used by the quote tables: leave it out"))
    merged = {
        **_DEFAULTS,
        **given,
        **_FIXED,
        "topics": ",".join(TOPICS),
        "connector.class": SINK_CLASS,
    }
    for key in _NOT_SET:
        merged.pop(key, None)
    try:
        parsed = parse_config(merged)
    except SinkConfigError as exc:
        problems += [p for p in exc.problems if p.setting != "connector.class"]
        raise SinkConfigError(problems) from None
    if problems:
        raise SinkConfigError(problems)
    return parsed.model_copy(update={"connector_class": QUOTE_TABLES_CLASS, "raw": dict(config)})


def quote_tables_options(config: JdbcSinkConfig) -> QuoteTablesOptions:
    """The quote tables' own settings of a parsed config (checked when it was parsed)."""
    problems: list[ConfigProblem] = []
    options = _options(config.raw, problems)
    if problems:
        raise SinkConfigError(problems)
    return options


def quote_tables_plugin(store: EventStore) -> SinkPlugin:
    """The quote tables' connector class for a :class:`~oddstream.sinks.ConnectorManager`
    on ``store`` (whose quote streams the sinks read)."""

    def consumer(name: str, config: JdbcSinkConfig, dead_letters: DeadLetterStore) -> Any:
        options = quote_tables_options(config)
        source = QuoteSource(store, release=options.release, max_quotes=options.max_quotes)
        return QuoteTablesSink(name, config, source, dead_letters)

    return SinkPlugin(QUOTE_TABLES_CLASS, parse_quote_tables_config, consumer, QUOTE_TABLES_VERSION)


def quote_tables_connector(connection_url: str) -> dict[str, str]:
    """The config the ``ODDSTREAM_QUOTE_TABLES_URL`` setting gives its connector."""
    return {"connector.class": QUOTE_TABLES_CLASS, "connection.url": connection_url}


__all__ = [
    "MAX_QUOTES",
    "QUOTE_TABLES_CLASS",
    "QUOTE_TABLES_CONNECTOR",
    "RELEASE",
    "QuoteTablesOptions",
    "parse_quote_tables_config",
    "quote_tables_connector",
    "quote_tables_options",
    "quote_tables_plugin",
]
