"""What happens when things go wrong: bad values, a database that refuses one append of
a group, lost connections, a stuck lock, races with close()."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sqlite3
import uuid

import psycopg
import pytest

from oddstream.eventstore import (
    ANY,
    NO_STREAM,
    AppendResult,
    EventStore,
    InvalidEvent,
    NewEvent,
    ReadFilter,
    StoreConfigError,
    StoreUnavailable,
    StreamAppend,
    WrongExpectedVersion,
    open_store,
)
from oddstream.eventstore.postgres import PostgresEventStore, _lock_key


@pytest.mark.parametrize(
    "event",
    [
        NewEvent("T", {"s": "nul\x00inside"}),
        NewEvent("T", {"deep": [{"k": "\x00"}]}),
        NewEvent("T", {}, {"m": "\x00"}),
        NewEvent("T", {}, schema_version=2**31),
        NewEvent("T", {}, schema_version=2**63),
        NewEvent("T", {}, schema_version=1.0),  # type: ignore[arg-type]
        NewEvent("T\ud800", {}),
        NewEvent(["T"], {}),  # type: ignore[arg-type]
        NewEvent("T", {"s": "\ud800"}),
    ],
)
async def test_values_one_database_would_refuse_are_invalid_everywhere(
    store: EventStore, event: NewEvent
) -> None:
    good = store.append("good-1", [NewEvent("T", {"ok": True})])
    bad = store.append("bad-1", [NewEvent("T", {}), event])
    outcomes = await asyncio.gather(good, bad, return_exceptions=True)
    assert not isinstance(outcomes[0], BaseException)
    assert isinstance(outcomes[1], InvalidEvent)
    assert await store.stream_version("bad-1") == 0


async def test_a_literal_backslash_u0000_is_fine(store: EventStore) -> None:
    await store.append("s-1", [NewEvent("T", {"text": "\\u0000 is how JSON writes NUL"})])
    (got,) = await store.read_stream("s-1")
    assert got.data["text"].startswith("\\u0000")


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.read_all(after=2**63),
        lambda s: s.read_all(limit=2**63),
        lambda s: s.read_stream("s-1", from_version=2**63),
        lambda s: s.save_checkpoint("p", 2**63),
        lambda s: s.read_all(types=[["x"]]),
        lambda s: s.get_checkpoint("a\ud800"),
        lambda s: s.append("s-1", [NewEvent("T", {})], 2**63),
        lambda s: s.read_all(after=1.5),
    ],
)
async def test_out_of_range_arguments_are_invalid(store: EventStore, call) -> None:
    with pytest.raises(InvalidEvent):
        await call(store)


@pytest.mark.parametrize(
    ("url", "options", "problem"),
    [
        ("mysql://u@h/db", {}, "unsupported event store URL scheme 'mysql'"),
        ("sqlite://", {}, "names no file"),
        ("sqlite:///x.db", {"synchronous": "OFTEN"}, "synchronous must be one of"),
        ("sqlite:///x.db", {"synchronous": 1}, "synchronous must be one of"),
        ("postgresql://u@127.0.0.1:1/db", {"schema": "Bad-Name"}, "schema 'Bad-Name'"),
        ("postgresql://u@127.0.0.1:1/db", {"schema": "x" * 49}, "≤ 48 chars"),
    ],
)
async def test_bad_store_configuration_is_a_config_error_not_an_invalid_event(
    tmp_path, monkeypatch: pytest.MonkeyPatch, url: str, options: dict, problem: str
) -> None:
    """A URL or option the store cannot use is refused before anything is opened, as a
    configuration error (a ValueError), not as an event that failed validation."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreConfigError, match=problem) as refused:
        await open_store(url, **options)
    assert not isinstance(refused.value, InvalidEvent)
    assert isinstance(refused.value, ValueError)
    assert list(tmp_path.iterdir()) == []  # no SQLite file was created


