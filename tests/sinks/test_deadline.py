"""The deadline of each call to the database (``db.call.timeout.ms``): the watchdog's
thread and its breaker, a deadline or an interrupt met while a connection is being made,
a statement slower than the deadline, and what a broken call leaves on the server."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from oddstream.sinks import FieldSchema, JdbcSink, RecordSchema, SinkRecord, parse_config
from oddstream.sinks.config import parse_connection_url
from oddstream.sinks.dialects import PostgresDialect, SqliteDialect
from oddstream.sinks.failures import NoAnswer, is_transient
from oddstream.sinks.watchdog import Watchdog

from .conftest import Target, target_url

pytestmark = pytest.mark.timeout(60)

SCHEMA = RecordSchema((FieldSchema("id", "int64"), FieldSchema("name", "string")))


def records(n: int, first: int = 0, name: str = "x") -> list[SinkRecord]:
    return [SinkRecord("t", {"id": i, "name": name}, SCHEMA) for i in range(first, first + n)]


def config(url: str, table: str, timeout_ms: int, **extra: str) -> Any:
    return parse_config(
        {
            "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
            "connection.url": url,
            "topics": "t",
            "table.name.format": table,
            "auto.create": "true",
            "db.call.timeout.ms": str(timeout_ms),
            **extra,
        }
    )


def test_a_call_armed_as_the_old_thread_leaves_is_still_watched() -> None:
    """A stop (the connection closed) and the next call's arm come close together: the
    thread that saw the stop has left its loop but is not dead yet. The new call must
    still be watched (the old check, ``is_alive()``, took that thread for a watcher)."""
    left = threading.Event()

    class Slow(Watchdog):
        def _watch(self) -> None:
            super()._watch()
            left.set()
            time.sleep(0.5)  # descheduled between leaving the loop and ending

    broken: list[float] = []
    watch = Slow("test", 0.1)
    watch.attach(lambda: broken.append(time.monotonic()))
    watch.arm()
    watch.stop()
    assert left.wait(2)
    armed = time.monotonic()
    watch.arm()
    time.sleep(0.4)  # past the deadline, before the old thread is gone
    assert watch.disarm() == "deadline"
    assert broken
    assert broken[0] - armed < 0.4
    watch.stop()


def test_an_interrupt_while_connecting_breaks_the_connection_once_made(tmp_path: Path) -> None:
    """A service stops while the sink is connecting: there is no socket yet to break.
    The interrupt must not be lost: once the connection is made the call raises
    ``NoAnswer`` (it went on and wrote its batch: on a server that does not answer, it
    would have hung for ever)."""
    connecting = threading.Event()

    class SlowToConnect(SqliteDialect):
        def connect(self, url: Any, timeout: float | None = None) -> Any:
            connecting.set()
            time.sleep(0.5)
            return super().connect(url, timeout)

    cfg = config(f"jdbc:sqlite:{tmp_path / 'target.db'}", "rows", 30_000)
    sink = JdbcSink("s", cfg, dialect=SlowToConnect(cfg.timezone))
    outcome: list[Any] = []

    def write() -> None:
        try:
            outcome.append(sink.write(records(3), after=0, position=1))
        except Exception as exc:
            outcome.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    assert connecting.wait(5)
    assert sink.interrupt()  # a call is in flight
    writer.join(10)
    assert not writer.is_alive()
    assert isinstance(outcome[0], NoAnswer), outcome
    assert "interrupted" in str(outcome[0])
    sink.close()
    check = JdbcSink("s", cfg)
    try:
        assert check.stored_position() is None  # nothing written
    finally:
        check.close()


def test_a_statement_slower_than_the_deadline_is_retried_never_half_written(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A legitimate statement longer than ``db.call.timeout.ms`` (a big batch's COPY):
    the sink is told ``NoAnswer`` naming the setting to raise (it would retry the same
    batch for ever), the database holds nothing of the batch, the position has not
    moved, and the same batch is written whole once the deadline is long enough."""
    url = target_url("postgres", request, tmp_path)
    target = Target("postgres", url)
    table, name = target.table(), target.sink_name()
    batch = records(40_000, first=1, name="x" * 4000)  # 160 MB to send
    try:
        short = JdbcSink(name, config(url, table, 100))
        try:
            short.write(records(1), after=0, position=1)  # the table made, one row in
            with pytest.raises(NoAnswer) as caught:
                short.write(batch, after=1, position=2)
        finally:
            short.close()
        assert "db.call.timeout.ms" in str(caught.value)
        assert is_transient(caught.value)
        assert target.count(table) == 1
        long = JdbcSink(name, config(url, table, 60_000))
        try:
            assert long.stored_position() == 1
            long.write(batch, after=1, position=2)
            assert long.stored_position() == 2
        finally:
            long.close()
        assert target.count(table) == 40_001
    finally:
        target.close()


