"""A sink on the runner while its database server goes away under load and comes back:
a private PostgreSQL and MariaDB (``engines.py``; the shared servers are never stopped)
shut down cleanly or killed with SIGKILL mid-stream, records appended all the while.
The sink must go ``retrying`` with the driver's error, keep trying, resume by itself
when the server is back, and end with every record in the table exactly once (the
table has no key, so a record written twice would be two rows) and the offsets table's
cursor at the log's head; the outage must leak no connection."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from oddstream.consumers import RunnerState
from oddstream.integrations.kafka.rest_proxy import EventStoreTopics
from oddstream.sinks import FieldSchema, JdbcSink, RecordSchema, SinkRecord, parse_config
from oddstream.sinks.consumer import decode_cursor, encode_cursor
from oddstream.sinks.dialects import OFFSETS_TABLE, dialect_for
from oddstream.sinks.failures import NoAnswer
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
    """The module's server, running (a test that failed mid-outage left it down or
    frozen)."""
    engine.thaw()
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


def drop(server: Engine, table: str, name: str) -> None:
    """Drop the test's table and its sink's offsets row from the server."""
    target = Target(server.kind, server.url)
    target.tables.append(table)
    target.sinks.append(name)
    target.close()


def assert_each_record_once(
    server: Engine, table: str, name: str, sent: list[int], head: int
) -> None:
    """Every record sent is in ``table`` exactly once and the sink's cursor is the log's
    head; then the table and the offsets row are dropped."""
    target = Target(server.kind, server.url)
    target.tables.append(table)
    target.sinks.append(name)
    try:
        assert sorted(ids(target, table)) == sent
        assert stored_cursor(target, name) == [(encode_cursor(head),)]
    finally:
        target.close()


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

    assert_each_record_once(server, table, name, sent, head)


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
    assert_each_record_once(server, table, name, sent, head)


# ------------------------------------------------------------ a server that freezes

#: the sink's deadline in the freeze tests (``db.call.timeout.ms``), and how much later
#: than it the sink must have said so (the runner's back-off, a loaded machine)
DEADLINE_MS = 2000
SLACK = 8.0


async def test_a_frozen_server_is_noticed_within_the_deadline_and_ridden_out(
    store: Any, server: Engine
) -> None:
    """SIGSTOP of the server mid-stream: connections stay open, nothing answers. The
    sink must go ``retrying`` with "no answer … within 2 s" in a bounded time (the old
    sink stayed ``live``, its thread blocked for ever on the socket), keep retrying while
    frozen, and once thawed write every record exactly once."""
    check = Target(server.kind, server.url)
    topic, table, name = f"t{uuid.uuid4().hex[:8]}", check.table(), check.sink_name()
    check.conn.close()
    topics = await EventStoreTopics.open(store)
    sent: list[int] = []
    await append(topics, topic, sent, events=20)
    config = parse_config(
        unkeyed(check, topic, table, **{"batch.size": "200", "db.call.timeout.ms": "2000"})
    )
    enough = asyncio.Event()
    producer = asyncio.create_task(produce(topics, topic, sent, enough))
    try:
        async with Running(store, name, config) as run:
            try:
                await eventually(lambda: count(server, table) >= 500)
                await eventually(lambda: run.runner.state is RunnerState.LIVE)
                assert not producer.done(), "the records stopped coming"
                server.freeze()
                frozen_at, failures = time.monotonic(), run.runner.failures
                await eventually(
                    lambda: run.runner.state is RunnerState.RETRYING,
                    timeout=DEADLINE_MS / 1000 + SLACK,
                )
                noticed = time.monotonic() - frozen_at
                assert "no answer from the database within 2 s" in (run.runner.last_error or "")
                assert "NoAnswer" in (run.consumer.last_unavailable or "")
                assert noticed < DEADLINE_MS / 1000 + SLACK
                # frozen, it keeps trying (each try waits out the deadline), never gives up
                await eventually(lambda: run.runner.failures >= failures + 3, timeout=30)
                assert run.runner.state is RunnerState.RETRYING
                assert run.consumer.dead_lettered == 0
            finally:
                server.thaw()
            await eventually(lambda: len(sent) >= 3000, timeout=30)
            enough.set()
            async with asyncio.timeout(10):
                await producer
            await eventually(lambda: count(server, table) >= len(sent), timeout=30)
            await eventually(lambda: run.runner.state is RunnerState.LIVE, timeout=15)
            head = await store.head_position()
            assert run.consumer.cursor == (head, 0)
            assert run.consumer.dead_lettered == 0
    finally:
        producer.cancel()
    assert_each_record_once(server, table, name, sent, head)


async def test_a_commit_sent_to_a_frozen_server_is_not_written_twice(
    store: Any, server: Engine
) -> None:
    """The server freezes just as a batch's COMMIT is sent: it reaches the server, which
    carries it out when thawed, after the sink gave up on the answer. The batch given
    again must then be found written (the offsets row moved with it), not inserted
    twice."""
    check = Target(server.kind, server.url)
    topic, table, name = f"t{uuid.uuid4().hex[:8]}", check.table(), check.sink_name()
    check.conn.close()
    topics = await EventStoreTopics.open(store)
    sent: list[int] = []
    await append(topics, topic, sent, events=10)
    config = parse_config(
        unkeyed(check, topic, table, **{"batch.size": "100", "db.call.timeout.ms": "2000"})
    )
    base = type(dialect_for(config.connection, config.timezone))
    batches: list[int] = []

    class FreezesAtTheThirdCommit(base):  # type: ignore[valid-type,misc]
        saving = False

        def save_position(self, cur: Any, name: str, position: int, existed: bool) -> None:
            self.saving = True  # the next commit is a batch's
            super().save_position(cur, name, position, existed)

        def commit(self, conn: Any) -> None:
            if self.saving:
                self.saving = False
                batches.append(1)
                if len(batches) == 3:
                    server.freeze()  # the COMMIT goes out to a server that does not answer
            super().commit(conn)

    results: list[WriteResult] = []

    class Noting(JdbcSink):
        def write(self, records: Any, *, after: int, position: int) -> WriteResult:
            result = super().write(records, after=after, position=position)
            results.append(result)
            return result

    run = Running(store, name, config)
    run.consumer.sink = Noting(name, config, dialect=FreezesAtTheThirdCommit(config.timezone))
    async with run:
        try:
            await eventually(lambda: len(batches) >= 3, timeout=15)
            await eventually(
                lambda: run.runner.state is RunnerState.RETRYING,
                timeout=DEADLINE_MS / 1000 + SLACK,
            )
            assert "no answer from the database within 2 s" in (run.runner.last_error or "")
            assert len(results) == 2  # the third batch's answer never came
            written = run.consumer.cursor
        finally:
            server.thaw()
        await append(topics, topic, sent, events=5)
        await eventually(lambda: count(server, table) >= len(sent), timeout=30)
        await eventually(lambda: run.runner.state is RunnerState.LIVE, timeout=15)
        head = await store.head_position()
        assert run.consumer.cursor == (head, 0)
    # the third batch, given again from the cursor before it, was found committed
    again = [r for r in results[2:] if r.already_written]
    assert again, f"no batch found written after the freeze: {results}"
    assert decode_cursor(again[0].position) > written
    assert_each_record_once(server, table, name, sent, head)


async def test_a_sink_stops_promptly_while_its_server_is_frozen(store: Any, server: Engine) -> None:
    """The server freezes under a write and the service stops before the deadline
    (the default, two minutes): the runner's stop and the sink's close must return in a
    few seconds, and the sink's thread must let go (a thread blocked for ever on the
    socket would hold up the process's exit)."""
    check = Target(server.kind, server.url)
    topic, table, name = f"t{uuid.uuid4().hex[:8]}", check.table(), check.sink_name()
    check.conn.close()
    topics = await EventStoreTopics.open(store)
    sent: list[int] = []
    await append(topics, topic, sent, events=4)
    config = parse_config(unkeyed(check, topic, table, **{"batch.size": "100"}))
    assert config.call_timeout == 120
    run = Running(store, name, config)
    await run.runner.start()
    try:
        await eventually(lambda: count(server, table) >= len(sent), timeout=15)
        server.freeze()
        await append(topics, topic, sent, events=2)  # a write goes out, and hangs
        await asyncio.sleep(1.0)  # the runner hands it to the sink at once
        threads = [t for t in threading.enumerate() if t.name.startswith(f"sink-{name}"[:30])]
        assert threads, "the sink's thread is not there"
        assert all(t.daemon for t in threads)  # whatever happens, it holds up no exit
        started = time.monotonic()
        await run.runner.stop()
        await run.consumer.close()
        took = time.monotonic() - started
        assert took < 8, f"stopping took {took:.1f}s"
        # the thread let go of the call: nothing holds up an exit
        await asyncio.to_thread(lambda: [t.join(5) for t in threads])
        assert not any(t.is_alive() for t in threads), "the sink's thread is still blocked"
    finally:
        server.thaw()
        await run.runner.stop()
        await run.consumer.close()
    drop(server, table, name)