def test_a_bad_schema_name_is_refused_before_any_connection() -> None:
    with pytest.raises(StoreConfigError, match="lower-case"):
        PostgresEventStore("postgresql://u@127.0.0.1:1/db", schema="public; drop")


async def _install_refusal(store: EventStore, backend: str, schema: str | None, url: str | None):
    """Make the database refuse any event of type 'Refused' (a constraint of its own)."""
    if backend.startswith("sqlite"):
        conn = sqlite3.connect(store.path)  # type: ignore[attr-defined]
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.type = 'Refused' "
            "BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"
        )
        conn.commit()
        conn.close()
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                f"""CREATE FUNCTION "{schema}".refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.type = 'Refused' THEN RAISE EXCEPTION 'refused by trigger'; END IF;
                    RETURN NEW;
                END $$"""
            )
            conn.execute(
                f'CREATE TRIGGER refuse BEFORE INSERT ON "{schema}".events '
                f'FOR EACH ROW EXECUTE FUNCTION "{schema}".refuse()'
            )


async def test_an_append_the_database_refuses_fails_alone(
    store: EventStore, backend: str, request: pytest.FixtureRequest
) -> None:
    schema = request.getfixturevalue("pg_schema") if backend == "postgres" else None
    url = request.getfixturevalue("pg_url") if backend == "postgres" else None
    await _install_refusal(store, backend, schema, url)
    outcomes = await asyncio.gather(
        store.append("a-1", [NewEvent("Fine", {})]),
        store.append("b-1", [NewEvent("Refused", {})]),
        store.append("c-1", [NewEvent("Fine", {})]),
        return_exceptions=True,
    )
    assert not isinstance(outcomes[0], BaseException)
    assert isinstance(outcomes[1], StoreUnavailable)
    assert "refused by trigger" in str(outcomes[1])
    assert not isinstance(outcomes[2], BaseException)
    assert [e.stream_id for e in await store.read_all()] == ["a-1", "c-1"]


async def test_one_of_many_appends_the_database_refuses_fails_alone(
    store: EventStore, backend: str, request: pytest.FixtureRequest
) -> None:
    """append_many: the group is refused as a whole, then committed one append at a
    time, so the refused append fails and the others are stored once."""
    schema = request.getfixturevalue("pg_schema") if backend == "postgres" else None
    url = request.getfixturevalue("pg_url") if backend == "postgres" else None
    await _install_refusal(store, backend, schema, url)
    outcomes = await store.append_many(
        [
            StreamAppend("a-1", [NewEvent("Fine", {})]),
            StreamAppend("b-1", [NewEvent("Refused", {})]),
            StreamAppend("c-1", [NewEvent("Fine", {})]),
        ]
    )
    assert isinstance(outcomes[0], AppendResult)
    assert isinstance(outcomes[1], StoreUnavailable)
    assert "refused by trigger" in str(outcomes[1])
    assert isinstance(outcomes[2], AppendResult)
    assert [e.stream_id for e in await store.read_all()] == ["a-1", "c-1"]
    assert [outcomes[0].first_position, outcomes[2].first_position] == [1, 2]


async def test_concurrent_closes_both_wait(store_factory) -> None:
    s = await store_factory()
    pending = asyncio.create_task(s.append("s-1", [NewEvent("T", {})]))
    await asyncio.sleep(0)
    await asyncio.gather(s.close(), s.close())
    assert pending.done()


# ----------------------------------------------------------------------------- PostgreSQL


async def test_postgres_serializable_default_does_not_break_appends(
    pg_url: str, pg_schema: str
) -> None:
    url = (
        pg_url
        + ("&" if "?" in pg_url else "?")
        + "options=-c%20default_transaction_isolation%3Dserializable"
    )
    stores = [await PostgresEventStore.open(url, schema=pg_schema) for _ in range(3)]
    try:

        async def writer(s: PostgresEventStore, w: int) -> None:
            for i in range(30):
                await s.append(f"s-{i % 3}", [NewEvent("T", {"w": w, "i": i})], ANY)

        await asyncio.gather(*(writer(stores[w % 3], w) for w in range(6)))
        events = await stores[0].read_all(limit=1000)
        assert [e.position for e in events] == list(range(1, 181))
    finally:
        for s in stores:
            await s.close()


