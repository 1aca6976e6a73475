"""Batch-granular topic storage: one event per produced batch, offsets per record.

Offsets across batch boundaries, reads from the middle of a batch, seeks by a handler
that has seen nothing, old one-record events still read, batches too big for one event,
and concurrent producers (in one process and across store instances) never sharing an
offset.
"""

from __future__ import annotations

import asyncio

import pytest

from oddstream.eventstore import ANY, EventStore, NewEvent
from oddstream.integrations.kafka.rest_proxy import (
    BATCH_EVENT,
    RECORD_EVENT,
    EventStoreTopics,
    ProducedRecord,
    records_of,
    topic_stream,
)
from oddstream.integrations.kafka.rest_proxy import topics as topics_module


def recs(start: int, n: int, **kw) -> list[ProducedRecord]:
    return [ProducedRecord({"n": start + i}, **kw) for i in range(n)]


async def test_offsets_run_on_across_batch_boundaries(fast_store: EventStore) -> None:
    topics = await EventStoreTopics.open(fast_store)
    sizes = [1, 7, 3, 1000, 2]
    bases = []
    total = 0
    for size in sizes:
        batch = await topics.append_batch("t", recs(total, size))
        bases.append(batch.base_offset)
        total += size
    assert bases == [0, 1, 8, 11, 1011]
    assert await topics.end_offset("t") == total
    events = await fast_store.read_stream(topic_stream("t"))
    assert [e.type for e in events] == [BATCH_EVENT] * len(sizes)  # one event a batch
    everything = await topics.read("t")
    assert [r.offset for r in everything] == list(range(total))
    assert [r.value["n"] for r in everything] == list(range(total))


@pytest.mark.parametrize("start", [0, 1, 5, 8, 10, 11, 500, 1010, 1011, 1012, 1013])
async def test_reads_start_anywhere_even_inside_a_batch(fast_store: EventStore, start) -> None:
    writer = await EventStoreTopics.open(fast_store)
    total = 0
    for size in [1, 7, 3, 1000, 2]:
        await writer.append_batch("t", recs(total, size))
        total += size
    for handler in (writer, await EventStoreTopics.open(fast_store)):  # cached spans or none
        got = await handler.read("t", from_offset=start, limit=4)
        assert [r.offset for r in got] == list(range(start, min(start + 4, total)))
        assert [r.value["n"] for r in got] == [r.offset for r in got]
        rest = await handler.read_topic("t", from_offset=start)
        assert [r["offset"] for r in rest] == list(range(start, total))


async def test_keys_schema_ids_and_formats_round_trip(fast_store: EventStore) -> None:
    topics = await EventStoreTopics.open(fast_store)
    mixed = [
        ProducedRecord({"a": 1}, key="k1", format="avro", value_schema_id=3, key_schema_id=2),
        ProducedRecord({"a": 2}, key=None, format="avro", value_schema_id=3, key_schema_id=2),
        ProducedRecord("aGk=", format="binary"),  # another shape: another event
        ProducedRecord(None, key="tomb"),
    ]
    await topics.append("t", mixed)
    events = await fast_store.read_stream(topic_stream("t"))
    assert [e.data["base_offset"] for e in events] == [0, 2, 3]
    got = await topics.read("t")
    assert [(r.offset, r.key, r.value, r.format, r.key_schema_id, r.value_schema_id)
            for r in got] == [
        (0, "k1", {"a": 1}, "avro", 2, 3),
        (1, None, {"a": 2}, "avro", 2, 3),
        (2, None, "aGk=", "binary", None, None),
        (3, "tomb", None, "json", None, None),
    ]  # fmt: skip


