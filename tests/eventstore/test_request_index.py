"""The PostgreSQL request index (issue 9 review): built CONCURRENTLY by one node when a
store opens an existing log without it, never failing or deadlocking concurrent opens,
and rebuilt when a failed build left it invalid."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from oddstream.eventstore import ANY, NewEvent
from oddstream.eventstore.postgres import PostgresEventStore

pytestmark = pytest.mark.postgres


def _index_state(url: str, schema: str) -> list[tuple[bool]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = 'events_request' AND c.relnamespace = %s::regnamespace",
            [schema],
        ).fetchall()


async def _log_without_index(url: str, schema: str) -> PostgresEventStore:
    store = await PostgresEventStore.open(url, schema=schema)
    events = [NewEvent("x", {}, metadata={"request_id": f"r{n}"}) for n in range(200)]
    for stream in range(20):
        await store.append(f"s-{stream}", events, ANY)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP INDEX "{schema}".events_request')
    return store


async def test_concurrent_opens_build_the_index_once_while_appends_go_on(
    pg_url: str, pg_schema: str
) -> None:
    first = await _log_without_index(pg_url, pg_schema)
    stop = asyncio.Event()
    appended = 0

    async def append() -> None:
        nonlocal appended
        while not stop.is_set():
            await first.append("busy", [NewEvent("x", {})], ANY)
            appended += 1

    writer = asyncio.create_task(append())
    try:
        others = await asyncio.gather(
            *(PostgresEventStore.open(pg_url, schema=pg_schema) for _ in range(4))
        )
    finally:
        stop.set()
        await writer
    try:
        built = [await store.request_index_ready() for store in others]
        assert built.count(True) >= 1  # one built it; the others found it being built
        assert _index_state(pg_url, pg_schema) == [(True,)]
        found = await others[0].read_requests("s-3", ["r5", "r7", "nope"])
        assert [e.metadata["request_id"] for e in found] == ["r5", "r7"]
        assert appended > 0
    finally:
        for store in (first, *others):
            await store.close()


async def test_an_invalid_index_is_rebuilt(pg_url: str, pg_schema: str) -> None:
    store = await PostgresEventStore.open(pg_url, schema=pg_schema)
    await store.request_index_ready()
    await store.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:  # as a failed build leaves it
        conn.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass",
            [f'"{pg_schema}".events_request'],
        )
    assert _index_state(pg_url, pg_schema) == [(False,)]
    store = await PostgresEventStore.open(pg_url, schema=pg_schema)
    assert await store.request_index_ready()
    await store.close()
    assert _index_state(pg_url, pg_schema) == [(True,)]


async def test_a_long_transaction_elsewhere_does_not_hold_the_open(
    pg_url: str, pg_schema: str
) -> None:
    """CREATE INDEX CONCURRENTLY waits for every snapshot in the database (a pg_dump's,
    say): the store opens and serves meanwhile, and the build finishes after."""
    first = await _log_without_index(pg_url, pg_schema)
    await first.close()
    with psycopg.connect(pg_url) as blocker:
        blocker.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        blocker.execute("SELECT 1 FROM pg_class LIMIT 1")  # holds a snapshot
        async with asyncio.timeout(10):
            store = await PostgresEventStore.open(pg_url, schema=pg_schema)
            found = await store.read_requests("s-2", ["r3"])  # served without the index
        assert [e.metadata["request_id"] for e in found] == ["r3"]
        assert _index_state(pg_url, pg_schema) in ([], [(False,)])  # still waiting
        blocker.rollback()
    try:
        async with asyncio.timeout(30):
            assert await store.request_index_ready()
        assert _index_state(pg_url, pg_schema) == [(True,)]
    finally:
        await store.close()


async def test_a_build_that_fails_is_logged_not_fatal(
    pg_url: str, pg_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = await _log_without_index(pg_url, pg_schema)
    await first.close()
    with psycopg.connect(pg_url) as blocker:
        blocker.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        blocker.execute("SELECT 1 FROM pg_class LIMIT 1")
        store = await PostgresEventStore.open(pg_url, schema=pg_schema)
        with psycopg.connect(pg_url, autocommit=True) as admin:  # cancel the build
            async with asyncio.timeout(10):
                while not admin.execute(  # noqa: ASYNC110 - polls the server, not an event
                    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'CREATE INDEX CONCURRENTLY%%events_request%%' "
                    "AND pid <> pg_backend_pid()"
                ).fetchall():
                    await asyncio.sleep(0.05)
        blocker.rollback()
    try:
        assert not await store.request_index_ready()
        assert "was not built" in caplog.text
        await store.append("after", [NewEvent("x", {})], ANY)  # the store serves on
    finally:
        await store.close()
    again = await PostgresEventStore.open(pg_url, schema=pg_schema)  # a later open builds it
    try:
        assert await again.request_index_ready()
        assert _index_state(pg_url, pg_schema) == [(True,)]
    finally:
        await again.close()
