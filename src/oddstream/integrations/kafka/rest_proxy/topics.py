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
import time
import uuid
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ....eventstore import (
    ANY,
    EventStore,
    InvalidEvent,
    NewEvent,
    WrongExpectedVersion,
)
from .records import (
    BATCH_EVENT,
    CATALOG_STREAM,
    MAX_BATCH_BYTES,
    TOPIC_CREATED,
    TOPIC_IDS,
    BatchHook,
    ProducedRecord,
    ProduceHook,
    RecordError,
    RecordOffset,
    StoredBatch,
    TopicDescription,
    TopicNotFound,
    TopicRecord,
    TopicReserved,
    ValueBatch,
    event_span,
    records_of,
    topic_stream,
    valid_topic_name,
)

log = logging.getLogger(__name__)

_MAX_RENUMBER = 100


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
        event = NewEvent(TOPIC_CREATED, {"topic": topic}, event_id=uuid.uuid5(TOPIC_IDS, topic))
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
