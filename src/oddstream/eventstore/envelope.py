"""The event envelope: what callers append, what the store hands back.

Conventions (the same in every adapter):

* Stream versions count events: a stream's first event has version 1, and a stream's
  version is the version of its last event. A stream that does not exist has version 0.
* Global positions start at 1 and strictly increase in commit order. ``read_all`` and the
  subscriptions take an *exclusive* ``after`` position: ``after=0`` means from the start,
  and a checkpoint is simply the last position a reader applied.
* ``data`` and ``metadata`` are JSON objects. Metadata keys ``correlation_id`` and
  ``causation_id`` are conventional; any other keys are free.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson


class ExpectedVersion(enum.Enum):
    """Symbolic expectations for an append; an ``int`` asks for that exact version."""

    ANY = "any"
    """Append whatever the stream's version."""
    NO_STREAM = "no_stream"
    """The stream must not exist yet (same as exact version 0)."""
    STREAM_EXISTS = "stream_exists"
    """The stream must already have at least one event."""

    def __str__(self) -> str:
        return self.name


ANY = ExpectedVersion.ANY
NO_STREAM = ExpectedVersion.NO_STREAM
STREAM_EXISTS = ExpectedVersion.STREAM_EXISTS

Expected = int | ExpectedVersion

CORRELATION_ID = "correlation_id"
CAUSATION_ID = "causation_id"


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append.

    ``event_id`` may be supplied by the caller (it makes retries idempotent); when left
    out the store assigns a fresh time-ordered UUID (version 7).
    """

    type: str
    data: Mapping[str, Any]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    event_id: UUID | None = None
    schema_version: int = 1


@dataclass(frozen=True, slots=True)
class StreamAppend:
    """One stream's part of a (possibly multi-stream) atomic append."""

    stream_id: str
    events: Sequence[NewEvent]
    expected: Expected = ExpectedVersion.ANY


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What an append wrote (or, for an idempotent retry, what it had written).

    ``version`` is the stream's version after the append; the events took the global
    positions ``first_position .. last_position``, contiguous and in order.
    """

    stream_id: str
    version: int
    first_position: int
    last_position: int
    idempotent_retry: bool = False

    @property
    def positions(self) -> range:
        """The global positions of the appended events, in order."""
        return range(self.first_position, self.last_position + 1)


_new = object.__new__
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# (position, stream_id, version, event_id bytes, type, schema_version, data JSON,
#  metadata JSON, recorded_at in microseconds since the epoch): a stored row, as the
#  adapters read it.
Row = tuple[int, str, int, bytes, str, int, bytes | str, bytes | str, int]


class RecordedEvent:
    """An event as stored, with its place in its stream and in the global log.

    It wraps the stored row as read, and builds ``data``, ``metadata`` (decoded from
    JSON), ``event_id`` and ``recorded_at`` on first access: a replay that filters on
    type or stream pays only for what it looks at.
    """

    __slots__ = ("_data", "_event_id", "_metadata", "_row")

    _row: Row

    def __init__(
        self,
        position: int,
        stream_id: str,
        version: int,
        event_id: bytes | UUID,
        type: str,
        schema_version: int,
        data: bytes | str | Mapping[str, Any],
        metadata: bytes | str | Mapping[str, Any],
        recorded_at: int | datetime,
    ) -> None:
        raw_id = event_id.bytes if isinstance(event_id, UUID) else event_id
        self._event_id = event_id if isinstance(event_id, UUID) else None
        self._data = None if isinstance(data, bytes | str) else data
        self._metadata = None if isinstance(metadata, bytes | str) else metadata
        us = (
            int(recorded_at.timestamp() * 1_000_000)
            if isinstance(recorded_at, datetime)
            else recorded_at
        )
        self._row = (
            position,
            stream_id,
            version,
            raw_id,
            type,
            schema_version,
            data if self._data is None else b"",
            metadata if self._metadata is None else b"",
            us,
        )  # type: ignore[assignment]

    @classmethod
    def from_row(cls, row: Row) -> RecordedEvent:
        """Wrap a stored row: the hot path of every read, so it does nothing else."""
        self = _new(cls)
        self._row = row
        self._event_id = None
        self._data = None
        self._metadata = None
        return self

    @property
    def position(self) -> int:
        """The event's place in the global log (from 1, strictly increasing)."""
        return self._row[0]

    @property
    def stream_id(self) -> str:
        return self._row[1]

    @property
    def version(self) -> int:
        """The event's version in its stream (from 1)."""
        return self._row[2]

    @property
    def type(self) -> str:
        return self._row[4]

    @property
    def size(self) -> int:
        """The length of the event's ``data`` and ``metadata`` as read (bytes of their
        JSON on SQLite, characters on PostgreSQL): what a page's byte budget counts."""
        row = self._row
        return len(row[6]) + len(row[7])

    @property
    def schema_version(self) -> int:
        return self._row[5]

    @property
    def event_id(self) -> UUID:
        """The event's unique id."""
        if self._event_id is None:
            self._event_id = UUID(bytes=bytes(self._row[3]))
        return self._event_id

    @property
    def data(self) -> Mapping[str, Any]:
        """The event's payload (a JSON object)."""
        if self._data is None:
            self._data = orjson.loads(self._row[6])
        return self._data

    @property
    def metadata(self) -> Mapping[str, Any]:
        """Correlation id, causation id and free keys."""
        if self._metadata is None:
            self._metadata = orjson.loads(self._row[7])
        return self._metadata

    @property
    def recorded_at(self) -> datetime:
        """When the store recorded the event (UTC, microsecond precision)."""
        return _EPOCH + timedelta(microseconds=self._row[8])

    @property
    def correlation_id(self) -> str | None:
        return self.metadata.get(CORRELATION_ID)

    @property
    def causation_id(self) -> str | None:
        return self.metadata.get(CAUSATION_ID)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the whole envelope."""
        return {
            "event_id": str(self.event_id),
            "stream_id": self.stream_id,
            "version": self.version,
            "position": self.position,
            "type": self.type,
            "schema_version": self.schema_version,
            "data": self.data,
            "metadata": self.metadata,
            "recorded_at": self.recorded_at.isoformat(),
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecordedEvent):
            return NotImplemented
        return self._row[0] == other._row[0] and self._row[3] == other._row[3]

    def __hash__(self) -> int:
        return hash((self._row[0], self._row[3]))

    def __repr__(self) -> str:
        return (
            f"RecordedEvent(position={self.position}, stream_id={self.stream_id!r}, "
            f"version={self.version}, type={self.type!r}, event_id={self.event_id})"
        )
