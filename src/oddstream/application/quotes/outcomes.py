"""What the quote ingest answers for each message, and the reasons of its own that a
quote event's decoder does not know (the codec's are in ``domain/quotes/errors.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STORED = "stored"
REPEATED = "repeated"
DEAD_LETTERED = "dead_lettered"

#: a ``QuoteProductsUpdated`` for a quote with no ``QuoteStarted`` in the log
UNKNOWN_QUOTE = "unknown_quote"
#: a ``QuoteStarted`` for a quote that started already, with other content
ALREADY_STARTED = "already_started"
#: a client ``eventId`` already stored for the quote with another event
EVENT_ID_REUSED = "event_id_reused"
#: the log refused the event (it should not happen: sizes are checked before)
STORE_REFUSED = "store_refused"

#: the reasons of the ingest itself (besides the codec's ``REASONS``)
INGEST_REASONS = frozenset({UNKNOWN_QUOTE, ALREADY_STARTED, EVENT_ID_REUSED, STORE_REFUSED})


@dataclass(frozen=True, slots=True)
class Outcome:
    """One message's fate: ``stored`` (at ``position`` in ``stream``), ``repeated``
    (already in the log: nothing written) or ``dead_lettered`` (``reason``, ``path``,
    ``message``, and the letter's id)."""

    index: int
    status: str
    line: int | None = None
    event_type: str | None = None
    quote_id: str | None = None
    stream: str | None = None
    position: int | None = None
    reason: str | None = None
    path: str | None = None
    message: str | None = None
    letter_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The outcome as answered, without the fields that do not apply."""
        return {
            name: getattr(self, name)
            for name in self.__slots__
            if getattr(self, name) is not None or name in ("index", "status")
        }


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts of a run of outcomes, dead letters by reason."""

    stored: int
    repeated: int
    dead_lettered: int
    by_reason: dict[str, int]

    @classmethod
    def of(cls, outcomes: list[Outcome]) -> Summary:
        reasons: dict[str, int] = {}
        for o in outcomes:
            if o.status == DEAD_LETTERED and o.reason is not None:
                reasons[o.reason] = reasons.get(o.reason, 0) + 1
        return cls(
            sum(o.status == STORED for o in outcomes),
            sum(o.status == REPEATED for o in outcomes),
            sum(o.status == DEAD_LETTERED for o in outcomes),
            dict(sorted(reasons.items())),
        )

    def add(self, other: Summary) -> Summary:
        reasons = dict(self.by_reason)
        for reason, n in other.by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + n
        return Summary(
            self.stored + other.stored,
            self.repeated + other.repeated,
            self.dead_lettered + other.dead_lettered,
            dict(sorted(reasons.items())),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "stored": self.stored,
            "repeated": self.repeated,
            "dead_lettered": self.dead_lettered,
            "dead_lettered_by_reason": self.by_reason,
        }
