"""The odds database as SQL tables: ``odds`` (a row per market, the odds record) and
``odds_events`` (a row per market event, the odds event log), written from the log's
market events through a :class:`~oddstream.sinks.JdbcSink`.

The rows are the API's answers flattened: each event is applied with
:class:`~oddstream.projections.odds_view.OddsRecords`, the mapping the live odds view
applies, and the record it changed is written as ``GET /odds/{id}`` answers it
(:func:`~oddstream.application.odds.record_json`), the event as its odds event log entry
(:func:`~oddstream.application.odds.event_json`). So a table written up to a position
holds what the view answered at that position, row for row.

Both tables are upserted by their key (``id``: the market's ``ID``, the event's log
position), so writing an event twice leaves one row; prices are exact decimals (scale 6:
every price the API takes), times the API's text (UTC, to the microsecond, ``Z``: exact
on every database, and its text sorts as the times do).

See ``docs/fixed-odds.md`` ("Replay").
"""

from __future__ import annotations

from typing import Any, Final

from ..application.odds import event_json, record_json
from ..eventstore import RecordedEvent
from ..eventstore.registry import EventRegistry
from ..projections.odds_view import OddsRecords
from .schema import FieldSchema, RecordSchema, SinkRecord

#: The topics the mapping writes, one per table (the table's name by default).
ODDS: Final = "odds"
ODDS_EVENTS: Final = "odds_events"
TOPICS: Final = (ODDS, ODDS_EVENTS)
#: The stream category the tables are made from.
CATEGORY: Final = "market"
#: The decimal places prices are stored to (the API takes at most six).
PRICE_SCALE: Final = 6


def _price(name: str, optional: bool = False) -> FieldSchema:
    return FieldSchema(name, "bytes", optional, "Decimal", PRICE_SCALE)


ODDS_KEY: Final = RecordSchema((FieldSchema("id", "int64"),), name="odds_key")
ODDS_VALUE: Final = RecordSchema(
    (
        FieldSchema("external_id", "string"),
        FieldSchema("game_id", "string"),
        FieldSchema("provider", "string"),
        _price("home"),
        _price("away"),
        _price("draw", True),
        FieldSchema("deleted", "boolean"),
        FieldSchema("created_at", "string"),
        FieldSchema("updated_at", "string"),
        #: the market's stream version the row includes
        FieldSchema("version", "int64"),
        #: the record's Status (optional: added to tables written before it, whose rows
        #: not written since hold NULL until a replay --from-start)
        FieldSchema("status", "string", True),
    ),
    name="odds",
)
EVENTS_KEY: Final = RecordSchema((FieldSchema("id", "int64"),), name="odds_events_key")
EVENTS_VALUE: Final = RecordSchema(
    (
        FieldSchema("odds_id", "int64"),
        FieldSchema("event_id", "string"),
        FieldSchema("created_at", "string"),
    ),
    name="odds_events",
)


class OddsTables:
    """Market events → the rows they write (pure: state in memory, no I/O)."""

    def __init__(self, registry: EventRegistry | None = None) -> None:
        self.records = OddsRecords(registry)

    def map(self, recorded: RecordedEvent) -> list[SinkRecord]:
        """The upserts of one market event, applied in log order: its market's row and
        its event log row (none for a stream that is no market shown)."""
        record = self.records.apply(recorded)
        if record is None:
            return []
        shown = record_json(record)
        line = shown["MoneyLine"]
        odds: dict[str, Any] = {
            "external_id": shown["ExternalID"],
            "game_id": shown["GameID"],
            "provider": record.provider,
            "home": line["Home"],
            "away": line["Away"],
            "draw": line["Draw"],
            "deleted": shown["Deleted"],
            "created_at": shown["CreatedAt"],
            "updated_at": shown["UpdatedAt"],
            "version": record.version,
            "status": shown["Status"],
        }
        entry = event_json(record, recorded)
        event = {
            "odds_id": entry["OddsID"],
            "event_id": entry["EventID"],
            "created_at": entry["CreatedAt"],
        }
        return [
            SinkRecord(ODDS, odds, ODDS_VALUE, {"id": shown["ID"]}, ODDS_KEY),
            SinkRecord(ODDS_EVENTS, event, EVENTS_VALUE, {"id": entry["ID"]}, EVENTS_KEY),
        ]


def sink_settings(connection_url: str, *, table_prefix: str = "") -> dict[str, str]:
    """A JDBC sink configuration (Connect names) for the odds tables: upserts keyed by
    ``id``, tables created and evolved; ``table_prefix`` goes before each table's name
    (checked as an identifier by the dialect)."""
    return {
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "connection.url": connection_url,
        "topics": ",".join(TOPICS),
        "table.name.format": table_prefix + "${topic}",
        "insert.mode": "upsert",
        "pk.mode": "record_key",
        "auto.create": "true",
        "auto.evolve": "true",
        "db.timezone": "UTC",
    }


__all__ = [
    "CATEGORY",
    "EVENTS_KEY",
    "EVENTS_VALUE",
    "ODDS",
    "ODDS_EVENTS",
    "ODDS_KEY",
    "ODDS_VALUE",
    "TOPICS",
    "OddsTables",
    "sink_settings",
]
