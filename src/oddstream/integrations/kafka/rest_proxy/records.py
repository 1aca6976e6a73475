"""What a topic holds and how it is named: records, batches, offsets, the produce
hook types and the :class:`TopicHandler` protocol the REST Proxy talks to (no I/O).

A topic ``t`` is the stream ``topic-t`` (:func:`topic_stream`). Its events are
``kafka.RecordBatch`` (one per produced batch; record ``base_offset + i`` is the
batch's ``i``-th value) or, in topics written before batches, ``kafka.Record`` (one
record per event, offset = stream version − 1); :func:`records_of` reads either.
:func:`print_line` shows a record as ksqlDB's ``PRINT`` does.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol, runtime_checkable

import orjson

from ....eventstore import RecordedEvent

#: The old format: one record per event (offset = stream version − 1); still read.
RECORD_EVENT = "kafka.Record"
#: One produced batch (or a slice of one): ``base_offset`` and the records.
BATCH_EVENT = "kafka.RecordBatch"
RECORD_TYPES = frozenset((RECORD_EVENT, BATCH_EVENT))
TOPIC_CREATED = "kafka.TopicCreated"
TOPIC_STREAM_PREFIX = "topic-"
CATALOG_STREAM = "kafka-topics"
#: Kafka's legal characters; the length leaves room for the stream prefix (stream ids
#: are at most 200 characters).
MAX_TOPIC_LENGTH = 200 - len(TOPIC_STREAM_PREFIX)
#: A batch event's records are kept under this many bytes of JSON (the store takes
#: events up to 1 MiB); a larger batch is stored as several events in the same append.
MAX_BATCH_BYTES = 960 << 10
#: Appends retried after another writer took the offsets first.
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]+\Z")
#: the namespace of topic-creation event ids (one per name: concurrent creators write it once)
TOPIC_IDS = uuid.UUID("6f0b8a52-8f0e-4f57-9a52-4d1f3c6c2a01")


class TopicNotFound(LookupError):
    """The topic does not exist (and is not created on produce)."""

    def __init__(self, topic: str) -> None:
        super().__init__(f"Topic '{topic}' not found.")
        self.topic = topic


class TopicReserved(PermissionError):
    """The topic is written by the service itself: no client may produce to it."""

    def __init__(self, topic: str, owner: str) -> None:
        super().__init__(
            f"Topic '{topic}' is written by the service ({owner}): no client may produce to it."
        )
        self.topic = topic
        self.owner = owner


class PartitionNotFound(LookupError):
    """The topic has no such partition (topics here have one: 0)."""

    def __init__(self, topic: str, partition: int) -> None:
        super().__init__(f"Partition {partition} of topic '{topic}' not found.")
        self.topic = topic
        self.partition = partition


def valid_topic_name(topic: str) -> bool:
    """Whether ``topic`` is a legal topic name (Kafka's characters, bounded length)."""
    return (
        0 < len(topic) <= MAX_TOPIC_LENGTH
        and topic not in (".", "..")
        and _TOPIC_NAME.match(topic) is not None
    )


def topic_stream(topic: str) -> str:
    """The stream holding ``topic``'s records."""
    return f"{TOPIC_STREAM_PREFIX}{topic}"


class ProducedRecord(NamedTuple):
    """A record to produce, its key and value already decoded to plain JSON values.

    ``format`` is the embedded format it came in (``avro``, ``json`` or ``binary``, whose
    key and value are base64 text). A named tuple: batches build thousands of these.
    """

    value: Any
    key: Any = None
    partition: int = 0
    key_schema_id: int | None = None
    value_schema_id: int | None = None
    format: str = "json"


class TopicRecord(NamedTuple):
    """A stored record: where it is (topic, partition, offset) and what it holds.

    ``timestamp`` is in milliseconds since the epoch (when it was stored).
    """

    topic: str
    partition: int
    offset: int
    key: Any
    value: Any
    key_schema_id: int | None
    value_schema_id: int | None
    format: str
    timestamp: int

    @classmethod
    def from_event(cls, topic: str, event: RecordedEvent) -> TopicRecord:
        """The record an old-format ``kafka.Record`` event holds (for a batch event, use
        :func:`records_of`)."""
        data = event.data
        return cls(
            topic=topic,
            partition=int(data.get("partition", 0)),
            offset=event.version - 1,
            key=data.get("key"),
            value=data.get("value"),
            key_schema_id=data.get("key_schema_id"),
            value_schema_id=data.get("value_schema_id"),
            format=str(data.get("format", "json")),
            timestamp=_millis(event),
        )

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object (what ``read_topic`` answers)."""
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp,
            "key": self.key,
            "value": self.value,
            "key_schema_id": self.key_schema_id,
            "value_schema_id": self.value_schema_id,
            "format": self.format,
        }


def _millis(event: RecordedEvent) -> int:
    return int(event.recorded_at.timestamp() * 1000)


def event_span(event: RecordedEvent) -> tuple[int, int]:
    """``(base_offset, count)`` of the records a topic stream's event holds."""
    if event.type == BATCH_EVENT:
        meta = event.metadata  # small: a seek decodes this, not the records
        base = meta.get("base_offset")
        if base is None:
            data = event.data
            return int(data["base_offset"]), len(data["values"])
        return int(base), int(meta["count"])
    if event.type == RECORD_EVENT:
        return event.version - 1, 1
    return event.version - 1, 0  # not a record (topic streams hold none of these)


def records_of(
    topic: str, event: RecordedEvent, from_offset: int = 0, until: int | None = None
) -> list[TopicRecord]:
    """The records a topic stream's event holds, those from ``from_offset`` on (and
    before ``until``, if given).

    Reads both formats: a ``kafka.RecordBatch`` (many records) and an old
    ``kafka.Record`` (one, at offset version − 1).
    """
    if event.type == RECORD_EVENT:
        offset = event.version - 1
        inside = offset >= from_offset and (until is None or offset < until)
        return [TopicRecord.from_event(topic, event)] if inside else []
    if event.type != BATCH_EVENT:
        return []
    data = event.data
    base = int(data["base_offset"])
    values = data["values"]
    keys = data.get("keys")
    skip = max(0, from_offset - base)
    partition = int(data.get("partition", 0))
    key_id = data.get("key_schema_id")
    value_id = data.get("value_schema_id")
    fmt = str(data.get("format", "json"))
    ts = _millis(event)
    return [
        TopicRecord(
            topic,
            partition,
            base + i,
            keys[i] if keys is not None else None,
            values[i],
            key_id,
            value_id,
            fmt,
            ts,
        )
        for i in range(skip, len(values) if until is None else min(len(values), until - base))
    ]


@dataclass(frozen=True, slots=True)
class ValueBatch:
    """Records that share a format and schema ids, as columns (no object per record):
    ``values[i]`` and ``keys[i]`` (``keys=None``: no keys) are record ``i``."""

    values: Sequence[Any]
    keys: Sequence[Any] | None = None
    format: str = "json"
    key_schema_id: int | None = None
    value_schema_id: int | None = None

    @classmethod
    def runs(cls, records: Sequence[ProducedRecord], topic: str = "") -> list[ValueBatch]:
        """``records`` cut where the format or a schema id changes (PartitionNotFound
        for a partition other than 0)."""
        out: list[ValueBatch] = []
        start = 0
        n = len(records)
        while start < n:
            first = records[start]
            fmt, kid, vid = first.format, first.key_schema_id, first.value_schema_id
            end = start + 1
            while end < n:
                r = records[end]
                if r.format != fmt or r.key_schema_id != kid or r.value_schema_id != vid:
                    break
                end += 1
            run = records[start:end]
            for r in run:
                if r.partition != 0:
                    raise PartitionNotFound(topic, r.partition)
            keys = [r.key for r in run]
            out.append(
                cls(
                    [r.value for r in run],
                    keys if keys.count(None) != len(keys) else None,
                    fmt,
                    kid,
                    vid,
                )
            )
            start = end
        return out

    def slice(self, start: int, end: int) -> ValueBatch:
        keys = self.keys[start:end] if self.keys is not None else None
        return ValueBatch(
            self.values[start:end], keys, self.format, self.key_schema_id, self.value_schema_id
        )


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """What one produce or append stored: ``count`` records at the contiguous offsets
    ``base_offset .. base_offset + count - 1``, held by ``parts`` in order."""

    topic: str
    base_offset: int
    count: int
    timestamp: int
    parts: tuple[ValueBatch, ...]

    @property
    def end_offset(self) -> int:
        """The offset after the batch's last record."""
        return self.base_offset + self.count

    def topic_records(self) -> list[TopicRecord]:
        """The batch as :class:`TopicRecord` objects (one per record)."""
        out: list[TopicRecord] = []
        offset = self.base_offset
        for part in self.parts:
            keys = part.keys
            for i, value in enumerate(part.values):
                out.append(
                    TopicRecord(
                        self.topic,
                        0,
                        offset,
                        keys[i] if keys is not None else None,
                        value,
                        part.key_schema_id,
                        part.value_schema_id,
                        part.format,
                        self.timestamp,
                    )
                )
                offset += 1
        return out


class RecordOffset(NamedTuple):
    """Where a produced record went, or why it failed (REST Proxy's ``offsets`` item)."""

    partition: int
    offset: int | None
    error_code: int | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``offsets`` item of a produce answer."""
        return {
            "partition": self.partition,
            "offset": self.offset,
            "error_code": self.error_code,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class RecordError:
    """A hook's verdict on one stored record: it is stored, but was not accepted
    downstream (REST Proxy v2 codes: 1 retriable, 2 not)."""

    error_code: int
    error: str


@dataclass(frozen=True, slots=True)
class TopicDescription:
    """What ``GET /topics/{t}`` shows."""

    name: str
    partitions: int = 1
    configs: dict[str, str] = field(default_factory=dict)

    def partition_json(self, partition: int) -> dict[str, Any]:
        """One partition as ``GET /topics/{t}/partitions/{p}`` shows it (broker 0 leads)."""
        return {
            "partition": partition,
            "leader": 0,
            "replicas": [{"broker": 0, "leader": True, "in_sync": True}],
        }

    def to_json(self) -> dict[str, Any]:
        """The ``GET /topics/{t}`` body."""
        return {
            "name": self.name,
            "configs": dict(self.configs),
            "partitions": [self.partition_json(p) for p in range(self.partitions)],
        }


@runtime_checkable
class TopicHandler(Protocol):
    """Where the REST Proxy sends records. Raise :class:`TopicNotFound` or
    :class:`PartitionNotFound` to refuse a batch."""

    async def produce(self, topic: str, records: Sequence[ProducedRecord]) -> list[RecordOffset]:
        """Store a batch; one offset (or error) per record, in order."""
        ...

    async def topics(self) -> list[str]:
        """Every topic's name, sorted."""
        ...

    async def describe(self, topic: str) -> TopicDescription | None:
        """The topic, or ``None`` if it does not exist."""
        ...


#: Called with every batch a topic stored (offsets assigned), one :class:`TopicRecord`
#: per record. It may answer one :class:`RecordError` or ``None`` per record (or ``None``
#: for "all fine"); those errors go back to the producer in the ``offsets`` of the answer.
#: An exception marks every record of the batch with error code 2.
ProduceHook = Callable[[str, Sequence[TopicRecord]], Awaitable[Sequence[RecordError | None] | None]]
#: The same, given the whole :class:`StoredBatch` (no object per record).
BatchHook = Callable[[StoredBatch], Awaitable[Sequence[RecordError | None] | None]]


def _print_text(value: Any, record_format: str) -> str:
    if value is None:
        return "<null>"
    if record_format == "avro":
        # an Avro record prints as its generic form does: JSON with ", " and ": "
        return _avro_text(value)
    if isinstance(value, str) and record_format == "binary":
        return value
    return orjson.dumps(value).decode()


def _avro_text(value: Any) -> str:
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{orjson.dumps(k).decode()}: {_avro_text(v)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_avro_text(v) for v in value) + "]"
    return orjson.dumps(value).decode()


def print_line(record: TopicRecord) -> str:
    """One record as ksqlDB's ``PRINT`` shows it: ``rowtime: 2024/05/01 12:00:00.000 Z,
    key: …, value: …, partition: 0`` (rowtime in UTC, ``<null>`` for no key or value;
    an Avro value as its generic record prints, JSON values as their text)."""
    rowtime = datetime.fromtimestamp(record.timestamp / 1000, UTC)
    shown = rowtime.strftime("%Y/%m/%d %H:%M:%S.") + f"{rowtime.microsecond // 1000:03d} Z"
    key = record.key
    key_text = (
        "<null>" if key is None else key if isinstance(key, str) else orjson.dumps(key).decode()
    )
    return (
        f"rowtime: {shown}, key: {key_text}, "
        f"value: {_print_text(record.value, record.format)}, partition: {record.partition}"
    )