def _named(pg_url: str) -> tuple[str, str]:
    """``pg_url`` naming its connections (``application_name``) uniquely, and the name:
    a test ends its own store's connections, never another test's (sessions share the
    database)."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    return pg_url + ("&" if "?" in pg_url else "?") + f"application_name={name}", name


async def _end_backends(pg_url: str, *, name: str | None = None, pids: list[int] = ()) -> int:
    """End, as a server restart would, the backends of connections named ``name`` (or
    these ``pids``), and wait until they are gone; how many there were."""
    where = "application_name = %s" if name is not None else "pid = ANY(%s)"
    arg: object = name if name is not None else list(pids)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        ended = admin.execute(
            f"SELECT pid FROM pg_stat_activity WHERE {where} AND pid <> pg_backend_pid()",
            (arg,),
        ).fetchall()
        ended_pids = [row[0] for row in ended]
        admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid", (ended_pids,))
        for _ in range(250):
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (ended_pids,)
            ).fetchone()
            if row is not None and row[0] == 0:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"backends {ended_pids} still there")
    return len(ended_pids)


async def test_postgres_subscription_survives_lost_connections(pg_url: str, pg_schema: str) -> None:
    url, name = _named(pg_url)
    store = await PostgresEventStore.open(url, schema=pg_schema, idle_recheck=0.2)
    try:
        await store.append("s-1", [NewEvent("T", {"n": 1})])
        seen: list[int] = []

        async def follow() -> None:
            async for event in store.subscribe_all():
                seen.append(event.position)
                if len(seen) == 2:
                    return

        task = asyncio.create_task(follow())
        await asyncio.sleep(0.2)
        assert await _end_backends(pg_url, name=name) >= 2  # the listener's, the writer's
        # the writer's connection died too: the append makes a new one by itself
        await store.append("s-1", [NewEvent("T", {"n": 2}, event_id=uuid.uuid4())], ANY)
        async with asyncio.timeout(10):
            await task
        assert seen == [1, 2]
    finally:
        await store.close()


async def test_postgres_writes_after_the_server_ended_every_connection(
    pg_url: str, pg_schema: str
) -> None:
    """A restart (here: every connection of the store ended by ``pg_terminate_backend``)
    used to fail the next append and the next projection write with
    ``StoreUnavailable`` (a 503 per process after each blip; a stopping process lost its
    last snapshot): each finds its connection ended and makes a new one first."""
    url, name = _named(pg_url)
    store = await PostgresEventStore.open(url, schema=pg_schema)
    try:
        await store.append("s-1", [NewEvent("T", {"n": 1})], NO_STREAM)
        await store.save_checkpoint("c", 1)
        assert store._writer is not None
        writer_pid = store._writer.info.backend_pid
        assert await _end_backends(pg_url, name=name) >= 3  # writer, listener, pool
        result = await store.append("s-1", [NewEvent("T", {"n": 2})], 1)
        assert (result.version, result.first_position, result.idempotent_retry) == (2, 2, False)
        assert store._writer.info.backend_pid != writer_pid

        await _end_backends(pg_url, name=name)
        await store.commit_projection("c", 2, [], expected=1)
        assert await store.get_checkpoint("c") == 2

        await _end_backends(pg_url, name=name)
        await store.save_snapshot("snap", 2, [b"part-1", b"part-2"], expected=None)
        snapshot = await store.load_snapshot("snap")
        assert snapshot is not None
        assert (snapshot.position, snapshot.parts) == (2, (b"part-1", b"part-2"))
        assert [e.data["n"] for e in await store.read_stream("s-1")] == [1, 2]
    finally:
        await store.close()


async def _waiting_for_lock(pg_url: str, pid: int) -> None:
    with psycopg.connect(pg_url, autocommit=True) as admin:
        for _ in range(250):
            row = admin.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if row is not None and row[0] == "Lock":
                return
            await asyncio.sleep(0.02)
    raise AssertionError(f"backend {pid} never waited for a lock")


async def test_postgres_writes_whose_connection_ends_during_the_call_are_made_again(
    pg_url: str, pg_schema: str
) -> None:
    """The connection ends while the append (then the projection write) runs, before
    it committed: it is made once more on a new connection, written once."""
    store = await PostgresEventStore.open(pg_url, schema=pg_schema)
    try:
        await store.append("s-1", [NewEvent("T", {"n": 1})])
        with psycopg.connect(pg_url, autocommit=True) as blocker:
            blocker.execute("SELECT pg_advisory_lock(%s)", (store._lock,))
            task = asyncio.create_task(store.append("s-1", [NewEvent("T", {"n": 2})], 1))
            assert store._writer is not None
            pid = store._writer.info.backend_pid
            await _waiting_for_lock(pg_url, pid)
            await _end_backends(pg_url, pids=[pid])
            blocker.execute("SELECT pg_advisory_unlock(%s)", (store._lock,))
        async with asyncio.timeout(10):
            result = await task
        assert (result.version, result.idempotent_retry) == (2, False)
        assert [e.data["n"] for e in await store.read_stream("s-1")] == [1, 2]

        key = _lock_key(pg_schema, "checkpoint", "c")
        with psycopg.connect(pg_url, autocommit=True) as blocker:
            blocker.execute("SELECT pg_advisory_lock(%s)", (key,))
            task2 = asyncio.create_task(store.commit_projection("c", 2, [], expected=0))
            pid = store._writer.info.backend_pid
            await _waiting_for_lock(pg_url, pid)
            await _end_backends(pg_url, pids=[pid])
            blocker.execute("SELECT pg_advisory_unlock(%s)", (key,))
        async with asyncio.timeout(10):
            await task2
        assert await store.get_checkpoint("c") == 2
    finally:
        await store.close()


@pytest.mark.parametrize("supplied", [False, True])
async def test_postgres_an_append_whose_answer_was_lost_is_not_written_twice(
    pg_url: str, pg_schema: str, supplied: bool
) -> None:
    """The append committed but its connection broke before the answer came: the
    second attempt finds its events stored and answers the same versions and positions
    (no second copy, no false WrongExpectedVersion). With ids the store made, that is
    the call's own success; with ids the caller supplied, an idempotent retry."""
    store = await PostgresEventStore.open(pg_url, schema=pg_schema)
    real = store._call_append_group
    calls: list[bool] = []

    async def lose_first_answer(conn, group, *, check_ids):  # type: ignore[no-untyped-def]
        calls.append(check_ids)
        rows = await real(conn, group, check_ids=check_ids)
        if len(calls) == 1:
            await conn.close()
            raise psycopg.OperationalError("the connection broke before the answer came")
        return rows

    try:
        await store.append("s-1", [NewEvent("T", {"n": 1})])
        store._call_append_group = lose_first_answer  # type: ignore[method-assign]
        event = NewEvent("T", {"n": 2}, event_id=uuid.uuid4() if supplied else None)
        result = await store.append("s-1", [event], 1)
        assert calls == [False, True]
        assert (result.version, result.first_position, result.last_position) == (2, 2, 2)
        assert result.idempotent_retry is supplied
        assert [e.data["n"] for e in await store.read_stream("s-1")] == [1, 2]
    finally:
        await store.close()


