"""The quote tables run as a sink on the consumer runner (``QuoteSource`` and
``QuoteTablesSink``), on SQLite, PostgreSQL and MariaDB: the sample's journeys logged
with their times, followed with a cache of two quotes, written exactly as the unbounded
mapping writes them straight through ``JdbcSink``; writes that fail (before the commit,
and after it with the answer lost) retried with the records of the first mapping; a
restart mid-stream rebuilding only the quotes it meets; the "active products" answers
equal; and the connector class through the manager."""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from oddstream.consumers import ConsumerRunner, SinkCheckpoint
from oddstream.domain.quotes.stored import stream_of
from oddstream.eventstore import NewEvent, RecordedEvent
from oddstream.eventstore.sqlite import SqliteEventStore
from oddstream.runtime.deadletters import DeadLetterStore
from oddstream.sinks import ConnectorManager, JdbcSink, SinkConfigError
from oddstream.sinks.quote_tables import (
    ACTIVE_PRODUCTS_AT,
    ACTIVE_PRODUCTS_OVER_TIME,
    MAX_ACTIVE_PRODUCTS,
    QUOTE_ITEM_HISTORY,
    QUOTES,
    LoggedQuoteEvent,
    QuoteTables,
    time_parameter,
)
from oddstream.sinks.quote_tables.connector import (
    QUOTE_TABLES_CLASS,
    parse_quote_tables_config,
    quote_tables_plugin,
)
from oddstream.sinks.quote_tables.source import QuoteSource, QuoteTablesSink

