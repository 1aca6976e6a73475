"""The runner follows a log of large and small events within the store's page byte
budget, on every adapter: each batch holds at most the budget (or one larger event),
every event comes once and in order, in a catch-up, live and in a rebuild; the pages it
reads ahead do not multiply the bound; and a SQL sink writes such a log whole."""

from __future__ import annotations

import asyncio
import gc
import os
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import pytest

from oddstream.consumers import (
    Batch,
    Consumer,
    ConsumerRunner,
    MemoryCheckpoint,
    SinkCheckpoint,
    Subscription,
)
from oddstream.eventstore import ANY, EventStore, NewEvent
from oddstream.integrations.kafka.rest_proxy import EventStoreTopics, ProducedRecord
from oddstream.integrations.kafka.sink_source import TopicSource
from oddstream.runtime.deadletters import DeadLetterStore
from oddstream.sinks import SinkConsumer, parse_config
from sinks.conftest import Target, target_url

pytestmark = pytest.mark.timeout(120)

BUDGET = 1 << 20
WAIT = 20.0


class Sizes(Consumer):
    """Keeps each batch's positions and bytes; ``pause`` slows every batch down."""

    name = "toy-sizes"
    subscription = Subscription(stream_prefix="big-")

    def __init__(self, pause: float = 0.0) -> None:
        self.batches: list[tuple[list[int], int]] = []
        self.pause = pause

    async def handle(self, batch: Batch) -> None:
        self.batches.append(([e.position for e in batch.events], sum(e.size for e in batch.events)))
        if self.pause:
            await asyncio.sleep(self.pause)

    async def reset(self) -> None:
        self.batches.clear()

    def positions(self) -> list[int]:
        return [p for positions, _ in self.batches for p in positions]


async def fill(store: EventStore, rounds: int = 2) -> list[int]:
    """Runs of small events and 300-900 KB ones; the positions of ``big-*`` events."""
    followed: list[int] = []
    for r in range(rounds):
        for size in (900_000, 600_000, 300_000, 300_000):
            blob = "x" * size if size % 2 == 0 and r % 2 == 0 else os.urandom(size // 2).hex()
            done = await store.append(
                "big-1", [NewEvent("t.Small", {"r": r, "i": i}) for i in range(300)], ANY
            )
            followed += range(done.first_position, done.last_position + 1)
            await store.append("other-1", [NewEvent("t.Small", {"i": 1})], ANY)
            done = await store.append("big-2", [NewEvent("t.Big", {"b": blob})], ANY)
            followed.append(done.last_position)
    return followed


async def test_the_runner_follows_large_events_within_the_budget(store_factory: Any) -> None:
    store = await store_factory(page_max_bytes=BUDGET)
    consumer = Sizes()
    runner = ConsumerRunner(store, consumer, MemoryCheckpoint(), batch_size=3000)
    try:
        followed = await fill(store)
        await runner.start()
        assert await runner.wait_caught_up(WAIT)
        followed += await fill(store, rounds=1)  # live
        assert await runner.wait_for(followed[-1], WAIT)
        assert consumer.positions() == followed
        for positions, nbytes in consumer.batches:
            assert nbytes <= BUDGET or len(positions) == 1
        assert len(consumer.batches) > 4  # cut by bytes: the count would take all at once
        consumer.batches.clear()
        await runner.rebuild()
        assert consumer.positions() == followed
        for positions, nbytes in consumer.batches:
            assert nbytes <= BUDGET or len(positions) == 1
    finally:
        await runner.stop()
        await store.close()


async def test_pages_read_ahead_do_not_multiply_the_budget(store_factory: Any) -> None:
    """A slow consumer lets the feeder read ahead: what the runner holds (the batch in
    hand, the pages queued, the page the feeder waits to queue) stays about three
    budgets, whatever ``queue_pages`` says; with a queue of whole pages and batches
    joining them it held ``queue_pages`` + 2 of them."""
    writer = await store_factory()  # written by another store: read from the database
    for _ in range(12):
        await writer.append("big-1", [NewEvent("t.Big", {"b": "x" * 480_000})] * 2, ANY)
    await writer.close()
    store = await store_factory(page_max_bytes=BUDGET)
    head = await store.head_position()
    consumer = Sizes(pause=0.05)
    runner = ConsumerRunner(store, consumer, MemoryCheckpoint(), batch_size=3000, queue_pages=8)
    gc.collect()
    tracemalloc.start()
    try:
        await runner.start()
        assert await runner.wait_for(head, WAIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await runner.stop()
        await store.close()
    assert consumer.positions() == list(range(1, head + 1))
    assert all(nbytes <= BUDGET for _, nbytes in consumer.batches)
    assert peak < 3 * BUDGET + (1 << 20), peak  # the log is 11.5 MB


def record(i: int, name: str) -> ProducedRecord:
    schema = {
        "type": "struct",
        "fields": [
            {"field": "id", "type": "int64"},
            {"field": "name", "type": "string", "optional": True},
        ],
    }
    return ProducedRecord({"schema": schema, "payload": {"id": i, "name": name}}, format="json")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_sink_writes_a_log_of_large_records_whole(
    store_factory: Any, kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    target = Target(kind, target_url(kind, request, tmp_path))
    store = await store_factory(page_max_bytes=BUDGET)
    topic, table, name = f"t{uuid.uuid4().hex[:8]}", target.table(), target.sink_name()
    try:
        topics = await EventStoreTopics.open(store)
        expected: dict[int, int] = {}
        for b in range(6):
            await topics.append(topic, [record(b * 100 + i, "s") for i in range(100)])
            expected.update({b * 100 + i: 1 for i in range(100)})
            large = 1000 + b
            await topics.append(topic, [record(large, "y" * (500_000 + b * 80_000))])
            expected[large] = 500_000 + b * 80_000
        config = parse_config(
            {
                "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
                "connection.url": target.url,
                "topics": topic,
                "table.name.format": table,
                "auto.create": "true",
                "pk.mode": "record_value",
                "pk.fields": "id",
                "batch.size": "3000",
            }
        )
        consumer = SinkConsumer(name, config, TopicSource(config), DeadLetterStore(store))
        batches: list[int] = []
        real = consumer.handle

        async def handle(batch: Batch) -> None:
            batches.append(sum(e.size for e in batch.events) if len(batch.events) > 1 else 0)
            await real(batch)

        consumer.handle = handle  # type: ignore[method-assign]
        runner = ConsumerRunner(
            store, consumer, SinkCheckpoint(), batch_size=config.batch_size, retry_load=True
        )
        await runner.start()
        try:
            assert await runner.wait_for(await store.head_position(), WAIT)
        finally:
            await runner.stop()
            await consumer.close()
        rows = target.query(
            f"SELECT id, length(name) FROM {target.dialect.quote(table)} ORDER BY id"
        )
        assert {int(i): int(n) for i, n in rows} == expected
        assert max(batches) <= BUDGET
        assert len(batches) > 1
    finally:
        await store.close()
        target.close()