@pytest.mark.parametrize("shape", ["one stream, some ids supplied", "two streams, one supplied"])
async def test_postgres_a_lost_answer_with_some_store_made_ids_is_the_calls_own_write(
    pg_url: str, pg_schema: str, shape: str
) -> None:
    """An append with some ids the caller supplied and some the store made, whose answer
    was lost after it committed: the ids the store made are new to this call, so no
    earlier call can have stored them: the second attempt's find is this call's own
    write (``idempotent_retry=False``), not an idempotent retry."""
    store = await PostgresEventStore.open(pg_url, schema=pg_schema)
    real = store._call_append_group
    calls: list[bool] = []

    async def lose_first_answer(conn, group, *, check_ids):  # type: ignore[no-untyped-def]
        calls.append(check_ids)
        rows = await real(conn, group, check_ids=check_ids)
        if len(calls) == 1:
            await conn.close()
            raise psycopg.OperationalError("the connection broke before the answer came")
        return rows

    try:
        store._call_append_group = lose_first_answer  # type: ignore[method-assign]
        if shape == "one stream, some ids supplied":
            events = [NewEvent("T", {"n": 1}, event_id=uuid.uuid4()), NewEvent("T", {"n": 2})]
            results = [await store.append("s-1", events, NO_STREAM)]
        else:
            results = await store.append_multi(
                [
                    StreamAppend("s-1", [NewEvent("T", {"n": 1}, event_id=uuid.uuid4())]),
                    StreamAppend("s-2", [NewEvent("T", {"n": 2})]),
                ]
            )
        assert calls == [False, True]
        assert [r.idempotent_retry for r in results] == [False] * len(results)
        assert len(await store.read_all()) == 2  # written once
    finally:
        await store.close()


