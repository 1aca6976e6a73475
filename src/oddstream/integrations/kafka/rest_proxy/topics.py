"""Topics over the event store, and the pluggable produce path.

A topic ``t`` is the stream ``topic-t`` with one partition (0). A produced batch is
stored as **one** ``kafka.RecordBatch`` event (split into several only when it would
not fit the store's 1 MiB event limit), holding its ``base_offset`` and its records'
values (and keys); record ``base_offset + i`` is the batch's ``i``-th record. Offsets
are per record, contiguous and never reused, exactly as Kafka clients see them: the
stream's events tile the offsets ``0, 1, 2, …`` in version order. (Topics written
before batches were stored as one ``kafka.Record`` event per record, offset = stream
version − 1; such events are still read.)

Offsets are assigned under an in-process lock per topic and appended with the stream
version they were computed from, so a producer in another process (or store) makes the
append fail with ``WrongExpectedVersion``: the tail is read again and the batch
renumbered. Offsets are thus never handed out twice.

Which topics exist is itself event-sourced: the stream ``kafka-topics`` holds one
``kafka.TopicCreated`` event per topic (with an event id derived from the name, so
concurrent creators write it once). With ``auto_create`` (the default, as Kafka's
``auto.create.topics.enable``) producing to a new topic creates it; without it only
declared topics (:meth:`EventStoreTopics.declare`) accept records.

The REST Proxy talks to a :class:`TopicHandler`; :class:`EventStoreTopics` is the
default one, and runs the hooks registered per topic (:meth:`EventStoreTopics.add_hook`
per record, :meth:`EventStoreTopics.add_batch_hook` per batch) on every batch it
stored: the place where the app routes ``tote_win_bets`` into bets.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

import orjson

from ....eventstore import (
    ANY,
    EventStore,
    InvalidEvent,
    NewEvent,
    RecordedEvent,
    WrongExpectedVersion,
)

log = logging.getLogger(__name__)

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
_MAX_RENUMBER = 100
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]+\Z")
_TOPIC_IDS = uuid.UUID("6f0b8a52-8f0e-4f57-9a52-4d1f3c6c2a01")


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


def records_of(topic: str, event: RecordedEvent, from_offset: int = 0) -> list[TopicRecord]:
    """The records a topic stream's event holds, those from ``from_offset`` on.

    Reads both formats: a ``kafka.RecordBatch`` (many records) and an old
    ``kafka.Record`` (one, at offset version − 1).
    """
    if event.type == RECORD_EVENT:
        return [TopicRecord.from_event(topic, event)] if event.version > from_offset else []
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
        for i in range(skip, len(values))
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


@dataclass(slots=True)
class _Tail:
    """Where a topic's stream ends, as this process last saw it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    version: int = -1  # -1: unknown, read it from the store
    end: int = 0


@dataclass(slots=True)
class _Spans:
    """Known ``(version, base_offset, end_offset)`` of a topic's events, sorted: seeks
    start from these instead of from the whole stream."""

    versions: list[int] = field(default_factory=list)
    bases: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)

    def add(self, version: int, base: int, end: int) -> None:
        versions = self.versions
        if versions and version > versions[-1]:
            i = len(versions)
        else:
            i = bisect.bisect_left(versions, version)
            if i < len(versions) and versions[i] == version:
                return
        if len(versions) >= 100_000:  # a bound, not a cache policy: start over
            versions.clear()
            self.bases.clear()
            self.ends.clear()
            i = 0
        versions.insert(i, version)
        self.bases.insert(i, base)
        self.ends.insert(i, end)