from .conftest import Target, eventually
from .test_quote_tables import (
    MODEL,
    SAMPLE,
    SAMPLE_ACTIVE_AT_1030,
    SAMPLE_AT,
    SAMPLE_FIRST_QUOTES,
    SAMPLE_MAX_ACTIVE,
    QuoteTarget,
    as_time,
    model_over_time,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@contextlib.asynccontextmanager
async def opened(path: Path) -> AsyncIterator[SqliteEventStore]:
    store = await SqliteEventStore.open(path, synchronous="NORMAL")
    try:
        yield store
    finally:
        await store.close()


async def log_events(path: Path, events: Sequence[LoggedQuoteEvent]) -> None:
    """Append the sample's events to their quotes' streams, an unrelated event between
    some (the log has other streams), then give each the sample's recorded time (the
    store stamps its own clock; the sample's times make the answers the docs give). The
    store is closed meanwhile: an open one keeps the events it wrote last in memory."""
    times: list[tuple[int, int]] = []
    async with opened(path) as store:
        for n, event in enumerate(events):
            if n % 7 == 3:
                await store.append(f"other-{n}", [NewEvent("other.Thing", {"n": n})])
            result = await store.append(
                stream_of(event.data["quote_id"]),
                [NewEvent(event.type, dict(event.data), schema_version=event.schema_version)],
            )
            times.append((int(event.recorded_at.timestamp() * 1_000_000), result.last_position))
    db = sqlite3.connect(path)
    with db:
        db.executemany("UPDATE events SET recorded_us = ? WHERE position = ?", times)
    db.close()


async def logged(store: SqliteEventStore) -> list[RecordedEvent]:
    return [e async for e in store.scan_all(0)]


def quote_config(qt: QuoteTarget, **extra: str) -> Any:
    return parse_quote_tables_config(
        {
            "connector.class": QUOTE_TABLES_CLASS,
            "connection.url": qt.target.url,
            "table.name.format": qt.format,
            "batch.size": "23",
            "max.retries": "1000",
            "retry.backoff.ms": "10",
            **extra,
        }
    )


class Flaky:
    """The sink's writer, failing some writes as an unreachable target does: before
    the transaction (``before``: nothing written) or after its commit, the answer lost
    (``after``)."""

    def __init__(self, sink: JdbcSink, before: set[int], after: set[int]) -> None:
        self.sink = sink
        self.before, self.after = before, after
        self.calls = 0

    def write(self, records: Any, *, after: int, position: int) -> Any:
        self.calls += 1
        if self.calls in self.before:
            raise ConnectionResetError("connection reset before the commit")
        result = self.sink.write(records, after=after, position=position)
        if self.calls in self.after:
            raise ConnectionResetError("connection reset after the commit")
        return result

    def stored_position(self) -> int | None:
        return self.sink.stored_position()

    def close(self) -> None:
        self.sink.close()


class Running:
    """A quote tables sink on its runner."""

    def __init__(
        self,
        store: SqliteEventStore,
        qt: QuoteTarget,
        name: str,
        max_quotes: int = 2,
        flaky: tuple[set[int], set[int]] | None = None,
    ) -> None:
        config = quote_config(qt)
        self.source = QuoteSource(store, max_quotes=max_quotes)
        options: dict[str, Any] = {}
        if flaky is not None:
            options["sink"] = Flaky(JdbcSink(name, config), *flaky)
        self.consumer = QuoteTablesSink(
            name, config, self.source, DeadLetterStore(store), **options
        )
        self.store = store
        self.runner = ConsumerRunner(
            store,
            self.consumer,
            SinkCheckpoint(),
            batch_size=config.batch_size,
            retry_load=True,
            max_backoff=0.05,
        )

    async def __aenter__(self) -> Running:
        await self.runner.start()
        return self

    async def caught_up(self) -> None:
        head = await self.store.head_position()
        await eventually(
            lambda: (
                self.runner.status().position >= head and self.runner.status().state.value == "live"
            ),
            timeout=60,
        )

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.stop()
        await self.consumer.close()


def reference(qt: QuoteTarget, events: Sequence[RecordedEvent]) -> None:
    """The unbounded mapping of the logged events written straight through the sink."""
    with qt.sink() as sink:
        qt.write_all(sink, QuoteTables(), events)


def answers(qt: QuoteTarget) -> dict[str, Any]:
    """The "active products" answers over the tables."""
    intervals = [i for quote in MODEL.values() for i in quote]
    instants = {i.valid_from for i in intervals} | {i.valid_to for i in intervals if i.valid_to}
    return {
        "at": {
            at: sorted((q, int(n)) for q, n in qt.query(ACTIVE_PRODUCTS_AT, time_parameter(at)))
            for at in sorted(instants | {SAMPLE_AT})
        },
        "over_time": {(q, as_time(at)): int(n) for q, at, n in qt.query(ACTIVE_PRODUCTS_OVER_TIME)},
        "most": {q: int(n) for q, n in qt.query(MAX_ACTIVE_PRODUCTS)},
    }


def check_docs_answers(found: dict[str, Any]) -> None:
    at_1030 = dict(found["at"][SAMPLE_AT])
    assert dict(sorted(Counter(at_1030.values()).items())) == SAMPLE_ACTIVE_AT_1030
    assert dict(sorted(Counter(found["most"].values()).items())) == SAMPLE_MAX_ACTIVE
    assert {q: (at_1030[q], found["most"][q]) for q in SAMPLE_FIRST_QUOTES} == SAMPLE_FIRST_QUOTES
    assert found["over_time"] == model_over_time()


async def test_a_cache_of_two_quotes_writes_what_the_unbounded_mapping_writes(
    log_file: Path, target: Target
) -> None:
    await log_events(log_file, SAMPLE)
    direct, running = QuoteTarget(target), QuoteTarget(target)
    # writes 3 and 9 fail before their commit, 5 and 12 after it (the answer lost)
    async with (
        opened(log_file) as store,
        Running(store, running, target.sink_name(), flaky=({3, 9}, {5, 12})) as run,
    ):
        reference(direct, await logged(store))
        await run.caught_up()
        source = run.source
        status = run.runner.status()
        # the four failures seen, and recovered from (each batch given again)
        assert (status.failures, status.state.value, status.last_error) == (4, "live", None)
        assert source.tables.quote_count <= 2
        assert source.tables.evicted > 0  # the cache was small
        assert source.rebuilds > 50
        assert source.pending == 0  # every record kept for a retry dropped once written
    assert running.dump() == direct.dump()
    assert target.count(running.names[QUOTES]) == 50
    assert target.count(running.names[QUOTE_ITEM_HISTORY]) == sum(len(i) for i in MODEL.values())
    found = answers(running)
    assert found == answers(direct)
    check_docs_answers(found)


@pytest.mark.parametrize("max_quotes", [2, 10_000])
async def test_a_restart_mid_stream_rebuilds_only_the_quotes_it_meets(
    log_file: Path, target: Target, max_quotes: int
) -> None:
    half = len(SAMPLE) // 2
    await log_events(log_file, SAMPLE[:half])
    running, direct = QuoteTarget(target), QuoteTarget(target)
    name = target.sink_name()
    async with opened(log_file) as store, Running(store, running, name, max_quotes) as first:
        await first.caught_up()
        stopped_at = (await logged(store))[-1].position
    await log_events(log_file, SAMPLE[half:])  # while the sink is stopped
    async with opened(log_file) as store, Running(store, running, name, max_quotes) as second:
        await second.caught_up()
        source = second.source
        events = await logged(store)
    reference(direct, events)
    assert running.dump() == direct.dump()
    found = answers(running)
    assert found == answers(direct)
    check_docs_answers(found)
    if max_quotes >= 50:
        # nothing replayed at the restart: each quote met after it is rebuilt once, from
        # its own events before the restart
        after = [e for e in events if e.position > stopped_at and e.type.startswith("quotes.")]
        met = {e.data["quote_id"] for e in after}
        before = Counter(
            e.data["quote_id"]
            for e in events
            if e.position <= stopped_at and e.data.get("quote_id") in met
        )
        assert source.rebuilds == len(met)
        assert source.rebuilt_events == sum(before.values())
        assert source.rebuilt_events < half


async def test_stored_events_the_code_cannot_read_are_dead_lettered_and_the_rest_flows_on(
    log_file: Path, target: Target
) -> None:
    """Stored quote events of a shape this code cannot read (a newer version stored
    another way, a mistyped field, a quote id that is not the event's, an event in
    another quote's stream) each go to the dead letters, never stalling the sink; a
    rebuild passes over them as the sink did, so the tables are those of the others."""
    half = len(SAMPLE) // 2
    await log_events(log_file, SAMPLE[:half])
    first = SAMPLE[0].data["quote_id"]
    other = next(e.data["quote_id"] for e in SAMPLE if e.data["quote_id"] != first)
    update = next(e for e in SAMPLE if e.type.endswith("Updated") and e.data["quote_id"] == other)
    bad = [
        ("quotes.QuoteProductsUpdated", 99, {"quote_id": first, "products": []}),
        ("quotes.QuoteProductsUpdated", 1, {"quote_id": first}),
        ("quotes.QuoteProductsUpdated", 1, {"quote_id": first, "data_json": 5}),
        ("quotes.QuoteProductsUpdated", 1, {**update.data, "quote_id": first}),  # under first
        ("quotes.QuoteProductsUpdated", 1, dict(update.data)),  # quote other's, in first's
    ]
    refused: set[int] = set()
    async with opened(log_file) as store:
        for kind, version, data in bad:
            result = await store.append(
                stream_of(first), [NewEvent(kind, data, schema_version=version)]
            )
            refused.add(result.last_position)
    await log_events(log_file, SAMPLE[half:])
    running, direct = QuoteTarget(target), QuoteTarget(target)
    async with opened(log_file) as store:
        events = await logged(store)
        reference(direct, [e for e in events if e.position not in refused])
        config = quote_config(running, **{"errors.tolerance": "all"})
        source = QuoteSource(store, max_quotes=1)
        dead_letters = DeadLetterStore(store)
        consumer = QuoteTablesSink(target.sink_name(), config, source, dead_letters)
        runner = ConsumerRunner(
            store, consumer, SinkCheckpoint(), batch_size=config.batch_size, max_backoff=0.05
        )
        await runner.start()
        try:
            head = await store.head_position()
            await eventually(lambda: runner.status().position >= head, timeout=20)
            status = runner.status()
        finally:
            await runner.stop()
            await consumer.close()
    assert (status.failures, status.last_error) == (0, None)
    assert consumer.dead_lettered == len(bad)
    assert running.dump() == direct.dump()


async def test_the_connector_class_through_the_manager(log_file: Path, target: Target) -> None:
    await log_events(log_file, SAMPLE)
    async with opened(log_file) as store:
        await run_the_connector_class(store, target)


async def run_the_connector_class(store: SqliteEventStore, target: Target) -> None:
    running, direct = QuoteTarget(target), QuoteTarget(target)
    reference(direct, await logged(store))
    manager = ConnectorManager(
        store,
        lambda config: pytest.fail("no topic source for the quote tables"),
        plugins=[quote_tables_plugin(store)],
        runner_options={"max_backoff": 0.05},
    )
    await manager.start()
    name = target.sink_name()
    try:
        config = {
            "connector.class": QUOTE_TABLES_CLASS,
            "connection.url": target.url,
            "table.name.format": running.format,
            "quote.tables.max.quotes": "3",
        }
        info = await manager.create(name, config)
        assert (info.config, info.report) == (config, [])
        head = await store.head_position()

        async def written() -> bool:
            status = await manager.status(name)
            return status.details.get("position", 0) >= head

        await eventually(written, timeout=60)
        status = (await manager.status(name)).to_json(details=True)
        assert status["tasks"][0]["state"] == "RUNNING"
        assert status["details"]["rows_written"] > 0
        # the setting's way: ensure keeps a config that says the same, adds to it else
        assert await manager.ensure(name, {"connection.url": target.url}) == "kept"
        assert await manager.ensure(name, {"quote.tables.max.quotes": "5"}) == "updated"
        assert manager.config(name)["quote.tables.max.quotes"] == "5"
        with pytest.raises(SinkConfigError) as refused:
            await manager.create(f"{name}-x", {**config, "insert.mode": "insert"})
        assert [p.setting for p in refused.value.problems] == ["insert.mode"]
    finally:
        await manager.stop()
    assert running.dump() == direct.dump()


def test_the_connector_config_fixes_what_the_tables_need() -> None:
    url = "jdbc:sqlite:analytics.db"
    parsed = parse_quote_tables_config(
        {"connector.class": QUOTE_TABLES_CLASS, "connection.url": url}
    )
    assert parsed.connector_class == QUOTE_TABLES_CLASS
    assert (parsed.insert_mode, parsed.pk_mode, parsed.db_timezone) == (
        "upsert",
        "record_key",
        "UTC",
    )
    assert (parsed.auto_create, parsed.auto_evolve) == (True, True)
    assert parsed.topics == ("quotes", "quote_items", "quote_item_history")
    assert parsed.redacted() == {"connector.class": QUOTE_TABLES_CLASS, "connection.url": url}
    with pytest.raises(SinkConfigError) as refused:
        parse_quote_tables_config(
            {
                "connector.class": QUOTE_TABLES_CLASS,
                "connection.url": url,
                "topics": "other",
                "pk.mode": "record_value",
                "db.timezone": "Europe/London",
                "pk.fields": "id",
                "quote.tables.release": "email,businessType",
                "quote.tables.max.quotes": "0",
            }
        )
    assert sorted(p.setting for p in refused.value.problems) == sorted(
        [
            "topics",
            "pk.mode",
            "db.timezone",
            "pk.fields",
            "quote.tables.release",
            "quote.tables.max.quotes",
        ]
    )