def test_a_deadline_met_while_connecting_still_bounds_the_rest_of_the_call(
    server: Engine,
) -> None:
    """The deadline passes while a connection is being made (a handshake answered
    late: there was no socket yet to break), then the server freezes. The rest of the
    call must still have a deadline: ``NoAnswer`` within it, not a thread blocked for
    ever on the socket (as PostgreSQL's was: psycopg has no read timeout)."""
    check = Target(server.kind, server.url)
    table, name = check.table(), check.sink_name()
    check.conn.close()
    config = parse_config(unkeyed(check, "t", table, **{"db.call.timeout.ms": "1000"}))
    base = type(dialect_for(config.connection, config.timezone))

    class LateHandshake(base):  # type: ignore[valid-type,misc]
        def connect(self, url: Any, timeout: float | None = None) -> Any:
            conn = super().connect(url, timeout)
            time.sleep(config.call_timeout + 0.3)  # answered after the deadline
            server.freeze()  # and from now on nothing answers
            return conn

    sink = JdbcSink(name, config, dialect=LateHandshake(config.timezone))
    schema = RecordSchema((FieldSchema("id", "int64"), FieldSchema("name", "string")))
    outcome: list[Any] = []

    def write() -> None:
        try:
            outcome.append(
                sink.write([SinkRecord("t", {"id": 1, "name": "x"}, schema)], after=0, position=1)
            )
        except Exception as exc:
            outcome.append(exc)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        writer.join(config.call_timeout + 0.3 + SLACK)
        assert not writer.is_alive(), "the call went on with no deadline"
        assert isinstance(outcome[0], NoAnswer), outcome
    finally:
        server.thaw()
        writer.join(10)
        sink.close()
    drop(server, table, name)
