"""Sinks on the consumer runner: a REST Proxy topic followed into SQLite, PostgreSQL and
MariaDB (catch-up, live, restart mid-way without loss or duplicates), poison records
dead-lettered or stopping the sink, an unreachable target waited for, and the connector
manager's lifecycle across a restart."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from oddstream.consumers import RunnerState
from oddstream.integrations.kafka.rest_proxy import EventStoreTopics, ProducedRecord
from oddstream.integrations.kafka.sink_source import TopicSource
from oddstream.runtime.deadletters import DeadLetterStore
from oddstream.sinks import (
    ConnectorManager,
    ConnectorNotFound,
    JdbcSink,
    parse_config,
)
from oddstream.sinks.config import JdbcSinkConfig, parse_connection_url
from oddstream.sinks.consumer import decode_cursor, encode_cursor
from oddstream.sinks.dialects import OFFSETS_TABLE

from .conftest import Running, Target, eventually, ids, record, settings, target_url

pytestmark = pytest.mark.timeout(120)


def test_cursor_orders_partial_events_between_whole_ones() -> None:
    assert encode_cursor(7) < encode_cursor(7, 1) < encode_cursor(7, 5) < encode_cursor(9)
    assert decode_cursor(encode_cursor(12, 3)) == (12, 3)
    with pytest.raises(ValueError, match="records written"):
        encode_cursor(1, 1 << 20)


async def test_catch_up_live_and_restart_mid_way(store: Any, target: Target) -> None:
    topic, table, name = f"t{uuid.uuid4().hex[:8]}", target.table(), target.sink_name()
    topics = await EventStoreTopics.open(store)
    for b in range(20):  # 1,000 records in 20 events, before the sink exists
        await topics.append(topic, [record(b * 50 + i) for i in range(50)])
    await topics.append("other", [record(1)])  # another topic: not followed
    config = parse_config(settings(target, topic, table, **{"batch.size": "100"}))

    async with Running(store, name, config) as run:
        await eventually(lambda: target.table_exists(table) and target.count(table) >= 200)
    # stopped mid-way through the catch-up (or just after it): a new runner resumes
    async with Running(store, name, config) as run:
        await eventually(lambda: target.count(table) == 1000)
        assert await run.runner.wait_caught_up(10)
        await topics.append(topic, [record(1000 + i) for i in range(30)])  # live
        await eventually(lambda: target.count(table) == 1030)
        assert run.runner.state is RunnerState.LIVE
    await topics.append(topic, [record(2000 + i) for i in range(5)])  # while stopped
    async with Running(store, name, config) as run:
        await eventually(lambda: target.count(table) == 1035)
        assert run.runner.state is not RunnerState.FAILED
        assert run.consumer.cursor[1] == 0
    assert sorted(ids(target, table)) == [*range(1030), *range(2000, 2005)]


async def test_poison_records_are_dead_lettered_and_the_rest_written(
    store: Any, target: Target
) -> None:
    topic, table, name = f"t{uuid.uuid4().hex[:8]}", target.table(), target.sink_name()
    dlq = f"dlq-{uuid.uuid4().hex[:8]}"
    topics = await EventStoreTopics.open(store)
    # one event: 1..10, a duplicate key (an insert's constraint violation), 11..15
    await topics.append(
        topic,
        [*(record(i) for i in range(1, 11)), record(5, "dup"), *(record(i) for i in range(11, 16))],
    )
    # one record with no schema (binary), then good ones
    await topics.append(topic, [ProducedRecord("aGk=", format="binary"), record(16)])
    config = parse_config(
        settings(
            target,
            topic,
            table,
            **{"errors.tolerance": "all", "errors.deadletterqueue.topic.name": dlq},
        )
    )
    async with Running(store, name, config) as run:
        await eventually(lambda: target.table_exists(table) and target.count(table) == 16)
        assert await run.runner.wait_caught_up(10)
        assert run.consumer.dead_lettered == 2
    assert sorted(ids(target, table)) == list(range(1, 17))
    letters = await DeadLetterStore(store).letters(dlq)
    by_reason = {x.reason: x for x in letters}
    assert set(by_reason) == {"constraint_violation", "no_schema"}
    dup = by_reason["constraint_violation"]
    assert orjson.loads(dup.letter.payload)["value"]["payload"] == {"id": 5, "name": "dup"}
    assert dup.letter.context["offset"] == "10"
    assert dup.letter.context["connector"] == name
    # the target holds the whole log's position: a restart writes and letters nothing
    async with Running(store, name, config) as run:
        assert await run.runner.wait_caught_up(10)
        assert run.consumer.dead_lettered == 0
    assert len(await DeadLetterStore(store).letters(dlq)) == 2


async def test_tolerance_none_stops_the_sink_with_a_trace(store: Any, target: Target) -> None:
    topic, table, name = f"t{uuid.uuid4().hex[:8]}", target.table(), target.sink_name()
    topics = await EventStoreTopics.open(store)
    await topics.append(topic, [record(1), record(2), record(3), record(2, "dup"), record(4)])
    config = parse_config(settings(target, topic, table))
    async with Running(store, name, config) as run:
        await eventually(lambda: run.runner.state is RunnerState.FAILED)
        trace = run.consumer.failure_trace or ""
        assert "offset=3" in trace
        assert "constraint_violation" in trace
        assert "Traceback" in trace
        assert "constraint_violation" in (run.runner.status().last_error or "")
    # the records before the poison are written, the poison and after are not
    assert sorted(ids(target, table)) == [1, 2, 3]


class Gate:
    """A TCP port that refuses connections until opened, then forwards to ``to``."""

    def __init__(self, to: tuple[str, int]) -> None:
        self.to = to
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.close()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            r2, w2 = await asyncio.open_connection(*self.to)
            for coro in (pipe(reader, w2), pipe(r2, writer)):
                task = asyncio.create_task(coro)
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

        self.server = await asyncio.start_server(serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()


async def test_unreachable_target_is_retried_then_written(
    store: Any, target: Target, tmp_path: Path
) -> None:
    topic, table, name = f"t{uuid.uuid4().hex[:8]}", target.table(), target.sink_name()
    topics = await EventStoreTopics.open(store)
    await topics.append(topic, [record(i) for i in range(10)])
    gate: Gate | None = None
    if target.kind == "sqlite":  # a file in a directory not there yet: cannot be opened
        missing = tmp_path / "later"
        url = f"jdbc:sqlite:{missing / 'analytics.db'}"
    else:
        default = 5432 if target.kind == "postgres" else 3306
        parsed = parse_connection_url(target.url)
        gate = Gate((parsed.host or "127.0.0.1", parsed.port or default))
        url = target.url.replace(f":{parsed.port or default}/", f":{gate.port}/")
        assert url != target.url
    config = parse_config({**settings(target, topic, table), "connection.url": url})
    try:
        async with Running(store, name, config) as run:
            await eventually(lambda: run.runner.state is RunnerState.RETRYING)
            await eventually(lambda: run.runner.failures >= 2)
            assert "TargetUnavailable" in (run.runner.last_error or "")
            assert run.consumer.last_unavailable
            if gate is None:
                missing.mkdir()
            else:
                await gate.open()
            await eventually(lambda: run.runner.state is RunnerState.LIVE)
            await topics.append(topic, [record(i) for i in range(10, 15)])
            if target.kind == "sqlite":
                check = Target("sqlite", url)
                try:
                    await eventually(lambda: check.count(table) == 15)
                finally:
                    check.conn.close()
            else:
                await eventually(lambda: target.count(table) == 15)
                assert sorted(ids(target, table)) == list(range(15))
    finally:
        if gate is not None:
            await gate.close()


async def test_manager_lifecycle_and_persistence(store: Any, target: Target) -> None:
    topic, table, name = f"t{uuid.uuid4().hex[:8]}", target.table(), target.sink_name()
    topics = await EventStoreTopics.open(store)
    await topics.append(topic, [record(i) for i in range(5)])

    def source_for(config: JdbcSinkConfig) -> TopicSource:
        return TopicSource(config)

    manager = ConnectorManager(store, source_for, runner_options={"max_backoff": 0.2})
    await manager.start()
    config = {
        **settings(target, topic, table),
        "connection.password": "s3cret",
        "made.up.setting": "kept",
    }
    if target.kind != "sqlite":
        config.pop("connection.password")  # the servers' test users have none
    try:
        info = await manager.create(name, config)
        assert any("made.up.setting" in line for line in info.report)
        assert info.to_json()["tasks"] == [{"connector": name, "task": 0}]
        if "connection.password" in config:
            assert manager.config(name)["connection.password"] == "[hidden]"
        assert manager.list() == [name]
        await eventually(lambda: target.table_exists(table) and target.count(table) == 5)
        status = await manager.status(name)
        assert status.to_json()["connector"]["state"] == "RUNNING"
        assert status.tasks[0].state == "RUNNING"

        await manager.pause(name)
        assert (await manager.status(name)).state == "PAUSED"
        await topics.append(topic, [record(i) for i in range(5, 8)])
        await asyncio.sleep(0.3)
        assert target.count(table) == 5  # paused: nothing written
        await manager.resume(name)
        await eventually(lambda: target.count(table) == 8)

        # a poison record with tolerance none: the task FAILED with its trace, the
        # connector RUNNING (as Connect reports it)
        await topics.append(topic, [record(3, "dup"), record(8)])
        await eventually(lambda: _task_state(manager, name, "FAILED"))
        failed = (await manager.status(name)).to_json()
        assert failed["connector"]["state"] == "RUNNING"
        assert "constraint_violation" in failed["tasks"][0]["trace"]
        # fixed by configuration: tolerate errors; a config sent back with the hidden
        # password keeps the stored one
        new_config = {
            **manager.config(name),
            "errors.tolerance": "all",
            "errors.deadletterqueue.topic.name": f"dlq-{name}",
        }
        _, created = await manager.update_config(name, new_config)
        assert not created
        await eventually(lambda: target.count(table) == 9)
        assert (await manager.status(name)).tasks[0].state == "RUNNING"
        if "connection.password" in config:
            stored = [e async for e in store.scan_stream(f"connector-{name}")]
            assert stored[-1].data["config"]["connection.password"] == "s3cret"

        await manager.pause(name)
    finally:
        await manager.stop()

    # a new manager (a restart of the service): the connector, paused, comes back
    again = ConnectorManager(store, source_for, runner_options={"max_backoff": 0.2})
    await again.start()
    try:
        assert again.list() == [name]
        assert (await again.status(name)).state == "PAUSED"
        assert again.config(name)["errors.tolerance"] == "all"
        await again.resume(name)
        await topics.append(topic, [record(20)])
        await eventually(lambda: target.count(table) == 10)
        await again.restart(name)
        assert (await again.status(name)).state in ("RUNNING", "UNASSIGNED")
        await again.delete(name)
        with pytest.raises(ConnectorNotFound):
            await again.status(name)
    finally:
        await again.stop()
    third = ConnectorManager(store, source_for)
    await third.start()
    try:
        assert third.list() == []
    finally:
        await third.stop()
    assert sorted(ids(target, table)) == [*range(9), 20]


async def _task_state(manager: ConnectorManager, name: str, state: str) -> bool:
    status = await manager.status(name)
    return bool(status.tasks) and status.tasks[0].state == state


async def _halt_then_change_topics(
    store: Any,
    target: Target,
    first: list[tuple[str, list[ProducedRecord]]],
    before: str,
    after: str,
) -> tuple[str, list[int]]:
    """Append ``first`` (topic, records) events, run a sink on topics ``before`` until it
    FAILED on a duplicate key, then run it again on topics ``after`` with
    ``errors.tolerance=all``; answers the table and the ids written."""
    table, name = target.table(), target.sink_name()
    topics = await EventStoreTopics.open(store)
    for topic, records in first:
        await topics.append(topic, records)
    base = {**settings(target, before, table), "table.name.format": table}
    async with Running(store, name, parse_config(base)) as run:
        await eventually(lambda: run.runner.state is RunnerState.FAILED)
        assert run.consumer.cursor[1] == 2  # two records of the event written
    fixed = {
        **base,
        "topics": after,
        "errors.tolerance": "all",
        "errors.deadletterqueue.topic.name": f"dlq-{name}",
    }
    async with Running(store, name, parse_config(fixed)) as run:
        assert await run.runner.wait_caught_up(10)
        assert run.runner.state is RunnerState.LIVE
    return table, sorted(ids(target, table))


async def test_a_topic_dropped_after_a_partial_event_loses_no_record_of_the_others(
    store: Any, target: Target
) -> None:
    """The cursor's ``k`` counts records of one event: dropping that event's topic must
    not make it skip the first ``k`` records of another topic's next event."""
    a, b = f"a{uuid.uuid4().hex[:8]}", f"b{uuid.uuid4().hex[:8]}"
    _, written = await _halt_then_change_topics(
        store,
        target,
        [(a, [record(1), record(2), record(1, "dup"), record(3)]), (b, [record(10), record(11)])],
        before=f"{a},{b}",
        after=b,
    )
    assert written == [1, 2, 10, 11]


