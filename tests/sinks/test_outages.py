"""A sink on the runner while its database server goes away under load and comes back:
a private PostgreSQL and MariaDB (``engines.py``; the shared servers are never stopped)
shut down cleanly or killed with SIGKILL mid-stream, records appended all the while.
The sink must go ``retrying`` with the driver's error, keep trying, resume by itself
when the server is back, and end with every record in the table exactly once (the
table has no key, so a record written twice would be two rows) and the offsets table's
cursor at the log's head; the outage must leak no connection."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from oddstream.consumers import RunnerState
from oddstream.integrations.kafka.rest_proxy import EventStoreTopics
from oddstream.sinks import JdbcSink, parse_config
from oddstream.sinks.consumer import decode_cursor, encode_cursor
from oddstream.sinks.dialects import OFFSETS_TABLE
from oddstream.sinks.writer import WriteResult

from .conftest import Running, Target, eventually, ids, record, settings
from .engines import Engine, private_engine

pytestmark = pytest.mark.timeout(120)

#: records per event of the log (a REST Proxy batch)
PER_EVENT = 50
#: outages in a row in one test, and the most events its producer appends
ROUNDS = 3
MOST_EVENTS = 1000


@pytest.fixture(scope="module", params=["postgres", "mariadb"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """One private server per kind for the module, removed at its end."""
    with private_engine(request.param) as e:
        yield e


@pytest.fixture
def server(engine: Engine) -> Engine:
    """The module's server, running (a test that failed mid-outage left it down)."""
    engine.start()
    return engine


async def append(topics: EventStoreTopics, topic: str, sent: list[int], events: int) -> None:
    """Append ``events`` events of :data:`PER_EVENT` records with the next ids, noting
    the ids in ``sent``; a pause between events, so that they keep coming for a while."""
    for _ in range(events):
        first = len(sent)
        batch = list(range(first, first + PER_EVENT))
        await topics.append(topic, [record(i) for i in batch])
        sent.extend(batch)
        await asyncio.sleep(0.02)


def unkeyed(target: Target, topic: str, table: str, **extra: str) -> dict[str, Any]:
    """A sink's settings with no key: a record written twice would be two rows."""
    config = settings(target, topic, table, **{"pk.mode": "none", "max.retries": "10000", **extra})
    del config["pk.fields"]
    return config


def stored_cursor(target: Target, name: str) -> list[tuple[Any, ...]]:
    """The offsets table's row of sink ``name``: ``[(cursor,)]``."""
    q = target.dialect.quote
    return target.query(
        f"SELECT {q('position')} FROM {q(OFFSETS_TABLE)} WHERE {q('name')} = \x00", (name,)
    )


def count(server: Engine, table: str) -> int:
    """Rows in ``table`` now; 0 while it or the server is not there."""
    try:
        return int(server.query(f"SELECT COUNT(*) FROM {table}")[0][0])
    except Exception:
        return 0


async def produce(
    topics: EventStoreTopics, topic: str, sent: list[int], until: asyncio.Event
) -> None:
    """Append events (as :func:`append`) until ``until`` is set, at most
    :data:`MOST_EVENTS`."""
    for _ in range(MOST_EVENTS):
        if until.is_set():
            return
        await append(topics, topic, sent, events=1)