def test_interrupting_sqlite_at_any_moment_leaves_rows_and_position_together(
    tmp_path: Path,
) -> None:
    """``sqlite3.Connection.interrupt()`` at a random moment of a batch (a statement, the
    commit, between two rows of ``executemany``, where SQLite forgets it): the batch is
    either all in with the position moved (the write answered), or not at all with the
    position where it was (``NoAnswer``); the file stays sound."""
    url = f"jdbc:sqlite:{tmp_path / 'target.db'}"
    cfg = config(url, "rows", 60_000)
    sink = JdbcSink("s", cfg)
    rng = random.Random(12)
    sink.write(records(1), after=0, position=1)  # the table made
    rows = position = 1
    outcomes = {"written": 0, "broken": 0}
    try:
        for _ in range(16):
            batch = records(20_000, first=rows)
            timer = threading.Timer(rng.uniform(0.0, 0.06), sink.interrupt)
            timer.start()
            try:
                sink.write(batch, after=position, position=position + 1)
            except NoAnswer:
                outcomes["broken"] += 1
            else:
                outcomes["written"] += 1
                rows += len(batch)
                position += 1
            timer.join()
            conn = sink.connection
            assert conn.execute('SELECT COUNT(*) FROM "rows"').fetchone() == (rows,)
            assert sink.stored_position() == position
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        sink.close()
    assert outcomes["broken"], outcomes
    assert outcomes["written"], outcomes


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_calls_broken_while_waiting_for_a_lock_leave_no_backend_behind(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """An analyst holds a lock on the sink's table: each try waits, meets the deadline
    and is broken. PostgreSQL does not notice a client gone while a backend waits for a
    lock, so each broken try left a backend queued (holding the offsets row, a
    connection slot) until the lock was released: one more for every retry. The
    server must end them by itself within the deadline; and the client keeps no
    descriptor of the broken connections."""
    url = target_url("postgres", request, tmp_path)
    target = Target("postgres", url)
    table, name, app = target.table(), target.sink_name(), f"deadline-{uuid.uuid4().hex[:8]}"
    sep = "&" if "?" in url else "?"
    cfg = config(f"{url}{sep}ApplicationName={app}", table, 300)
    sink = JdbcSink(name, cfg)
    holder = PostgresDialect().connect(parse_connection_url(url))  # not in autocommit
    try:
        sink.write(records(1), after=0, position=1)
        fds = _fds()
        holder.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')  # in a transaction
        failures = []
        for _ in range(6):
            try:
                sink.write(records(1, first=1), after=1, position=2)
            except Exception as exc:
                failures.append(exc)
        assert len(failures) == 6
        assert all(is_transient(f) for f in failures)
        assert _fds() <= fds  # the broken connections' sockets closed

        def backends() -> int:
            rows = target.query(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = \x00", (app,)
            )
            return int(rows[0][0])

        deadline = time.monotonic() + 5
        while backends() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert backends() == 0, "backends of broken calls still wait for the lock"
        holder.rollback()
        sink.write(records(1, first=1), after=1, position=2)
        assert target.count(table) == 2
    finally:
        holder.close()
        sink.close()
        target.close()