async def test_a_topic_added_after_a_partial_event_neither_skips_nor_repeats(
    store: Any, target: Target
) -> None:
    """A topic added while the sink stands inside an event: the new topic's earlier
    events are before the position (not taken, as for any event before it), and the
    partial event goes on after its ``k`` records."""
    a, b = f"a{uuid.uuid4().hex[:8]}", f"b{uuid.uuid4().hex[:8]}"
    _, written = await _halt_then_change_topics(
        store,
        target,
        [
            (b, [record(10), record(11), record(12)]),
            (a, [record(1), record(2), record(1, "d"), record(3)]),
        ],
        before=a,
        after=f"{a},{b}",
    )
    assert written == [1, 2, 3]


async def test_a_read_only_transaction_on_mariadb_is_waited_out_not_dead_lettered(
    store: Any, mariadb_url: str
) -> None:
    """MariaDB refusing writes in a read-only transaction (1792: an operator's
    ``transaction_read_only``) while reads go on is the server's state, not the record's:
    the probe's read succeeds, yet the record must not be dead-lettered."""
    target = Target("mariadb", mariadb_url)
    try:
        topic, table, name = f"t{uuid.uuid4().hex[:8]}", target.table(), target.sink_name()
        topics = await EventStoreTopics.open(store)
        await topics.append(topic, [record(1)])
        config = parse_config(
            settings(
                target,
                topic,
                table,
                **{"errors.tolerance": "all", "errors.deadletterqueue.topic.name": f"d-{name}"},
            )
        )

        class ReadOnlyAtFirst(JdbcSink):
            opened = 0

            def open(self) -> None:
                if self._conn is not None:
                    return
                super().open()
                ReadOnlyAtFirst.opened += 1
                if ReadOnlyAtFirst.opened == 1:  # the first session only
                    self._conn.cursor().execute("SET SESSION TRANSACTION READ ONLY")

        run = Running(store, name, config)
        run.consumer.sink = ReadOnlyAtFirst(name, config)
        async with run:
            await eventually(lambda: target.table_exists(table) and target.count(table) == 1)
            assert run.consumer.dead_lettered == 0
            assert run.runner.failures >= 1  # it was retried
        assert await DeadLetterStore(store).letters(f"d-{name}") == []
    finally:
        target.close()


