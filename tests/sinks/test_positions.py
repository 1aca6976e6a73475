"""Where a sink starts: a position its target holds that this log never reached is
refused (FAILED), not followed; a connector re-created, or given a new topic, says what
it will and will not write (docs/analytics.md, "The cursor")."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from oddstream.consumers import RunnerState
from oddstream.eventstore.sqlite import SqliteEventStore
from oddstream.integrations.kafka.rest_proxy import EventStoreTopics
from oddstream.integrations.kafka.sink_source import TopicSource
from oddstream.sinks import ConnectorManager, JdbcSink, parse_config
from oddstream.sinks.consumer import encode_cursor

from .conftest import Running, Target, eventually, ids, record, settings

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteEventStore]:
    s = await SqliteEventStore.open(tmp_path / "events.db")
    try:
        yield s
    finally:
        await s.close()


async def test_a_stored_position_beyond_the_logs_head_fails_the_sink(
    store: Any, target: Target
) -> None:
    """A target written from another log (a reused database) holds a position this log
    has not reached: the sink must say so (FAILED), not skip every event appended until
    the log gets there."""
    topic, table, name = f"t{uuid.uuid4().hex[:8]}", target.table(), target.sink_name()
    topics = await EventStoreTopics.open(store)
    await topics.append(topic, [record(i) for i in range(3)])
    head = await store.head_position()
    config = parse_config(settings(target, topic, table))
    with JdbcSink(name, config) as sink:  # the other log's sink got far
        sink.write([], after=0, position=encode_cursor(head + 500))
    async with Running(store, name, config) as run:
        await eventually(lambda: run.runner.state is RunnerState.FAILED, timeout=5)
        assert "beyond this log's head" in (run.runner.last_error or "")
        await topics.append(topic, [record(3)])
        assert run.runner.state is RunnerState.FAILED
    assert not target.table_exists(table)

    manager = ConnectorManager(store, lambda c: TopicSource(c))
    await manager.start()
    try:
        await manager.create(name, settings(target, topic, table))
        await eventually(lambda: _task_failed(manager, name), timeout=5)
        trace = (await manager.status(name)).to_json()["tasks"][0]["trace"]
        assert f"position {head + 500}, beyond" in trace
        # the remedy the message gives: the row removed, the log is written from 0
        target.query_commit(
            f"DELETE FROM {target.dialect.quote('oddstream_sink_offsets')} "
            f"WHERE {target.dialect.quote('name')} = \x00",
            (name,),
        )
        await manager.restart(name)
        await eventually(lambda: target.table_exists(table) and target.count(table) == 4)
    finally:
        await manager.stop()
    assert sorted(ids(target, table)) == [0, 1, 2, 3]


async def _task_failed(manager: ConnectorManager, name: str) -> bool:
    status = await manager.status(name)
    return bool(status.tasks) and status.tasks[0].state == "FAILED"


async def test_a_topic_added_or_a_connector_recreated_is_reported(
    store: Any, tmp_path: Path
) -> None:
    """One position for all of a connector's topics: a topic added by a config update is
    followed from where the sink stands (its earlier records not written), and a
    connector created again under a deleted one's name follows on from the position
    the target kept. Both are said in the status's warnings, which survive a restart."""
    target = Target("sqlite", f"jdbc:sqlite:{tmp_path / 'a.db'}")
    a, b = f"a{uuid.uuid4().hex[:8]}", f"b{uuid.uuid4().hex[:8]}"
    table, name = target.table(), target.sink_name()
    topics = await EventStoreTopics.open(store)
    await topics.append(b, [record(100), record(101)])
    await topics.append(a, [record(1), record(2)])
    config = {**settings(target, a, table), "insert.mode": "upsert"}
    manager = ConnectorManager(store, lambda c: TopicSource(c))
    await manager.start()
    try:
        await manager.create(name, config)
        await eventually(lambda: target.table_exists(table) and target.count(table) == 2)
        assert (await manager.status(name)).details["warnings"] == []
        await manager.update_config(name, {**config, "topics": f"{a},{b}"})
        await topics.append(b, [record(102)])
        await eventually(lambda: target.count(table) == 3)
        details = (await manager.status(name)).details
        (warning,) = details["warnings"]
        assert warning.startswith(f"topics added: {b}:")
        assert sorted(ids(target, table)) == [1, 2, 102]  # 100 and 101 were before

        position = details["position"]
        await manager.delete(name)
        await topics.append(a, [record(3)])  # while it is deleted
        await manager.create(name, config)
        await eventually(lambda: target.count(table) == 4)
        details = (await manager.status(name)).details
        assert details["started_from"] == position
        assert details["warnings"][0].startswith("created again after a delete")
    finally:
        await manager.stop()
    # the target kept (closing it drops its tables and offsets rows: only at the end)
    again = ConnectorManager(store, lambda c: TopicSource(c))
    await again.start()
    try:
        await again.pause(name)
        await again.resume(name)
        await eventually(lambda: _started(again, name))
        details = (await again.status(name)).details  # started from the kept position
        assert [w.split(":")[0] for w in details["warnings"]] == ["created again after a delete"]
        await again.update_config(name, {**config, "topics.regex": f"[ab]{a[1:]}", "topics": ""})
        warnings = (await again.status(name)).details["warnings"]
        assert "topics.regex is now" in warnings[-1]
    finally:
        await again.stop()
        target.close()


