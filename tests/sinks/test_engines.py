"""MariaDB tables of an engine without transactions (MyISAM) cannot hold a batch's rows
and the sink's position together: the sink refuses them (FAILED), it does not write."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from oddstream.consumers import RunnerState
from oddstream.eventstore.sqlite import SqliteEventStore
from oddstream.integrations.kafka.rest_proxy import EventStoreTopics
from oddstream.sinks import JdbcSink, NotTransactional, parse_config
from oddstream.sinks.config import parse_connection_url
from oddstream.sinks.schema import SinkRecord, from_connect_json

from .conftest import Running, Target, eventually, record, settings

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteEventStore]:
    s = await SqliteEventStore.open(tmp_path / "events.db")
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def mariadb(mariadb_url: str) -> Iterator[Target]:
    t = Target("mariadb", mariadb_url)
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def scratch_db(mariadb_url: str) -> Iterator[str]:
    """A database of its own (its offsets table is changed), as a JDBC URL."""
    url = parse_connection_url(mariadb_url)
    name = f"sinkrisks_{uuid.uuid4().hex[:10]}"
    conn = pymysql.connect(
        host=url.host,
        port=url.port or 3306,
        user=url.user or "root",
        password=url.password or "",
        autocommit=True,
    )
    conn.cursor().execute(f"CREATE DATABASE `{name}`")
    try:
        yield mariadb_url.rsplit("/", 1)[0] + "/" + name
    finally:
        conn.cursor().execute(f"DROP DATABASE `{name}`")
        conn.close()


async def test_a_myisam_target_table_fails_the_sink_whatever_the_tolerance(
    store: Any, mariadb: Target
) -> None:
    topic, table, name = f"t{uuid.uuid4().hex[:8]}", mariadb.table(), mariadb.sink_name()
    mariadb.query_commit(
        f"CREATE TABLE `{table}` (id BIGINT NOT NULL PRIMARY KEY, name TEXT) ENGINE=MyISAM"
    )
    topics = await EventStoreTopics.open(store)
    await topics.append(topic, [record(i) for i in range(3)])
    config = parse_config(
        settings(
            mariadb,
            topic,
            table,
            **{"errors.tolerance": "all", "errors.deadletterqueue.topic.name": f"dlq-{name}"},
        )
    )
    async with Running(store, name, config) as run:
        await eventually(lambda: run.runner.state is RunnerState.FAILED, timeout=10)
        assert "MyISAM, an engine without transactions" in (run.runner.last_error or "")
        assert run.consumer.dead_lettered == 0
    assert mariadb.count(table) == 0


async def test_created_tables_are_innodb_even_when_the_default_engine_is_not(
    mariadb: Target,
) -> None:
    topic, table, name = "t", mariadb.table(), mariadb.sink_name()
    config = parse_config(settings(mariadb, topic, table))
    with JdbcSink(name, config) as sink:
        sink.connection.cursor().execute("SET SESSION default_storage_engine = MyISAM")
        schema = from_connect_json(record(0).value["schema"])
        sink.write([SinkRecord(topic, {"id": 1, "name": "a"}, schema)], after=0, position=1)
    engine = mariadb.query(
        "SELECT engine FROM information_schema.tables WHERE table_schema = DATABASE() "
        "AND table_name = \x00",
        (table,),
    )
    assert engine == [("InnoDB",)]


def test_a_myisam_offsets_table_is_refused(scratch_db: str) -> None:
    target = Target("mariadb", scratch_db)
    try:
        target.query_commit(
            "CREATE TABLE oddstream_sink_offsets (name VARBINARY(255) NOT NULL PRIMARY KEY, "
            "position BIGINT NOT NULL) ENGINE=MyISAM"
        )
        config = parse_config(settings(target, "t", target.table()))
        sink = JdbcSink("s", config)
        with pytest.raises(NotTransactional, match="oddstream_sink_offsets"):
            sink.stored_position()
    finally:
        target.close()