class EventStoreTopics:
    """The default :class:`TopicHandler`: topics as streams of the event store."""

    def __init__(
        self,
        store: EventStore,
        *,
        auto_create: bool = True,
        catalog_stream: str = CATALOG_STREAM,
    ) -> None:
        self.store = store
        self.auto_create = auto_create
        self.catalog_stream = catalog_stream
        self._known: set[str] = set()
        self._catalog_version = 0
        self._hooks: dict[str, list[ProduceHook]] = {}
        self._batch_hooks: dict[str, list[BatchHook]] = {}
        self._tails: dict[str, _Tail] = {}
        self._spans: dict[str, _Spans] = {}
        self._reserved: dict[str, str] = {}

    @classmethod
    async def open(
        cls, store: EventStore, *, auto_create: bool = True, topics: Iterable[str] = ()
    ) -> EventStoreTopics:
        """A handler with the catalogue loaded and ``topics`` declared."""
        handler = cls(store, auto_create=auto_create)
        await handler._catch_up()
        for topic in topics:
            await handler.declare(topic)
        return handler

    # ----------------------------------------------------------------- hooks
    def add_hook(self, topic: str, hook: ProduceHook) -> None:
        """Run ``hook`` on every batch stored in ``topic`` (after it is stored)."""
        self._hooks.setdefault(topic, []).append(hook)

    def remove_hook(self, topic: str, hook: ProduceHook) -> None:
        """Stop running ``hook`` for ``topic``."""
        hooks = self._hooks.get(topic, [])
        if hook in hooks:
            hooks.remove(hook)

    def add_batch_hook(self, topic: str, hook: BatchHook) -> None:
        """Run ``hook`` on every :class:`StoredBatch` produced to ``topic``."""
        self._batch_hooks.setdefault(topic, []).append(hook)

    def remove_batch_hook(self, topic: str, hook: BatchHook) -> None:
        """Stop running the batch hook ``hook`` for ``topic``."""
        hooks = self._batch_hooks.get(topic, [])
        if hook in hooks:
            hooks.remove(hook)

    # ----------------------------------------------------------------- reserved topics
    def reserve(self, topic: str, owner: str) -> None:
        """Make ``topic`` the service's own: :meth:`produce` and :meth:`produce_batch`
        (the REST Proxy's path, whoever the client) refuse it with
        :class:`TopicReserved`; the ``append*`` methods (the service's) still write it.
        ``owner`` says who writes it, for the refusal's message."""
        self._reserved[topic] = owner

    def reserved_by(self, topic: str) -> str | None:
        """Who writes ``topic`` if the service reserved it (:meth:`reserve`), else ``None``."""
        return self._reserved.get(topic)

    def _check_producible(self, topic: str) -> None:
        owner = self._reserved.get(topic)
        if owner is not None:
            raise TopicReserved(topic, owner)

    # ----------------------------------------------------------------- catalogue
    async def _catch_up(self) -> None:
        events = await self.store.read_stream(
            self.catalog_stream, from_version=self._catalog_version + 1
        )
        for event in events:
            if event.type == TOPIC_CREATED:
                self._known.add(str(event.data["topic"]))
            self._catalog_version = max(self._catalog_version, event.version)

    async def declare(self, topic: str) -> None:
        """Create ``topic`` if it does not exist (idempotent, also across processes);
        ``ValueError`` for an illegal name."""
        if not valid_topic_name(topic):
            raise ValueError(f"{topic!r} is not a legal topic name")
        if topic in self._known:
            return
        event = NewEvent(TOPIC_CREATED, {"topic": topic}, event_id=uuid.uuid5(_TOPIC_IDS, topic))
        await self.store.append(self.catalog_stream, [event], ANY)
        self._known.add(topic)

    async def exists(self, topic: str) -> bool:
        """Whether the topic exists (looking at the catalogue again if needed)."""
        if topic in self._known:
            return True
        if not valid_topic_name(topic):
            return False
        await self._catch_up()
        return topic in self._known

    async def _ensure(self, topic: str, create: bool) -> None:
        if await self.exists(topic):
            return
        if not create or not valid_topic_name(topic):
            raise TopicNotFound(topic)
        await self.declare(topic)

    # ----------------------------------------------------------------- TopicHandler
    async def topics(self) -> list[str]:
        """Every topic's name, sorted."""
        await self._catch_up()
        return sorted(self._known)

    async def describe(self, topic: str) -> TopicDescription | None:
        """The topic (one partition, no configs), or ``None``."""
        return TopicDescription(topic) if await self.exists(topic) else None

    async def produce(self, topic: str, records: Sequence[ProducedRecord]) -> list[RecordOffset]:
        """Store the batch (one append), then run the topic's hooks. A reserved topic
        (:meth:`reserve`) is refused with :class:`TopicReserved`, nothing stored."""
        self._check_producible(topic)
        batch, errors = await self.produce_batch(topic, ValueBatch.runs(records, topic))
        base = batch.base_offset
        if not errors:
            return [RecordOffset(0, base + i) for i in range(batch.count)]
        return [
            RecordOffset(0, base + i, e.error_code, e.error)
            if (e := errors.get(base + i)) is not None
            else RecordOffset(0, base + i)
            for i in range(batch.count)
        ]

    async def produce_batch(
        self, topic: str, parts: Sequence[ValueBatch]
    ) -> tuple[StoredBatch, dict[int, RecordError]]:
        """Store the records (one append), run the topic's hooks; the batch and the
        hooks' errors by offset (usually none: no object per record on the way).
        :class:`TopicReserved` (nothing stored) for a reserved topic."""
        self._check_producible(topic)
        (batch,) = await self.append_value_batches(topic, [parts], create=self.auto_create)
        errors: dict[int, RecordError] = {}
        base, count = batch.base_offset, batch.count
        for batch_hook in self._batch_hooks.get(topic, ()):
            _merge(errors, base, await _run_hook(batch_hook(batch), topic, count))
        hooks = self._hooks.get(topic)
        if hooks:
            stored = batch.topic_records()
            for hook in hooks:
                _merge(errors, base, await _run_hook(hook(topic, stored), topic, count))
        return batch, errors

    # ----------------------------------------------------------------- app API
    async def append(
        self, topic: str, records: Sequence[ProducedRecord], *, create: bool = True
    ) -> list[TopicRecord]:
        """Store records without running hooks (e.g. derived records the app computes);
        one append, so the batch is atomic and its offsets contiguous."""
        if not records:
            return []
        return (await self.append_batch(topic, records, create=create)).topic_records()

    async def append_batch(
        self, topic: str, records: Sequence[ProducedRecord], *, create: bool = True
    ) -> StoredBatch:
        """Like :meth:`append`, answering the :class:`StoredBatch`."""
        if not records:
            raise ValueError("no records to append")
        runs = ValueBatch.runs(records, topic)
        (batch,) = await self.append_value_batches(topic, [runs], create=create)
        return batch

    async def append_value_batches(
        self,
        topic: str,
        batches: Sequence[Sequence[ValueBatch]],
        *,
        create: bool = True,
        metadata: Mapping[str, Any] | None = None,
    ) -> list[StoredBatch]:
        """Store several batches (each one or more :class:`ValueBatch` parts) in one
        append: one event per part, unless a part must be split to fit; offsets
        contiguous and in order. No hooks run. ``metadata`` goes into every event's
        metadata (readers of the records never see it): a writer's own marker, such as
        how far it got, stored atomically with its records."""
        if not any(part.values for parts in batches for part in parts):
            raise ValueError("no records to append")
        await self._ensure(topic, create)
        stream = topic_stream(topic)
        tail = self._tails.get(topic)
        if tail is None:
            tail = self._tails[topic] = _Tail()
        spans = self._spans.get(topic)
        if spans is None:
            spans = self._spans[topic] = _Spans()
        # One event a part: parts too big for one event are rare, and found out when
        # the store refuses the append (then, and only then, sizes are measured).
        pieces = [part for parts in batches for part in parts if part.values]
        split = False
        async with tail.lock:
            for _ in range(_MAX_RENUMBER):
                if tail.version < 0:
                    tail.version, tail.end = await self._read_tail(topic)
                base = tail.end
                events = []
                offset = base
                for piece in pieces:
                    events.append(_batch_event(piece, offset, metadata))
                    offset += len(piece.values)
                try:
                    result = await self.store.append(stream, events, tail.version)
                except WrongExpectedVersion:
                    tail.version = -1  # another writer took these offsets: renumber
                    continue
                except InvalidEvent:
                    if split:
                        raise
                    split = True
                    fitted = [p for piece in pieces for p in _fit(piece)]
                    if len(fitted) == len(pieces):
                        raise  # not a matter of size
                    pieces = fitted
                    continue
                except BaseException:
                    tail.version = -1  # the outcome may be unknown: read the tail again
                    raise
                version = result.version - len(events)
                offset = base
                for piece in pieces:
                    version += 1
                    spans.add(version, offset, offset + len(piece.values))
                    offset += len(piece.values)
                tail.version, tail.end = result.version, offset
                now = int(time.time() * 1000)
                stored = []
                offset = base
                for parts in batches:
                    count = sum(len(p.values) for p in parts)
                    stored.append(StoredBatch(topic, offset, count, now, tuple(parts)))
                    offset += count
                return stored
        raise WrongExpectedVersion(stream, tail.version, -1)

    async def _read_tail(self, topic: str) -> tuple[int, int]:
        """The topic stream's version and end offset, read from the store."""
        last = await self.store.read_stream(topic_stream(topic), backwards=True, limit=1)
        if not last:
            return 0, 0
        base, count = event_span(last[0])
        return last[0].version, base + count

    async def _seek(self, topic: str, offset: int) -> int | None:
        """The version of the first event holding a record at ``offset`` or later
        (``None``: there is none). A binary search over versions, narrowed by the spans
        this process has seen."""
        stream = topic_stream(topic)
        spans = self._spans.get(topic)
        if spans is None:
            spans = self._spans[topic] = _Spans()
        last = await self.store.stream_version(stream)
        lo, hi = 1, last + 1  # the answer is in [lo, hi]; last + 1 means none
        i = bisect.bisect_right(spans.bases, offset) - 1
        if i >= 0:
            if offset < spans.ends[i]:
                return spans.versions[i]
            lo = max(lo, spans.versions[i] + 1)
        if i + 1 < len(spans.versions):
            hi = min(hi, spans.versions[i + 1])
        while lo < hi:
            mid = (lo + hi) // 2
            (event,) = await self.store.read_stream(stream, from_version=mid, limit=1)
            base, count = event_span(event)
            spans.add(mid, base, base + count)
            if base + count <= offset:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo <= last else None

    async def read(
        self, topic: str, from_offset: int = 0, limit: int | None = None
    ) -> list[TopicRecord]:
        """Up to ``limit`` records from ``from_offset`` on (TopicNotFound if unknown)."""
        if not await self.exists(topic):
            raise TopicNotFound(topic)
        if type(from_offset) is not int or from_offset < 0:
            raise ValueError("from_offset must be a non-negative integer")
        version = await self._seek(topic, from_offset)
        out: list[TopicRecord] = []
        stream = topic_stream(topic)
        while version is not None and (limit is None or len(out) < limit):
            events = await self.store.read_stream(stream, from_version=version, limit=32)
            for event in events:
                out += records_of(topic, event, from_offset)
                if limit is not None and len(out) >= limit:
                    del out[limit:]
                    break
            version = events[-1].version + 1 if len(events) == 32 else None
        return out

    async def read_topic(
        self, topic: str, from_offset: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Like :meth:`read`, as JSON objects (``oddstream print`` prints these)."""
        return [r.to_json() for r in await self.read(topic, from_offset, limit)]

    async def end_offset(self, topic: str) -> int:
        """The offset the next record will get (the number of records)."""
        if not await self.exists(topic):
            raise TopicNotFound(topic)
        return (await self._read_tail(topic))[1]


def _fit(piece: ValueBatch) -> list[ValueBatch]:
    """``piece`` cut so that each part's JSON fits one event."""
    size = len(orjson.dumps(piece.values))
    if piece.keys is not None:
        size += len(orjson.dumps(piece.keys))
    n = len(piece.values)
    if size <= MAX_BATCH_BYTES or n == 1:
        return [piece]  # a single record too big for an event: the store refuses it
    half = n // 2
    return _fit(piece.slice(0, half)) + _fit(piece.slice(half, n))


def _batch_event(
    piece: ValueBatch, base: int, metadata: Mapping[str, Any] | None = None
) -> NewEvent:
    data: dict[str, Any] = {"partition": 0, "base_offset": base, "format": piece.format}
    if piece.key_schema_id is not None:
        data["key_schema_id"] = piece.key_schema_id
    if piece.value_schema_id is not None:
        data["value_schema_id"] = piece.value_schema_id
    data["values"] = piece.values
    if piece.keys is not None:
        data["keys"] = piece.keys
    meta = {**metadata} if metadata else {}
    meta["base_offset"] = base  # a writer's marker never hides where the records are
    meta["count"] = len(piece.values)
    return NewEvent(BATCH_EVENT, data, meta)


def _merge(
    errors: dict[int, RecordError], base: int, verdicts: Sequence[RecordError | None]
) -> None:
    for i, verdict in enumerate(verdicts):
        if verdict is not None and base + i not in errors:
            errors[base + i] = verdict


async def _run_hook(
    call: Awaitable[Sequence[RecordError | None] | None], topic: str, count: int
) -> Sequence[RecordError | None]:
    try:
        verdicts = await call
    except Exception as exc:
        log.exception("produce hook for topic %r failed", topic)
        return [RecordError(2, f"stored, but the topic's hook failed: {exc}")] * count
    if verdicts is None:
        return ()
    if len(verdicts) != count:
        log.error(
            "produce hook for %r answered %d verdicts for %d records", topic, len(verdicts), count
        )
        return [RecordError(2, "stored, but the topic's hook answered badly")] * count
    return verdicts
