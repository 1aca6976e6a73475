"""A target database of each kind for the sink tests: SQLite in a temporary file, the
local PostgreSQL and MariaDB (unique table names, dropped after each test); and what the
tests of sinks on the consumer runner share: a log in a temporary SQLite file, REST
Proxy records, a sink's settings, a sink consumer on its runner."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from oddstream.consumers import ConsumerRunner, SinkCheckpoint
from oddstream.eventstore.sqlite import SqliteEventStore
from oddstream.integrations.kafka.rest_proxy import ProducedRecord
from oddstream.integrations.kafka.sink_source import TopicSource
from oddstream.runtime.deadletters import DeadLetterStore
from oddstream.sinks import JdbcSinkConfig, SinkConsumer, parse_config
from oddstream.sinks.config import parse_connection_url
from oddstream.sinks.dialects import OFFSETS_TABLE, Dialect, dialect_for

TARGETS = ["sqlite", "postgres", "mariadb"]


class Target:
    """One target database: makes unique table and sink names, reads what was written,
    and drops it all afterwards."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.url = url
        self.dialect: Dialect = dialect_for(parse_connection_url(url))
        self.conn: Any = self.dialect.connect(parse_connection_url(url))
        self.tables: list[str] = []
        self.sinks: list[str] = []

    def table(self, prefix: str = "t") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.tables.append(name)
        return name

    def sink_name(self) -> str:
        name = f"sink-{uuid.uuid4().hex[:10]}"
        self.sinks.append(name)
        return name

    def config(self, topic: str, **settings: Any) -> JdbcSinkConfig:
        """A connector config for ``topic``; settings by Connect name (``pk_mode`` →
        ``pk.mode``) or as a dict under ``extra``."""
        extra = settings.pop("extra", {})
        config = {
            "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
            "connection.url": self.url,
            "topics": topic,
            **{k.replace("_", "."): v for k, v in settings.items()},
            **extra,
        }
        return parse_config(config)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.cursor()
        self.dialect.begin(self.conn)
        try:
            if params:
                cur.execute(self.dialect.p(sql), params)
            else:
                cur.execute(sql)
            return [tuple(row) for row in cur.fetchall()]
        finally:
            self.dialect.rollback(self.conn)

    def query_commit(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """Run one statement (``\x00`` for each parameter) and commit it."""
        cur = self.conn.cursor()
        self.dialect.begin(self.conn)
        try:
            cur.execute(self.dialect.p(sql), params)
            self.dialect.commit(self.conn)
        except BaseException:
            self.dialect.rollback(self.conn)
            raise

    def rows(self, table: str, order_by: str = "id") -> list[tuple[Any, ...]]:
        q = self.dialect.quote
        return self.query(f"SELECT * FROM {q(table)} ORDER BY {q(order_by)}")

    def table_exists(self, table: str) -> bool:
        try:
            self.count(table)
        except Exception:
            return False
        return True

    def count(self, table: str) -> int:
        return int(self.query(f"SELECT COUNT(*) FROM {self.dialect.quote(table)}")[0][0])

    def column_types(self, table: str) -> dict[str, str]:
        """Column name → declared type, upper case, as the database reports it."""
        if self.kind == "sqlite":
            rows = self.query("SELECT name, type FROM pragma_table_info(\x00)", (table,))
        elif self.kind == "postgres":
            rows = self.query(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = \x00",
                (table,),
            )
        else:
            rows = self.query(
                "SELECT column_name, column_type FROM information_schema.columns "
                "WHERE table_schema = DATABASE() AND table_name = \x00",
                (table,),
            )
        return {name: str(kind).upper() for name, kind in rows}

    def nullable(self, table: str) -> dict[str, bool]:
        if self.kind == "sqlite":
            rows = self.query('SELECT name, "notnull" = 0 FROM pragma_table_info(\x00)', (table,))
            return {name: bool(flag) for name, flag in rows}
        schema = "current_schema()" if self.kind == "postgres" else "DATABASE()"
        rows = self.query(
            "SELECT column_name, is_nullable FROM information_schema.columns "
            f"WHERE table_schema = {schema} AND table_name = \x00",
            (table,),
        )
        return {name: flag == "YES" for name, flag in rows}

    def primary_key(self, table: str) -> list[str]:
        if self.kind == "sqlite":
            rows = self.query("SELECT name, pk FROM pragma_table_info(\x00) WHERE pk > 0", (table,))
            return [name for name, _ in sorted(rows, key=lambda r: r[1])]
        schema = "current_schema()" if self.kind == "postgres" else "DATABASE()"
        rows = self.query(
            "SELECT k.column_name FROM information_schema.table_constraints c "
            "JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name "
            "AND k.table_schema = c.table_schema AND k.table_name = c.table_name "
            f"WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = {schema} "
            "AND c.table_name = \x00 ORDER BY k.ordinal_position",
            (table,),
        )
        return [r[0] for r in rows]

    def close(self) -> None:
        cur = self.conn.cursor()
        self.dialect.rollback(self.conn)
        for table in self.tables:
            self.dialect.begin(self.conn)
            cur.execute(f"DROP TABLE IF EXISTS {self.dialect.quote(table)}")
            self.dialect.commit(self.conn)
        if self.sinks:
            self.dialect.begin(self.conn)
            cur.execute(self.dialect.offsets_ddl())
            for name in self.sinks:
                cur.execute(
                    self.dialect.p(
                        f"DELETE FROM {self.dialect.quote(OFFSETS_TABLE)} WHERE "
                        f"{self.dialect.quote('name')} = {self.dialect.placeholder}"
                    ),
                    (name,),
                )
            self.dialect.commit(self.conn)
        self.conn.close()


def target_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"jdbc:sqlite:{tmp_path / 'analytics.db'}"
    if kind == "postgres":
        pg = request.getfixturevalue("pg_url")  # postgresql://user@host:port/db
        return (
            "jdbc:"
            + pg.replace("postgresql://postgres@", "postgresql://")
            + ("?user=postgres" if "postgres@" in pg else "")
        )
    return str(request.getfixturevalue("mariadb_url"))


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    t = Target(request.param, target_url(request.param, request, tmp_path))
    try:
        yield t
    finally:
        t.close()


# ----------------------------------------------------------- sinks on the runner

SCHEMA = {
    "type": "struct",
    "fields": [
        {"field": "id", "type": "int64"},
        {"field": "name", "type": "string", "optional": True},
    ],
}


def record(i: int, name: str = "x") -> ProducedRecord:
    return ProducedRecord({"schema": SCHEMA, "payload": {"id": i, "name": name}}, format="json")


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteEventStore]:
    """The log the sinks read: a SQLite event store in a temporary file."""
    s = await SqliteEventStore.open(tmp_path / "events.db")
    try:
        yield s
    finally:
        await s.close()


def settings(target: Target, topic: str, table: str, **extra: Any) -> dict[str, Any]:
    return {
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "connection.url": target.url,
        "topics": topic,
        "table.name.format": table,
        "auto.create": "true",
        "pk.mode": "record_value",
        "pk.fields": "id",
        "max.retries": "100",
        "retry.backoff.ms": "50",
        **extra,
    }


class Running:
    """A sink consumer on its runner, started and stopped by the test."""

    def __init__(self, store: Any, name: str, config: JdbcSinkConfig) -> None:
        self.consumer = SinkConsumer(name, config, TopicSource(config), DeadLetterStore(store))
        self.runner = ConsumerRunner(
            store,
            self.consumer,
            SinkCheckpoint(refuse_beyond_head=True),  # as the connector manager runs it
            batch_size=config.batch_size,
            retry_load=True,
            max_backoff=0.2,
        )

    async def __aenter__(self) -> Running:
        await self.runner.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.stop()
        await self.consumer.close()


def ids(target: Target, table: str) -> list[int]:
    return [int(r[0]) for r in target.query(f"SELECT id FROM {target.dialect.quote(table)}")]