async def test_old_one_record_events_are_still_read(fast_store: EventStore) -> None:
    """Topics written before batches (one ``kafka.Record`` per record) read as before,
    and new batches continue their offsets."""
    stream = topic_stream("old")
    await fast_store.append(
        stream,
        [
            NewEvent(RECORD_EVENT, {"partition": 0, "value": {"n": i}, "format": "json"})
            for i in range(3)
        ],
        ANY,
    )
    topics = await EventStoreTopics.open(fast_store, topics=["old"])
    assert await topics.end_offset("old") == 3
    batch = await topics.append_batch("old", recs(3, 4))
    assert batch.base_offset == 3
    assert [r.offset for r in await topics.read("old", from_offset=2)] == [2, 3, 4, 5, 6]
    fresh = await EventStoreTopics.open(fast_store)
    assert [r.value["n"] for r in await fresh.read("old", from_offset=1, limit=3)] == [1, 2, 3]
    events = await fast_store.read_stream(stream)
    assert [len(records_of("old", e)) for e in events] == [1, 1, 1, 4]
    # ``until``: the records before that offset only, in either format
    everything = [r for e in events for r in records_of("old", e)]
    for start, until in [(0, 1), (1, 2), (2, 5), (4, 5), (3, 7), (5, 99), (6, 6)]:
        bounded = [r for e in events for r in records_of("old", e, start, until)]
        assert bounded == [r for r in everything if start <= r.offset < until]


async def test_a_batch_too_big_for_one_event_is_split_in_one_append(
    fast_store: EventStore,
) -> None:
    """1,000 records of 15 KiB (what the body limit allows) do not fit one 1 MiB event:
    the store refuses the one-event append, the batch is cut by size and stored in one
    append of several events."""
    topics = await EventStoreTopics.open(fast_store)
    await topics.append("t", recs(0, 1))
    head = await fast_store.head_position()
    big = [ProducedRecord({"pad": "x" * 15_000, "n": i}) for i in range(1, 1001)]
    batch = await topics.append_batch("t", big)
    assert (batch.base_offset, batch.count) == (1, 1000)
    events = await fast_store.read_stream(topic_stream("t"), from_version=2)
    assert len(events) >= 15
    assert all(len(e.data["values"]) * 15_000 < topics_module.MAX_BATCH_BYTES for e in events)
    # one append: the events are consecutive in the log
    assert [e.position for e in events] == list(range(head + 1, head + 1 + len(events)))
    got = await topics.read("t", from_offset=370, limit=300)
    assert [r.offset for r in got] == list(range(370, 670))
    assert [r.value["n"] for r in got] == list(range(370, 670))
    assert await topics.end_offset("t") == 1001


async def test_concurrent_producers_in_one_process(fast_store: EventStore) -> None:
    topics = await EventStoreTopics.open(fast_store)

    async def producer(k: int) -> list[tuple[int, int]]:
        out = []
        for j in range(20):
            size = 1 + (k * 7 + j) % 13
            batch = await topics.append_batch("t", recs(0, size, key=f"{k}-{j}"))
            out.append((batch.base_offset, size))
        return out

    spans = sorted(s for got in await asyncio.gather(*map(producer, range(6))) for s in got)
    offset = 0
    for base, size in spans:  # the batches tile the offsets: no gap, no overlap
        assert base == offset
        offset += size
    assert await topics.end_offset("t") == offset
    records = await topics.read("t")
    assert [r.offset for r in records] == list(range(offset))


async def test_concurrent_producers_across_store_instances(store_factory) -> None:
    """Two handlers on two store instances (two "processes") share a topic: their
    appends conflict on the stream version and renumber; no offset is given twice."""
    stores = [await store_factory(), await store_factory()]
    try:
        handlers = [await EventStoreTopics.open(s, topics=["t"]) for s in stores]

        async def producer(k: int) -> list[tuple[int, int, str]]:
            out = []
            for j in range(15):
                size = 1 + (k + j) % 5
                batch = await handlers[k % 2].append_batch("t", recs(0, size, key=f"{k}-{j}"))
                out.append((batch.base_offset, size, f"{k}-{j}"))
            return out

        spans = sorted(s for got in await asyncio.gather(*map(producer, range(4))) for s in got)
        offset = 0
        for base, size, _ in spans:
            assert base == offset
            offset += size
        for handler in handlers:
            assert await handler.end_offset("t") == offset
            records = await handler.read("t")
            assert [r.offset for r in records] == list(range(offset))
            # every record is where its producer was told it is
            by_offset = {r.offset: r.key for r in records}
            for base, size, key in spans:
                assert {by_offset[o] for o in range(base, base + size)} == {key}
    finally:
        for s in stores:
            await s.close()
