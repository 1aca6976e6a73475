"""Shared fixtures: service discovery and event stores for every adapter.

A test that needs a service asks for its fixture. When the service is unreachable the
test skips with a one-line reason, or fails when ``ODDSTREAM_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import psycopg
import pymysql
import pytest
import redis

from oddstream.eventstore import EventStore
from oddstream.eventstore.postgres import PostgresEventStore
from oddstream.eventstore.sqlite import SqliteEventStore
from oddstream.sinks.config import parse_connection_url

PG_URL = os.environ.get("ODDSTREAM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get(
    "ODDSTREAM_TEST_MARIADB_URL", "jdbc:mariadb://127.0.0.1:3306/test?user=root"
)
REDIS_URL = os.environ.get("ODDSTREAM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE = os.environ.get("ODDSTREAM_REQUIRE_SERVICES") == "1"


def need_service(name: str, reason: str) -> None:
    """Skip (or fail, when services are required) because ``name`` is unreachable."""
    message = f"{name} unreachable: {reason}"
    if REQUIRE:
        pytest.fail(f"{message} (ODDSTREAM_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis (keys under a per-test prefix; never FLUSHALL: tests share it)."""
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        need_service("Redis", str(exc).strip().splitlines()[0])
    return REDIS_URL


@pytest.fixture(scope="session")
def pg_url() -> str:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        need_service("PostgreSQL", str(exc).strip().splitlines()[0])
    return PG_URL


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    """The test MariaDB, as a JDBC URL (tables under unique names: other tests share it)."""
    url = parse_connection_url(MARIADB_URL)
    try:
        conn = pymysql.connect(
            host=url.host,
            port=url.port or 3306,
            user=url.user or "root",
            password=url.password or "",
            database=url.database,
            connect_timeout=3,
        )
        conn.close()
    except pymysql.MySQLError as exc:
        need_service("MariaDB", str(exc).strip().splitlines()[0])
    return MARIADB_URL


@pytest.fixture
def pg_schema(pg_url: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL schema, dropped after the test."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


#: "sqlite-thread" is the embedded store as ``oddstream serve`` opens it (commits on a
#: thread of their own); "sqlite" commits on the event loop (the library default).
BACKENDS = ["sqlite", "sqlite-thread", "postgres"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store_factory(backend: str, tmp_path, request: pytest.FixtureRequest):
    """Open (possibly several) stores on one fresh database of the current backend."""
    if backend == "postgres":
        schema = request.getfixturevalue("pg_schema")
        url = request.getfixturevalue("pg_url")

        async def open_pg(**kw) -> EventStore:
            return await PostgresEventStore.open(url, schema=schema, **kw)

        return open_pg

    path = tmp_path / "events.db"
    threaded = backend == "sqlite-thread"

    async def open_sqlite(**kw) -> EventStore:
        return await SqliteEventStore.open(path, commit_thread=threaded, **kw)

    return open_sqlite


@pytest.fixture
async def store(store_factory) -> AsyncIterator[EventStore]:
    s = await store_factory()
    try:
        yield s
    finally:
        await s.close()