async def _started(manager: ConnectorManager, name: str) -> bool:
    details = (await manager.status(name)).details
    return details.get("state") in ("catching_up", "live") and details["started_from"] is not None


async def test_a_position_moved_beyond_the_head_while_running_fails_the_sink(
    store: Any, tmp_path: Path
) -> None:
    """Another writer (a sink of another log) moves the target past this log's head
    while the sink runs: its next write conflicts, and the sink FAILS instead of
    following on from there."""
    target = Target("sqlite", f"jdbc:sqlite:{tmp_path / 'a.db'}")
    topic, table, name = f"t{uuid.uuid4().hex[:8]}", target.table(), target.sink_name()
    topics = await EventStoreTopics.open(store)
    await topics.append(topic, [record(0)])
    config = parse_config(settings(target, topic, table))
    try:
        async with Running(store, name, config) as run:
            await eventually(lambda: target.table_exists(table) and target.count(table) == 1)
            far = encode_cursor(await store.head_position() + 1000)
            target.query_commit(
                "UPDATE oddstream_sink_offsets SET position = \x00 WHERE name = \x00",
                (far, name),
            )
            await topics.append(topic, [record(1)])
            await eventually(lambda: run.runner.state is RunnerState.FAILED, timeout=10)
            assert "beyond this log's head" in (run.runner.last_error or "")
        assert ids(target, table) == [0]
    finally:
        target.close()


async def test_a_connector_recreated_onto_a_fresh_target_is_not_said_to_follow_on(
    store: Any, tmp_path: Path
) -> None:
    """Review: the "created again after a delete: it follows on from the position its
    earlier life left" warning was given for every re-created connector, from its
    stream's history alone, also when the target it now writes holds no position for
    it (another database, or the row deleted as the warning's own remedy says): it
    then starts from the log's beginning, and the warning said the opposite."""
    first = Target("sqlite", f"jdbc:sqlite:{tmp_path / 'first.db'}")
    fresh = Target("sqlite", f"jdbc:sqlite:{tmp_path / 'fresh.db'}")
    topic, table, name = f"t{uuid.uuid4().hex[:8]}", first.table(), first.sink_name()
    topics = await EventStoreTopics.open(store)
    await topics.append(topic, [record(1), record(2)])
    manager = ConnectorManager(store, lambda c: TopicSource(c))
    await manager.start()
    try:
        await manager.create(name, settings(first, topic, table))
        await eventually(lambda: first.table_exists(table) and first.count(table) == 2)
        await manager.delete(name)
        await manager.create(name, settings(fresh, topic, table))
        await eventually(lambda: fresh.table_exists(table) and fresh.count(table) == 2)
        details = (await manager.status(name)).details
        assert details["started_from"] is None
        assert details["warnings"] == []
    finally:
        await manager.stop()
        first.close()
        fresh.close()