async def test_postgres_a_second_attempt_refused_leaves_the_outcome_unknown(
    pg_url: str, pg_schema: str
) -> None:
    """The first attempt committed, then its connection broke; the second attempt is
    refused (any database error that is not a lost connection). The first attempt's
    outcome is unknown: not "nothing written" (the append is stored), and not handed
    to the committer's one-by-one retry, which looks up only supplied ids."""
    store = await PostgresEventStore.open(pg_url, schema=pg_schema)
    real = store._call_append_group
    calls: list[bool] = []

    async def commit_break_then_refuse(conn, group, *, check_ids):  # type: ignore[no-untyped-def]
        calls.append(check_ids)
        if len(calls) == 1:
            await real(conn, group, check_ids=check_ids)
            await conn.close()
            raise psycopg.OperationalError("the connection broke before the answer came")
        raise psycopg.errors.RaiseException("refused")

    try:
        store._call_append_group = commit_break_then_refuse  # type: ignore[method-assign]
        with pytest.raises(StoreUnavailable) as info:
            await store.append("s-1", [NewEvent("T", {})])
        assert info.value.outcome_unknown
        assert calls == [False, True]
        assert len(await store.read_stream("s-1")) == 1
    finally:
        await store.close()


class _CuttingProxy:
    """A TCP proxy to PostgreSQL that can cut one client's side only, as a network cut
    or a proxy's restart does: the next bytes that client sends are held (in flight)
    and its socket is reset, while the connection to the server stays open and its
    backend alive; :meth:`deliver` then hands the held bytes to that backend."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.listen_port = 0
        self._server: asyncio.Server | None = None
        self._cut_port: int | None = None
        self._cut_after = 0
        self._held: tuple[bytes, asyncio.StreamWriter, asyncio.Task[bytes]] | None = None
        self._tasks: set[asyncio.Task[object]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.listen_port = self._server.sockets[0].getsockname()[1]

    def cut(self, client_port: int, *, after: int = 0) -> None:
        """Cut the client whose local port is ``client_port`` at its next write, or
        after passing on ``after`` more writes."""
        self._cut_port = client_port
        self._cut_after = after

    async def _serve(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        s_reader, s_writer = await asyncio.open_connection(self.host, self.port)
        client_port = c_writer.get_extra_info("peername")[1]
        held: list[bytes] = []

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    if up and client_port == self._cut_port and self._cut_after > 0:
                        self._cut_after -= 1
                    elif up and client_port == self._cut_port:
                        self._cut_port = None
                        held.append(data)
                        c_writer.transport.abort()  # the client sees its connection reset
                        return
                    dst.write(data)
                    await dst.drain()
                dst.close()

        down = asyncio.ensure_future(pump(s_reader, c_writer, False))
        self._tasks.add(down)
        await pump(c_reader, s_writer, True)
        if held:
            down.cancel()

            async def answer() -> bytes:
                """What the server answers once the client is gone: up to its
                ReadyForQuery (the call ended), or the end of the stream."""
                got = b""
                with contextlib.suppress(OSError, ConnectionError):
                    while data := await s_reader.read(65536):
                        got += data
                        if b"Z\x00\x00\x00\x05" in got:
                            break
                return got

            self._held = (held[0], s_writer, asyncio.ensure_future(answer()))

    async def deliver(self) -> bytes:
        """Send the held bytes to the server at last; what it answered (b"" if it had
        ended that backend)."""
        assert self._held is not None
        data, s_writer, answer = self._held
        with contextlib.suppress(OSError, ConnectionError):
            s_writer.write(data)
            await s_writer.drain()
        async with asyncio.timeout(10):
            return await answer

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._held is not None:
            self._held[2].cancel()
            self._held[1].close()
        if self._server is not None:
            self._server.close()


async def test_postgres_an_append_in_flight_on_a_cut_connection_cannot_commit_after_its_retry(
    pg_url: str, pg_schema: str
) -> None:
    """Only the client's side of the writer's connection broke (a network cut, a proxy
    restarted): its backend lives on and the append may still reach it. The second
    attempt answered WrongExpectedVersion (the stream was empty); another writer then
    brought the stream to the version the append expected, and the first attempt,
    delivered late, wrote it: an append reported refused was stored. The second attempt
    must first end the first's backend, so that nothing of it can still commit."""
    info = psycopg.conninfo.conninfo_to_dict(pg_url)
    proxy = _CuttingProxy(str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432))
    await proxy.start()
    via_proxy = psycopg.conninfo.make_conninfo(
        pg_url, host="127.0.0.1", port=str(proxy.listen_port)
    )
    store = await PostgresEventStore.open(via_proxy, schema=pg_schema)
    other = await PostgresEventStore.open(pg_url, schema=pg_schema)
    try:
        await store.append("warm-up", [NewEvent("T", {})])
        assert store._writer is not None
        with socket.socket(fileno=os.dup(store._writer.pgconn.socket)) as sock:
            proxy.cut(sock.getsockname()[1])
        with pytest.raises(WrongExpectedVersion):
            await store.append("s-1", [NewEvent("T", {"n": "late"})], 2)
        await other.append("s-1", [NewEvent("T", {"n": 1}), NewEvent("T", {"n": 2})], NO_STREAM)
        await proxy.deliver()
        assert [e.data["n"] for e in await other.read_stream("s-1")] == [1, 2]
    finally:
        await other.close()
        await store.close()
        await proxy.close()