@pytest.mark.parametrize("outage", ["shutdown", "crash"])
async def test_a_sink_under_load_rides_out_its_server_going_down(
    store: Any, server: Engine, outage: str
) -> None:
    check = Target(server.kind, server.url)
    topic, table, name = f"t{uuid.uuid4().hex[:8]}", check.table(), check.sink_name()
    check.conn.close()  # the server goes away: a connection of its own for each check
    topics = await EventStoreTopics.open(store)
    sent: list[int] = []
    await append(topics, topic, sent, events=20)  # 1,000 records before the sink starts
    config = parse_config(unkeyed(check, topic, table, **{"batch.size": "200"}))
    enough = asyncio.Event()
    producer = asyncio.create_task(produce(topics, topic, sent, enough))
    try:
        async with Running(store, name, config) as run:
            for _ in range(ROUNDS):
                # the sink writing, records coming: the server goes away mid-stream
                written = count(server, table)
                await eventually(lambda w=written: count(server, table) >= w + 500)
                assert not producer.done(), "the records stopped coming"
                await asyncio.to_thread(server.stop if outage == "shutdown" else server.kill)
                down_at, failures = len(sent), run.runner.failures

                await eventually(lambda: run.runner.state is RunnerState.RETRYING, timeout=15)
                assert "TargetUnavailable" in (run.runner.last_error or "")
                assert run.consumer.last_unavailable
                # it keeps trying while the server is down, and the records keep coming
                await eventually(lambda f=failures: run.runner.failures >= f + 3, timeout=15)
                assert run.runner.state is RunnerState.RETRYING
                assert len(sent) > down_at

                await asyncio.to_thread(server.start)
            await eventually(lambda: len(sent) >= 5000, timeout=30)
            enough.set()
            async with asyncio.timeout(10):
                await producer
            # every record appended, before, during and after the outages: written once
            await eventually(lambda: count(server, table) >= len(sent), timeout=30)
            await eventually(lambda: run.runner.state is RunnerState.LIVE, timeout=15)
            head = await store.head_position()
            assert run.consumer.cursor == (head, 0)
            assert run.consumer.dead_lettered == 0
            # the sink's one connection: none left behind by the connections that broke
            await eventually(lambda: server.connections() == 1, timeout=10)
        await eventually(lambda: server.connections() == 0, timeout=10)
    finally:
        producer.cancel()

    target = Target(server.kind, server.url)
    target.tables.append(table)
    target.sinks.append(name)
    try:
        assert sorted(ids(target, table)) == sent
        assert stored_cursor(target, name) == [(encode_cursor(head),)]
    finally:
        target.close()


async def test_a_commit_whose_answer_the_crash_lost_is_not_written_again(
    store: Any, server: Engine
) -> None:
    """The server commits a batch and is killed before the sink hears back: the sink
    sees a lost connection and does not know the batch is in. Given again once the
    server is back, the batch must be found written, not inserted twice."""
    check = Target(server.kind, server.url)
    topic, table, name = f"t{uuid.uuid4().hex[:8]}", check.table(), check.sink_name()
    check.conn.close()
    topics = await EventStoreTopics.open(store)
    sent: list[int] = []
    await append(topics, topic, sent, events=10)
    config = parse_config(unkeyed(check, topic, table, **{"batch.size": "100"}))
    committed: list[int] = []

    class AnswerLostInACrash(JdbcSink):
        def write(self, records: Any, *, after: int, position: int) -> WriteResult:
            result = super().write(records, after=after, position=position)
            committed.append(result.position)
            if len(committed) == 3:  # committed: now the server crashes
                server.kill()
                self.connection.cursor().execute("SELECT 1")  # the driver's own error
                raise AssertionError("a connection outlived its server")
            return result

    run = Running(store, name, config)
    run.consumer.sink = AnswerLostInACrash(name, config)
    async with run:
        await eventually(lambda: run.runner.state is RunnerState.RETRYING, timeout=15)
        assert "TargetUnavailable" in (run.runner.last_error or "")
        # the sink holds the cursor before the batch the server committed
        assert run.consumer.cursor < decode_cursor(committed[2])
        await append(topics, topic, sent, events=5)  # more while it is down
        await asyncio.to_thread(server.start)
        await eventually(lambda: count(server, table) >= len(sent), timeout=30)
        await eventually(lambda: run.runner.state is RunnerState.LIVE, timeout=15)
        head = await store.head_position()
        assert run.consumer.cursor == (head, 0)
    target = Target(server.kind, server.url)
    target.tables.append(table)
    target.sinks.append(name)
    try:
        assert sorted(ids(target, table)) == sent
        assert stored_cursor(target, name) == [(encode_cursor(head),)]
    finally:
        target.close()
