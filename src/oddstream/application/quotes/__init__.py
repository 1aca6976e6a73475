"""The quote ingest use case: messages in (one event, a batch, NDJSON), quote events
into the log, the rest into the dead-letter store. See ``docs/analytics.md``, "Ingest"."""

from .ingest import SOURCE, IngestConflict, QuoteIngest
from .messages import Message, json_messages, ndjson_lines
from .outcomes import (
    ALREADY_STARTED,
    DEAD_LETTERED,
    EVENT_ID_REUSED,
    INGEST_REASONS,
    REPEATED,
    STORED,
    UNKNOWN_QUOTE,
    Outcome,
    Summary,
)

__all__ = [
    "ALREADY_STARTED",
    "DEAD_LETTERED",
    "EVENT_ID_REUSED",
    "INGEST_REASONS",
    "REPEATED",
    "SOURCE",
    "STORED",
    "UNKNOWN_QUOTE",
    "IngestConflict",
    "Message",
    "Outcome",
    "QuoteIngest",
    "Summary",
    "json_messages",
    "ndjson_lines",
]