async def test_postgres_a_projection_write_cut_on_the_clients_side_is_made_again(
    pg_url: str, pg_schema: str
) -> None:
    """The writer's connection is cut on the client's side only, in a projection write
    holding its checkpoint's lock: the backend lives on, idle in its transaction (its
    COMMIT never came), holding the lock. The second attempt ends that backend first;
    it used to wait for its lock until the server found the client gone (with a silent
    cut, its TCP keepalive: two hours by default), and every append of the process with
    it."""
    info = psycopg.conninfo.conninfo_to_dict(pg_url)
    proxy = _CuttingProxy(str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432))
    await proxy.start()
    via_proxy = psycopg.conninfo.make_conninfo(
        pg_url, host="127.0.0.1", port=str(proxy.listen_port)
    )
    store = await PostgresEventStore.open(via_proxy, schema=pg_schema)
    try:
        await store.save_checkpoint("c", 1)
        assert store._writer is not None
        with socket.socket(fileno=os.dup(store._writer.pgconn.socket)) as sock:
            proxy.cut(sock.getsockname()[1], after=2)  # BEGIN, the lock; cut at the read
        async with asyncio.timeout(10):
            await store.commit_projection("c", 2, [], expected=1)
        assert await store.get_checkpoint("c") == 2
    finally:
        await store.close()
        await proxy.close()