async def test_a_record_failing_because_another_writer_moved_the_cursor_is_not_poison(
    store: Any, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Two writers of one sink on a fresh PostgreSQL target (a late write of a stopped
    runner's thread, a second instance): both find no offsets row, the second's INSERT
    of it fails with a unique violation once the first commits. That is not the
    record's fault: the sink must follow the other writer, not dead-letter the record."""
    target = Target("postgres", target_url("postgres", request, tmp_path))
    other = target.dialect.connect(parse_connection_url(target.url))
    watch = target.dialect.connect(parse_connection_url(target.url))
    try:
        topic, table, name = f"t{uuid.uuid4().hex[:8]}", target.table(), target.sink_name()
        topics = await EventStoreTopics.open(store)
        await topics.append(topic, [record(1)])
        head = await store.head_position()
        dlq = f"d-{name}"
        config = parse_config(
            settings(
                target,
                topic,
                table,
                **{"errors.tolerance": "all", "errors.deadletterqueue.topic.name": dlq},
            )
        )
        q = target.dialect.quote
        cur = other.cursor()
        cur.execute(target.dialect.offsets_ddl())
        other.commit()
        # the other writer's transaction: its offsets row, not committed yet
        cur.execute(
            f"INSERT INTO {q(OFFSETS_TABLE)} ({q('name')}, {q('position')}) VALUES (%s, %s)",
            (name, encode_cursor(head)),
        )
        (other_pid,) = cur.execute("SELECT pg_backend_pid()").fetchone()

        def blocked() -> bool:
            row = (
                watch.cursor()
                .execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                    (other_pid,),
                )
                .fetchone()
            )
            watch.rollback()
            return bool(row and row[0])

        async with Running(store, name, config) as run:
            await eventually(blocked)  # the sink's INSERT of its offsets row waits
            other.commit()
            assert await run.runner.wait_caught_up(10)
            assert run.consumer.cursor == (head, 0)
            assert run.consumer.dead_lettered == 0
            assert run.runner.state is RunnerState.LIVE
        assert await DeadLetterStore(store).letters(dlq) == []
    finally:
        other.close()
        watch.close()
        target.close()


async def test_writes_hold_at_most_batch_size_records(store: Any, tmp_path: Path) -> None:
    """A page of the log is ``batch.size`` events, each of many records: the sink writes
    them ``batch.size`` records a transaction, not the page's records at once."""
    target = Target("sqlite", f"jdbc:sqlite:{tmp_path / 'a.db'}")
    try:
        topic, table, name = f"t{uuid.uuid4().hex[:8]}", target.table(), target.sink_name()
        topics = await EventStoreTopics.open(store)
        for e in range(6):
            await topics.append(topic, [record(e * 40 + i) for i in range(40)])
        config = parse_config(settings(target, topic, table, **{"batch.size": "25"}))
        sizes: list[int] = []

        class Counting(JdbcSink):
            def write(self, records: Any, *, after: int, position: int) -> Any:
                sizes.append(len(records))
                return super().write(records, after=after, position=position)

        run = Running(store, name, config)
        run.consumer.sink = Counting(name, config)
        async with run:
            await eventually(lambda: target.table_exists(table) and target.count(table) == 240)
        assert sorted(ids(target, table)) == list(range(240))
        assert max(sizes) <= 25
    finally:
        target.close()


async def test_every_cursor_counts_the_records_written_or_dead_lettered(
    store: Any, tmp_path: Path
) -> None:
    """Events split across batches, refused records and a record found by bisecting:
    each cursor written (``P << 20 | k``) names exactly the records handled so far —
    those of the events up to ``P`` and the first ``k`` of the next."""
    target = Target("sqlite", f"jdbc:sqlite:{tmp_path / 'a.db'}")
    try:
        topic, table, name = f"t{uuid.uuid4().hex[:8]}", target.table(), target.sink_name()
        topics = await EventStoreTopics.open(store)
        binary = ProducedRecord("aGk=", format="binary")  # refused by the source
        await topics.append(topic, [record(i) for i in range(7)])
        await topics.append(topic, [binary])
        await topics.append(topic, [record(7), record(3, "dup"), record(8), record(9)])
        await topics.append(topic, [record(10), binary, binary])
        await topics.append(topic, [record(i) for i in range(11, 20)])
        config = parse_config(
            settings(target, topic, table, **{"batch.size": "4", "errors.tolerance": "all"})
        )
        counts: dict[int, int] = {}  # log position -> records in the event
        for event in await store.read_stream(f"topic-{topic}"):
            counts[event.position] = len(event.data["values"])
        writes: list[tuple[int, int, int]] = []  # (after, position, records handled)
        written = 0

        run = Running(store, name, config)
        consumer = run.consumer

        class Recording(JdbcSink):
            def write(self, records: Any, *, after: int, position: int) -> Any:
                nonlocal written
                result = super().write(records, after=after, position=position)
                written += len(records)
                # a record is dead-lettered before the records after it are written
                writes.append((after, position, written + consumer.dead_lettered))
                return result

        run.consumer.sink = Recording(name, config)
        async with run:
            await eventually(lambda: bool(writes) and writes[-1][2] == 24)
            assert await run.runner.wait_caught_up(10)
        assert consumer.dead_lettered == 4  # three binaries and the duplicate key
        assert sorted(ids(target, table)) == list(range(20))
        letters = await DeadLetterStore(store).letters("sinks")
        offsets = sorted(int(x.letter.context["offset"]) for x in letters)
        assert offsets == [7, 9, 13, 14]
        previous = 0
        for after, position, handled in writes:
            assert after == previous  # one chain of cursors, each from the last
            previous = position
            p, k = decode_cursor(position)
            assert k == 0 or p + 1 in counts  # a part of an event: one of the topic's
            assert sum(n for at, n in counts.items() if at <= p) + k == handled
        assert any(decode_cursor(w[1])[1] for w in writes)  # events were split
        # past the topic's last event (and the dead letters' events after it)
        last, done = decode_cursor(writes[-1][1])
        assert done == 0
        assert last >= max(counts)
    finally:
        target.close()
