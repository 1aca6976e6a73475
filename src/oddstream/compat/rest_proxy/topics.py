"""Topics over the event store, and the pluggable produce path.

A topic ``t`` is the stream ``topic-t`` with one partition (0); each record is one
``kafka.Record`` event, and a record's offset is its 0-based index in the stream (its
stream version − 1). A batch is one append, so its offsets are contiguous.

Which topics exist is itself event-sourced: the stream ``kafka-topics`` holds one
``kafka.TopicCreated`` event per topic (with an event id derived from the name, so
concurrent creators write it once). With ``auto_create`` (the default, as Kafka's
``auto.create.topics.enable``) producing to a new topic creates it; without it only
declared topics (:meth:`EventStoreTopics.declare`) accept records.

The REST Proxy talks to a :class:`TopicHandler`; :class:`EventStoreTopics` is the
default one, and runs the hooks registered per topic (:meth:`EventStoreTopics.add_hook`)
on every batch it stored: the place where the app routes ``tote_win_bets`` into bets.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from ...eventstore import ANY, EventStore, NewEvent, RecordedEvent

log = logging.getLogger(__name__)

RECORD_EVENT = "kafka.Record"
TOPIC_CREATED = "kafka.TopicCreated"
TOPIC_STREAM_PREFIX = "topic-"
CATALOG_STREAM = "kafka-topics"
#: Kafka's legal characters; the length leaves room for the stream prefix (stream ids
#: are at most 200 characters).
MAX_TOPIC_LENGTH = 200 - len(TOPIC_STREAM_PREFIX)
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]+\Z")
_TOPIC_IDS = uuid.UUID("6f0b8a52-8f0e-4f57-9a52-4d1f3c6c2a01")


class TopicNotFound(LookupError):
    """The topic does not exist (and is not created on produce)."""

    def __init__(self, topic: str) -> None:
        super().__init__(f"Topic '{topic}' not found.")
        self.topic = topic


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

    def event_data(self) -> dict[str, Any]:
        """The stored event's data (``None`` parts left out)."""
        data: dict[str, Any] = {"partition": self.partition, "value": self.value}
        if self.key is not None:
            data["key"] = self.key
        if self.key_schema_id is not None:
            data["key_schema_id"] = self.key_schema_id
        if self.value_schema_id is not None:
            data["value_schema_id"] = self.value_schema_id
        data["format"] = self.format
        return data


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
        """The record an event of ``topic``'s stream holds."""
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
            timestamp=int(event.recorded_at.timestamp() * 1000),
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


#: Called with every batch a topic stored (offsets assigned). It may answer one
#: :class:`RecordError` or ``None`` per record (or ``None`` for "all fine"); those errors
#: go back to the producer in the ``offsets`` of the answer. An exception marks every
#: record of the batch with error code 2.
ProduceHook = Callable[[str, Sequence[TopicRecord]], Awaitable[Sequence[RecordError | None] | None]]


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
        """Store the batch in one append, then run the topic's hooks."""
        stored = await self.append(topic, records, create=self.auto_create)
        errors: list[RecordError | None] = [None] * len(stored)
        for hook in self._hooks.get(topic, ()):
            for i, verdict in enumerate(await _run_hook(hook, topic, stored)):
                if verdict is not None and errors[i] is None:
                    errors[i] = verdict
        return [
            RecordOffset(r.partition, r.offset, e.error_code if e else None, e.error if e else None)
            for r, e in zip(stored, errors, strict=True)
        ]

    # ----------------------------------------------------------------- app API
    async def append(
        self, topic: str, records: Sequence[ProducedRecord], *, create: bool = True
    ) -> list[TopicRecord]:
        """Store records without running hooks (e.g. derived records the app computes);
        one append, so the batch is atomic and its offsets contiguous."""
        if not records:
            return []
        for record in records:
            if record.partition != 0:
                raise PartitionNotFound(topic, record.partition)
        await self._ensure(topic, create)
        events = [NewEvent(RECORD_EVENT, r.event_data()) for r in records]
        result = await self.store.append(topic_stream(topic), events, ANY)
        first = result.version - len(records)
        now = int(time.time() * 1000)
        return [
            TopicRecord(
                topic,
                r.partition,
                first + i,
                r.key,
                r.value,
                r.key_schema_id,
                r.value_schema_id,
                r.format,
                now,
            )
            for i, r in enumerate(records)
        ]

    async def read(
        self, topic: str, from_offset: int = 0, limit: int | None = None
    ) -> list[TopicRecord]:
        """Up to ``limit`` records from ``from_offset`` on (TopicNotFound if unknown)."""
        if not await self.exists(topic):
            raise TopicNotFound(topic)
        if type(from_offset) is not int or from_offset < 0:
            raise ValueError("from_offset must be a non-negative integer")
        events = await self.store.read_stream(
            topic_stream(topic), from_version=from_offset + 1, limit=limit
        )
        return [TopicRecord.from_event(topic, e) for e in events if e.type == RECORD_EVENT]

    async def read_topic(
        self, topic: str, from_offset: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Like :meth:`read`, as JSON objects (``oddstream print`` prints these)."""
        return [r.to_json() for r in await self.read(topic, from_offset, limit)]

    async def end_offset(self, topic: str) -> int:
        """The offset the next record will get (the number of records)."""
        if not await self.exists(topic):
            raise TopicNotFound(topic)
        return await self.store.stream_version(topic_stream(topic))


async def _run_hook(
    hook: ProduceHook, topic: str, stored: Sequence[TopicRecord]
) -> Sequence[RecordError | None]:
    try:
        verdicts = await hook(topic, stored)
    except Exception as exc:
        log.exception("produce hook for topic %r failed", topic)
        return [RecordError(2, f"stored, but the topic's hook failed: {exc}")] * len(stored)
    if verdicts is None:
        return [None] * len(stored)
    if len(verdicts) != len(stored):
        log.error(
            "produce hook for %r answered %d verdicts for %d records",
            topic,
            len(verdicts),
            len(stored),
        )
        return [RecordError(2, "stored, but the topic's hook answered badly")] * len(stored)
    return verdicts