async def test_postgres_an_empty_snapshot_whose_commit_broke_is_not_made_again(
    pg_url: str, pg_schema: str
) -> None:
    """A snapshot of no parts draws none, so "no part drawn" did not tell that its COMMIT
    was not sent: one whose connection broke during the COMMIT, after it committed,
    was made again and refused as a CheckpointConflict with itself. Its outcome is
    unknown."""
    from oddstream.eventstore.postgres import _SnapshotFailed

    store = await PostgresEventStore.open(pg_url, schema=pg_schema)
    real = store._snapshot_in
    calls: list[int] = []

    async def commit_then_break(name, position, parts, expected):  # type: ignore[no-untyped-def]
        calls.append(position)
        await real(name, position, parts, expected)
        if len(calls) == 1:
            lost = psycopg.OperationalError("the connection broke during the COMMIT")
            raise _SnapshotFailed(lost, committing=True)

    try:
        await store.save_checkpoint("snap", 4)
        store._snapshot_in = commit_then_break  # type: ignore[method-assign]
        with pytest.raises(StoreUnavailable) as info:
            await store.save_snapshot("snap", 5, [], expected=4)
        assert info.value.outcome_unknown
        assert calls == [5]
        assert await store.get_checkpoint("snap") == 5
    finally:
        await store.close()


async def test_postgres_an_append_that_fails_twice_has_an_unknown_outcome(
    pg_url: str, pg_schema: str
) -> None:
    store = await PostgresEventStore.open(pg_url, schema=pg_schema)
    real = store._call_append_group

    async def commit_then_break(conn, group, *, check_ids):  # type: ignore[no-untyped-def]
        await real(conn, group, check_ids=check_ids)
        await conn.close()
        raise psycopg.OperationalError("the connection broke before the answer came")

    try:
        store._call_append_group = commit_then_break  # type: ignore[method-assign]
        with pytest.raises(StoreUnavailable) as info:
            await store.append("s-1", [NewEvent("T", {})])
        assert info.value.outcome_unknown
        assert len(await store.read_stream("s-1")) == 1  # written once all the same
    finally:
        await store.close()


async def test_postgres_append_times_out_with_outcome_unknown(pg_url: str, pg_schema: str) -> None:
    store = await PostgresEventStore.open(pg_url, schema=pg_schema, timeout=0.5)
    try:
        event = NewEvent("T", {}, event_id=uuid.uuid4())
        with psycopg.connect(pg_url, autocommit=True) as blocker:
            blocker.execute("SELECT pg_advisory_lock(%s)", (store._lock,))
            with pytest.raises(StoreUnavailable) as info:
                await store.append("s-1", [event])
            assert info.value.outcome_unknown
        # the documented recovery: retry with the same event id, on a fresh connection
        result = await store.append("s-1", [event])
        assert result.version == 1
        assert [e.event_id for e in await store.read_stream("s-1")] == [event.event_id]
    finally:
        await store.close()


async def test_postgres_reads_on_connections_the_server_dropped_are_made_again(
    pg_url: str, pg_schema: str
) -> None:
    """The pool lends connections without a round trip to check them; a read that finds
    its connection dropped (a restart, an idle timeout) is made again on a fresh one
    rather than failing with ``StoreUnavailable``."""
    store = await PostgresEventStore.open(pg_url, schema=pg_schema)
    try:
        await store.append("s-1", [NewEvent("T", {"n": 1})])
        assert len(await store.read_stream("s-1")) == 1
        pids = []
        async with store._pool.connection() as conn:
            pids.append(conn.info.backend_pid)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid", (pids,))
            for _ in range(100):
                row = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
                ).fetchone()
                if row is not None and row[0] == 0:
                    break
                await asyncio.sleep(0.02)
        assert len(await store.read_stream("s-1")) == 1
        page = await store._read_page(0, 10, ReadFilter())
        assert [e.position for e in page.events] == [1]
        assert page.head == 1
    finally:
        await store.close()
