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
from datetime import UTC, datetime
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


class RecordedEvent:
    """An event as stored, with its place in its stream and in the global log.

    ``data`` and ``metadata`` are decoded from JSON on first access, so that a reader
    which filters on type or stream (the common case in replays) pays only for what it
    looks at. ``event_id`` and ``recorded_at`` are likewise built on first access.
    """

    __slots__ = (
        "_data",
        "_event_id",
        "_metadata",
        "_raw_data",
        "_raw_id",
        "_raw_meta",
        "_recorded_us",
        "position",
        "schema_version",
        "stream_id",
        "type",
        "version",
    )

    position: int
    stream_id: str
    version: int
    type: str
    schema_version: int

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
        self.position = position
        self.stream_id = stream_id
        self.version = version
        self.type = type
        self.schema_version = schema_version
        if isinstance(event_id, UUID):
            self._event_id: UUID | None = event_id
            self._raw_id = event_id.bytes
        else:
            self._event_id = None
            self._raw_id = event_id
        if isinstance(data, bytes | str):
            self._raw_data: bytes | str | None = data
            self._data: Mapping[str, Any] | None = None
        else:
            self._raw_data = None
            self._data = data
        if isinstance(metadata, bytes | str):
            self._raw_meta: bytes | str | None = metadata
            self._metadata: Mapping[str, Any] | None = None
        else:
            self._raw_meta = None
            self._metadata = metadata
        if isinstance(recorded_at, datetime):
            self._recorded_us = int(recorded_at.timestamp() * 1_000_000)
        else:
            self._recorded_us = recorded_at

    @classmethod
    def from_row(
        cls,
        row: tuple[int, str, int, bytes, str, int, bytes | str, bytes | str, int],
    ) -> RecordedEvent:
        """Build from a stored row (raw id bytes, JSON text, microseconds): the hot path
        of every read, so it skips the type checks of ``__init__``."""
        self = _new(cls)
        (
            self.position,
            self.stream_id,
            self.version,
            self._raw_id,
            self.type,
            self.schema_version,
            self._raw_data,
            self._raw_meta,
            self._recorded_us,
        ) = row
        self._event_id = None
        self._data = None
        self._metadata = None
        return self

    @property
    def event_id(self) -> UUID:
        """The event's unique id."""
        if self._event_id is None:
            self._event_id = UUID(bytes=self._raw_id)
        return self._event_id

    @property
    def data(self) -> Mapping[str, Any]:
        """The event's payload (a JSON object)."""
        if self._data is None:
            self._data = orjson.loads(self._raw_data)  # type: ignore[arg-type]
        return self._data

    @property
    def metadata(self) -> Mapping[str, Any]:
        """Correlation id, causation id and free keys."""
        if self._metadata is None:
            self._metadata = orjson.loads(self._raw_meta)  # type: ignore[arg-type]
        return self._metadata

    @property
    def recorded_at(self) -> datetime:
        """When the store recorded the event (UTC, microsecond precision)."""
        return datetime.fromtimestamp(self._recorded_us / 1_000_000, tz=UTC)

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
        return self.position == other.position and self._raw_id == other._raw_id

    def __hash__(self) -> int:
        return hash((self.position, self._raw_id))

    def __repr__(self) -> str:
        return (
            f"RecordedEvent(position={self.position}, stream_id={self.stream_id!r}, "
            f"version={self.version}, type={self.type!r}, event_id={self.event_id})"
        )
