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
from oddstream.sinks import parse_config
from oddstream.sinks.consumer import encode_cursor
from oddstream.sinks.dialects import OFFSETS_TABLE

from .conftest import Running, Target, eventually, ids, record, settings
from .engines import Engine, private_engine

pytestmark = pytest.mark.timeout(120)

#: records per event of the log (a REST Proxy batch)
PER_EVENT = 50


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


def count(server: Engine, table: str) -> int:
    """Rows in ``table`` now; 0 while it or the server is not there."""
    try:
        return int(server.query(f"SELECT COUNT(*) FROM {table}")[0][0])
    except Exception:
        return 0


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
    config = settings(
        check,
        topic,
        table,
        **{"batch.size": "200", "pk.mode": "none", "max.retries": "10000"},
    )
    del config["pk.fields"]  # no key: a record written twice would be two rows
    producer = asyncio.create_task(append(topics, topic, sent, events=80))  # 4,000 more
    try:
        async with Running(store, name, parse_config(config)) as run:
            await eventually(lambda: count(server, table) >= 1500)
            assert not producer.done(), "the records stopped coming before the outage"
            await asyncio.to_thread(server.stop if outage == "shutdown" else server.kill)
            down_at = len(sent)

            await eventually(lambda: run.runner.state is RunnerState.RETRYING, timeout=15)
            assert "TargetUnavailable" in (run.runner.last_error or "")
            assert run.consumer.last_unavailable
            failures = run.runner.failures
            # it keeps trying while the server is down, and the records keep coming
            await eventually(lambda: run.runner.failures >= failures + 3, timeout=15)
            assert run.runner.state is RunnerState.RETRYING
            assert len(sent) > down_at

            await asyncio.to_thread(server.start)
            async with asyncio.timeout(30):
                await producer
            # every record appended, before, during and after the outage: written once
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
        written = ids(target, table)
        assert len(written) == len(sent) == 5000
        assert sorted(written) == sent
        q = target.dialect.quote
        stored = target.query(
            f"SELECT {q('position')} FROM {q(OFFSETS_TABLE)} WHERE {q('name')} = \x00", (name,)
        )
        assert stored == [(encode_cursor(head),)]
    finally:
        target.close()
