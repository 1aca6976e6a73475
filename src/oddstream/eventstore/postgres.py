"""PostgreSQL adapter: psycopg 3 (async), a connection pool for reads, one writer
connection per process with group commit, LISTEN/NOTIFY for live subscriptions.

The sequence-gap trap (a reader sees position 11 committed before 10 and never sees 10)
is avoided by serializing position assignment: every appending transaction first takes a
transaction-scoped advisory lock, then numbers its events from the current maximum. The
lock is held until commit, so positions become visible strictly in order, across any
number of processes. Group commit makes the lock cheap: one lock, one round trip of
checks and one commit serve every append that queued up meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import zlib
from collections.abc import Iterator
from importlib import resources
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from . import pgarrays
from .base import (
    DEFAULT_FOLLOW_PACE,
    DEFAULT_IDLE_RECHECK,
    DEFAULT_PAGE_MAX_BYTES,
    EventStore,
    PageRead,
    ReadFilter,
    SqlStatement,
    check_follow_pace,
    check_page_max_bytes,
    take_rows,
)
from .envelope import AppendResult, ExpectedVersion, RecordedEvent
from .errors import (
    CheckpointConflict,
    DuplicateEventId,
    EventStoreError,
    ProjectionFailed,
    StoreUnavailable,
    WrongExpectedVersion,
)
from .factory import check_schema_name
from .groupcommit import AppendJob, GroupCommitter, ProjectionJob
from .pgarrays import BoolArray, Int4Array, Int8Array, JsonbArray, TextArray, UuidArray
from .prepare import MAX_EVENT_BYTES, PreparedPart

log = logging.getLogger(__name__)

#: Positions a filtered page scans at least before it reports how far it got.
FILTER_WINDOW = 20_000
#: What a compressed value may count for at most when the server cuts a page: its
#: rendered JSON is at most about twice the store's largest event (1 MiB encoded).
_COMPRESSED_MAX = 2 * MAX_EVENT_BYTES
#: How many times larger than its stored size a compressed value may be (LZ4's worst
#: case; pglz's is about 87): a compressed value counts that much, up to the above.
_COMPRESSION_RATIO_MAX = 255


_CONNECT_OPTIONS: dict[str, Any] = {
    "autocommit": True,
    "connect_timeout": 10,
    # notice a dead peer within about a minute instead of the kernel's two hours
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    """Every connection: READ COMMITTED whatever the server's default (the append
    checks must see what committed while they waited for the lock), and our arrays."""
    await conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED")
    pgarrays.register(conn)


_DDL = """
CREATE TABLE IF NOT EXISTS {schema}.events (
    position       bigint      PRIMARY KEY,
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL,
    event_id       uuid        NOT NULL UNIQUE,
    type           text        NOT NULL,
    schema_version integer     NOT NULL,
    data           jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    recorded_at    timestamptz NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE TABLE IF NOT EXISTS {schema}.checkpoints (
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {schema}.snapshots (
    name     text   PRIMARY KEY,
    position bigint NOT NULL,
    data     bytea  NOT NULL
);
CREATE TABLE IF NOT EXISTS {schema}.snapshot_parts (
    name text    NOT NULL,
    part integer NOT NULL,
    data bytea   NOT NULL,
    PRIMARY KEY (name, part)
);
"""

#: Commands' request ids per stream (see read_requests). Built CONCURRENTLY, outside the
#: DDL's transaction: on an existing log a plain CREATE INDEX would stop every node's
#: appends for the whole build.
_REQUEST_INDEX = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS events_request ON {schema}.events "
    "(stream_id, (metadata->>'request_id')) WHERE metadata ? 'request_id'"
)

_SELECT = (
    "SELECT position, stream_id, version, uuid_send(event_id), type, schema_version, "
    "data::text, metadata::text, (extract(epoch FROM recorded_at) * 1000000)::int8 "
    "FROM {schema}.events "
)

#: An upper bound of the rendered size of a stored jsonb value, from what its stored
#: form says without reading it (a toasted value's size is in its pointer): its size, or
#: for a compressed one, that times the largest compression ratio (capped).
_COST = (
    "CASE WHEN pg_column_compression({v}) IS NULL THEN pg_column_size({v}) "
    f"ELSE least(pg_column_size({{v}}) * {_COMPRESSION_RATIO_MAX}, {_COMPRESSED_MAX}) END"
)
#: How many times an event's cost (``_COST``) it may render to and still be sent by
#: ``_PAGE_START``'s query: twice (jsonb renders a space after each ``:`` and ``,``, and
#: escapes ``"`` and ``\\`` in strings, one character each).
_RENDERED_PER_COST = 2
#: a page of a subscription with the head it was read at (see ``_read_page``): the
#: server cuts the page where the events' costs (``_COST``) reach the byte budget before
#: it renders them, so what lies past the budget is looked at, never rendered nor sent.
#: ``cut``: the page stopped there with more events in its range (a full page). The
#: cost is an estimate, not a bound: jsonb renders a number in full (``1e308``, a few
#: bytes stored, as 309 digits), so an event that rendered to more than
#: ``_RENDERED_PER_COST`` times its cost is sent without its data and metadata, and
#: flagged (``big``): the page ends before it (the one a page starts with is read alone).
#: So the rows sent hold about twice the budget at most, and one event.
_PAGE_START = (
    "SELECT e.*, h.head FROM (SELECT coalesce(max(position), 0) AS head FROM {schema}.events) h "
    "LEFT JOIN LATERAL (SELECT position, stream_id, version, event_id, type, schema_version, "
    "CASE WHEN fits THEN data END, CASE WHEN fits THEN metadata END, recorded_at, "
    "NOT fits AS big, cut FROM ("
    "SELECT *, octet_length(data) + octet_length(metadata) <= %s::int8 * cost AS fits FROM ("
    "SELECT position, stream_id, version, uuid_send(event_id) AS event_id, type, "
    "schema_version, data::text AS data, metadata::text AS metadata, "
    "(extract(epoch FROM recorded_at) * 1000000)::int8 AS recorded_at, cost, "
    "upto >= %s AND next_position IS NOT NULL AS cut FROM ("
    "SELECT *, sum(cost) OVER w AS upto, lead(position) OVER w AS next_position FROM ("
    "SELECT *, "
    + _COST.format(v="data")
    + " + "
    + _COST.format(v="metadata")
    + " AS cost FROM {schema}.events "
)
#: the end of ``_PAGE_START``'s query, after its ``WHERE``
_PAGE_END = (
    " ORDER BY position LIMIT %s) c "
    "WINDOW w AS (ORDER BY position ROWS UNBOUNDED PRECEDING)) p "
    # OFFSET 0: a fence, so each event is rendered once (not again for ``fits``)
    "WHERE upto - cost < %s ORDER BY position OFFSET 0) r) s) e ON true"
)

#: The same page the quick way, without a running sum (each costs ~1.2 µs an event): an
#: event is sent whole only if it rendered to at most ``limit``-th of the budget, so the
#: events sent hold the budget at most, whatever they are; a larger one is sent without
#: its data and metadata, and flagged (``big``). One is not rendered at all when its cost
#: (``_COST``) already says it is larger. A page with an event flagged is read again by
#: ``_PAGE_START``'s query.
_FAST_START = (
    "SELECT e.*, h.head FROM (SELECT coalesce(max(position), 0) AS head FROM {schema}.events) h "
    "LEFT JOIN LATERAL (SELECT position, stream_id, version, event_id, type, schema_version, "
    "CASE WHEN fits THEN data END, CASE WHEN fits THEN metadata END, recorded_at, "
    "NOT fits AS big FROM ("
    "SELECT *, data IS NOT NULL AND octet_length(data) + octet_length(metadata) <= %s AS fits "
    "FROM (SELECT position, stream_id, version, uuid_send(event_id) AS event_id, type, "
    "schema_version, CASE WHEN cost <= %s THEN data::text END AS data, "
    "CASE WHEN cost <= %s THEN metadata::text END AS metadata, "
    "(extract(epoch FROM recorded_at) * 1000000)::int8 AS recorded_at FROM (SELECT *, "
    + _COST.format(v="data")
    + " + "
    + _COST.format(v="metadata")
    + " AS cost FROM {schema}.events "
)
#: the end of ``_FAST_START``'s query, after its ``WHERE``
_FAST_END = (
    # OFFSET 0: a fence, so each event is rendered once (not again for ``fits``)
    " ORDER BY position LIMIT %s) c ORDER BY position OFFSET 0) r) s) e ON true"
)
#: the flag of an event ``_FAST_START``'s query did not send
_BIG = operator.itemgetter(9)

_EXPECTED_CODES = {
    ExpectedVersion.ANY: -1,
    ExpectedVersion.NO_STREAM: -2,
    ExpectedVersion.STREAM_EXISTS: -3,
}
_APPEND_GROUP = (resources.files(__package__) / "sql" / "append_group.sql").read_text()
_APPEND_CALL = (
    "SELECT * FROM {schema}.append_group(%b, %b, %b::int4[], %b::text[], %b::int8[], "
    "%b::int4[], %b::bool[], %b::uuid[], %b::text[], %b::int4[], %b::jsonb[], %b::jsonb[])"
)


def _outcome(
    parts: list[PreparedPart], rows: list[tuple[Any, ...]], *, resent: bool = False
) -> list[AppendResult] | EventStoreError:
    """Turn ``append_group``'s rows for one request into its result or error.

    ``resent``: the rows answer the store's own second attempt (see ``_write_appends``);
    an append found stored then was stored by the first attempt, and if the store made
    any of its ids (new to this call, so no earlier call can have stored them), by no
    earlier call of the caller's: it is this call's own success."""
    for part, (status, _v, _f, _l, actual, detail) in zip(parts, rows, strict=True):
        if status == 2:
            return WrongExpectedVersion(part.stream_id, part.expected, actual)
        if status == 3:
            supplied = part.supplied or []
            raw = next((e for e, s in zip(part.event_ids, supplied, strict=False) if s), None)
            return DuplicateEventId(part.stream_id, UUID(bytes=raw) if raw else None, detail)
    retry = rows[0][0] == 1
    if retry and resent and not all(part.supplied and all(part.supplied) for part in parts):
        retry = False
    return [
        AppendResult(part.stream_id, version, first, last, idempotent_retry=retry)
        for part, (_s, version, first, last, _a, _d) in zip(parts, rows, strict=True)
    ]


def _lock_key(*parts: str) -> int:
    """A signed 64-bit advisory-lock key for these names."""
    raw = zlib.crc32("\x00".join(parts).encode()) | (zlib.adler32(parts[0].encode()) << 32)
    return raw - (1 << 64) if raw >= 1 << 63 else raw


def _ended(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether the server has ended this idle connection. Reads what is waiting on its
    socket without blocking (libpq's sockets are non-blocking): the server's goodbye,
    its FATAL message then the end of the stream, is there as soon as it ended it. One
    read takes the message, a second finds the end (libpq then marks the connection
    bad); on a live idle connection both find nothing (two system calls, no round
    trip). Only for a connection that does not LISTEN (the writer's): a notification
    read here waits in libpq's buffer, unseen by ``notifies()`` until more comes."""
    if conn.closed or conn.broken:
        return True
    pgconn = conn.pgconn
    try:
        pgconn.consume_input()
        pgconn.consume_input()
    except psycopg.OperationalError:
        return True
    return pgconn.status != psycopg.pq.ConnStatus.OK


class _SnapshotFailed(Exception):
    """A snapshot write's database failure, and whether it came during its COMMIT."""

    def __init__(self, cause: BaseException, committing: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.committing = committing


class PostgresEventStore(EventStore):
    """The services-mode event store. Open with :meth:`open`.

    ``schema`` names the PostgreSQL schema holding the tables (default ``oddstream``);
    several stores can share a database in different schemas.
    """

    backend = "postgres"

    def __init__(
        self,
        url: str,
        *,
        schema: str = "oddstream",
        pool_size: int = 8,
        idle_recheck: float = DEFAULT_IDLE_RECHECK,
        follow_pace: float = DEFAULT_FOLLOW_PACE,
        timeout: float = 30.0,
        page_max_bytes: int = DEFAULT_PAGE_MAX_BYTES,
    ) -> None:
        super().__init__(
            idle_recheck=idle_recheck, follow_pace=follow_pace, page_max_bytes=page_max_bytes
        )
        check_schema_name(schema)
        self.url = url
        self.schema = schema
        self._timeout = timeout
        self._pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            kwargs=dict(_CONNECT_OPTIONS),
            configure=_configure,
        )
        ident = sql.Identifier(schema)
        self._channel = f"{schema}_events"
        self._lock = _lock_key(schema, "append")
        self._q_select = sql.SQL(_SELECT).format(schema=ident)
        self._q_page_start = sql.SQL(_PAGE_START).format(schema=ident)
        self._q_page_end = sql.SQL(_PAGE_END)
        self._q_fast_start = sql.SQL(_FAST_START).format(schema=ident)
        self._q_fast_end = sql.SQL(_FAST_END)
        #: read pages the quick way first (see ``_read_page``)
        self._fast_pages = True
        self._q_append = sql.SQL(_APPEND_CALL).format(schema=ident)
        self._q_table = sql.SQL("{schema}.events").format(schema=ident)
        self._q_checkpoints = sql.SQL("{schema}.checkpoints").format(schema=ident)
        self._q_snapshots = sql.SQL("{schema}.snapshots").format(schema=ident)
        self._q_snapshot_parts = sql.SQL("{schema}.snapshot_parts").format(schema=ident)
        self._writer: psycopg.AsyncConnection[Any] | None = None
        self._listener_task: asyncio.Task[None] | None = None
        self._committer: GroupCommitter | None = None
        self._index_task: asyncio.Task[bool] | None = None

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        schema: str = "oddstream",
        pool_size: int = 8,
        idle_recheck: float = DEFAULT_IDLE_RECHECK,
        follow_pace: float = DEFAULT_FOLLOW_PACE,
        timeout: float = 30.0,
        page_max_bytes: int = DEFAULT_PAGE_MAX_BYTES,
    ) -> PostgresEventStore:
        """Connect, create the schema if needed, and start listening for commits.

        ``timeout`` bounds every call to the database: an append that gets no answer in
        time fails with ``StoreUnavailable(outcome_unknown=True)``. ``page_max_bytes``:
        the byte budget of a page of the log (:attr:`~EventStore.page_max_bytes`).
        """
        check_follow_pace(follow_pace)
        check_page_max_bytes(page_max_bytes)
        store = cls(
            url,
            schema=schema,
            pool_size=pool_size,
            idle_recheck=idle_recheck,
            follow_pace=follow_pace,
            timeout=timeout,
            page_max_bytes=page_max_bytes,
        )
        try:
            await store._pool.open(wait=True, timeout=10.0)
            await store._create_schema()
            store._index_task = asyncio.create_task(
                store._build_request_index(), name="es-request-index"
            )
            store._writer = await store._connect()
        except (psycopg.Error, Exception) as exc:
            await store._pool.close()
            if isinstance(exc, psycopg.Error | TimeoutError):
                raise StoreUnavailable(f"PostgreSQL at {url!r} is not usable: {exc}") from exc
            raise
        store._committer = GroupCommitter(store._write_appends, store._write_projection)
        listening = asyncio.get_running_loop().create_future()
        store._listener_task = asyncio.create_task(store._listen(listening), name="es-listen")
        await listening
        await store.head_position()
        return store

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(self.url, **_CONNECT_OPTIONS)
        await _configure(conn)
        return conn

    async def _drop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                await writer.close()

    async def _create_schema(self) -> None:
        ident = sql.Identifier(self.schema)
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(self.schema, "ddl"),))
            await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
            await conn.execute(sql.SQL(_DDL).format(schema=ident))
            # 0.1.0-dev took bytea for ids and JSON; drop that signature if present.
            await conn.execute(
                sql.SQL(
                    "DROP FUNCTION IF EXISTS {}.append_group(bigint, text, int[], text[], "
                    "bigint[], int[], boolean[], bytea[], text[], int[], bytea[], bytea[])"
                ).format(ident)
            )
            await conn.execute(sql.SQL(_APPEND_GROUP).format(schema=ident))

    async def request_index_ready(self) -> bool:
        """Wait for this store's build (or check) of the request index; whether it was
        built. Reads by request id are right either way, only slower without it."""
        if self._index_task is None:
            return False
        return await asyncio.shield(self._index_task)

    async def _build_request_index(self) -> bool:
        """:meth:`_ensure_request_index` in the background of an open store: a build
        that waits on another session's long transaction (``CREATE INDEX CONCURRENTLY``
        waits for every snapshot in the database), is cancelled, or times out must not
        stop the node; a later open retries it."""
        try:
            await self._ensure_request_index()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "the request index of %s was not built (%s); reads by request id use the "
                "stream index until a later open builds it",
                self.schema,
                exc,
            )
            return False
        return True

    async def _ensure_request_index(self) -> None:
        """Build the request index if it is missing (or left invalid by a build that
        failed), without blocking appends: instant on a new schema, a one-time cost on
        an existing log (reads by request id work meanwhile, by the stream's index).

        One node builds it: the others find the builder's session lock taken and go on
        (waiting for it could deadlock, since a concurrent build waits for every open
        transaction, theirs included)."""
        ident = sql.Identifier(self.schema)
        key = _lock_key(self.schema, "request-index")
        async with self._pool.connection() as conn:  # autocommit: CONCURRENTLY needs it
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", [key])
            if not (await cur.fetchone() or (False,))[0]:
                return
            try:
                # a role's statement_timeout would cancel a long build at every open
                await conn.execute("SET statement_timeout = 0")
                cur = await conn.execute(
                    "SELECT i.indisvalid FROM pg_index i "
                    "JOIN pg_class c ON c.oid = i.indexrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relname = 'events_request'",
                    [self.schema],
                )
                row = await cur.fetchone()
                if row is not None and row[0]:
                    return
                if row is not None:
                    log.warning("rebuilding the invalid index %s.events_request", self.schema)
                    await conn.execute(
                        sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}.events_request").format(ident)
                    )
                await conn.execute(sql.SQL(_REQUEST_INDEX).format(schema=ident))
            finally:
                await conn.execute("RESET statement_timeout")
                await conn.execute("SELECT pg_advisory_unlock(%s)", [key])

    # ----------------------------------------------------------------- writer side
    async def _submit(self, parts: list[PreparedPart]) -> list[AppendResult]:
        assert self._committer is not None
        return await self._committer.append(parts)

    async def _submit_many(
        self, requests: list[list[PreparedPart]]
    ) -> list[list[AppendResult] | BaseException]:
        assert self._committer is not None
        return await self._committer.append_many(requests)

    async def _commit_projection(
        self, name: str, position: int, statements: list[SqlStatement], expected: int | None
    ) -> None:
        assert self._committer is not None
        await self._committer.project(name, position, statements, expected)

    async def _writer_conn(self) -> psycopg.AsyncConnection[Any]:
        """The writer's connection, a new one if the server ended the last (a restart,
        ``pg_terminate_backend``, an idle timeout): found out here, before anything is
        sent on it, so that the write's outcome stays known."""
        if self._writer is not None and _ended(self._writer):
            log.info("the server ended the event store's writer connection: a new one")
            await self._drop_writer()
        if self._writer is None:
            try:
                self._writer = await self._connect()
            except psycopg.Error as exc:
                raise StoreUnavailable(f"cannot reach PostgreSQL: {exc}") from exc
        return self._writer

    async def _write_appends(self, group: list[AppendJob]) -> None:
        resent = False
        try:
            async with asyncio.timeout(self._timeout):
                rows, resent = await self._append_rows(group)
        except TimeoutError:
            await self._drop_writer()  # its state is unknown after a cancelled call
            error = StoreUnavailable(
                f"PostgreSQL did not answer an append within {self._timeout}s",
                outcome_unknown=True,
            )
            for job in group:
                job.settle(error)
            return
        # Other errors (a constraint, a value PostgreSQL refuses) rolled the whole call
        # back and propagate: the committer then retries the appends one by one.
        results = iter(rows)
        last = 0
        for job in group:
            outcome = _outcome(job.parts, [next(results) for _ in job.parts], resent=resent)
            if isinstance(outcome, list) and not outcome[0].idempotent_retry:
                last = max(last, *(r.last_position for r in outcome))
            job.settle(outcome)
        if last:
            self._committed_here(last)

    async def _append_rows(self, group: list[AppendJob]) -> tuple[list[tuple[Any, ...]], bool]:
        """``append_group``'s rows for the group, and whether they answer a second
        attempt. A call whose connection broke under it (the server ended it after the
        check of :meth:`_writer_conn`, or while the call ran) may have committed or not:
        it is made once more on a new connection with every event id checked, so an
        append the first attempt stored answers as stored (the same versions and
        positions) rather than being written twice or refused as a conflict."""
        conn = await self._writer_conn()
        pid = conn.info.backend_pid
        try:
            return await self._call_append_group(conn, group, check_ids=False), False
        except psycopg.OperationalError as exc:
            if not (conn.broken or conn.closed):  # refused, rolled back: nothing written
                raise StoreUnavailable(f"PostgreSQL failed: {exc}") from exc
            log.warning("the event store's writer lost its connection (%s); appending again", exc)
        try:
            conn = await self._writer_conn()
            await self._end_backend(conn, pid)
            return await self._call_append_group(conn, group, check_ids=True), True
        except (psycopg.Error, StoreUnavailable) as exc:
            # any failure now, even a refusal, leaves the first attempt's outcome unknown:
            # the committer's one-by-one retry (which checks only supplied ids) must not
            # run on appends the first attempt may have stored
            raise StoreUnavailable(f"PostgreSQL failed: {exc}", outcome_unknown=True) from exc

    async def _end_backend(self, conn: psycopg.AsyncConnection[Any], pid: int) -> None:
        """End the backend ``pid`` of a connection that broke under a write and wait
        until it is gone. If only the client's side broke (a network cut, a proxy's
        restart), that backend lives on and may still run the write, or receive it
        late (in flight), and commit it after a second attempt looked: an append
        answered as refused, or stored only once a stream's version matched. Once it is
        gone, nothing of the first attempt can still commit. Only a backend of this
        store's role and database is looked for (a pid the server has since reused for
        another client is not ended); ``StoreUnavailable`` if it would not end."""
        wait_ms = max(int(self._timeout * 1000), 1)
        cur = await conn.execute(
            "SELECT pg_terminate_backend(pid, %s) FROM pg_stat_activity "
            "WHERE pid = %s AND datname = current_database() AND usename = current_user",
            (wait_ms, pid),
        )
        row = await cur.fetchone()
        if row is None or row[0]:
            return
        # false: it ended between the look-up and the signal, or did not end in time
        cur = await conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,))
        if await cur.fetchone() is not None:
            raise StoreUnavailable(f"the backend {pid} of the writer's lost connection lives on")

    async def _call_append_group(
        self, conn: psycopg.AsyncConnection[Any], group: list[AppendJob], *, check_ids: bool
    ) -> list[tuple[Any, ...]]:
        """Send the whole group as one call of ``append_group`` (one round trip);
        ``check_ids``: look every event id up, not only the ones callers supplied."""
        req: list[int] = []
        streams: list[str] = []
        expected: list[int] = []
        counts: list[int] = []
        check: list[bool] = []
        ids: list[bytes] = []
        types: list[str] = []
        svs: list[int] = []
        data: list[bytes] = []
        meta: list[bytes] = []
        for index, job in enumerate(group):
            for part in job.parts:
                req.append(index)
                streams.append(part.stream_id)
                exp = part.expected
                expected.append(exp if isinstance(exp, int) else _EXPECTED_CODES[exp])
                counts.append(len(part))
                check.append(check_ids or part.supplied is not None)
                ids += part.event_ids
                types += part.types
                svs += part.schema_versions
                data += part.data
                meta += part.metadata
        cur = await conn.execute(
            self._q_append,
            (
                self._lock,
                self._channel,
                Int4Array.of(req),
                TextArray.of(streams),
                Int8Array.of(expected),
                Int4Array.of(counts),
                BoolArray.of(check),
                UuidArray.of(ids),
                TextArray.of(types),
                Int4Array.of(svs),
                JsonbArray.of(data),
                JsonbArray.of(meta),
            ),
        )
        return await cur.fetchall()

    async def _write_projection(self, job: ProjectionJob) -> None:
        """One transaction; made once more on a new connection if the connection broke
        before its COMMIT was sent (nothing of it was then kept), once the first
        attempt's backend is gone (see :meth:`_end_backend`: one that lives on, idle in
        its transaction, holds its locks). A break during the COMMIT leaves its outcome
        unknown."""
        pid = 0
        for attempt in (1, 2):
            conn = await self._writer_conn()
            committing = False
            try:
                if attempt == 1:
                    pid = conn.info.backend_pid
                else:  # free the locks the first attempt's backend may still hold
                    try:
                        await self._end_backend(conn, pid)
                    except psycopg.OperationalError:
                        raise
                    except psycopg.Error as exc:
                        raise StoreUnavailable(f"PostgreSQL failed: {exc}") from exc
                async with conn.transaction():
                    await self._project_in(conn, job)
                    committing = True
            except psycopg.OperationalError as exc:
                broken = conn.broken or conn.closed
                if broken and not committing and attempt == 1:
                    log.warning(
                        "the event store's writer lost its connection (%s); writing %r again",
                        exc,
                        job.name,
                    )
                    continue
                raise StoreUnavailable(
                    f"PostgreSQL failed: {exc}", outcome_unknown=committing
                ) from exc
            job.settle(None)
            return

    async def _project_in(self, conn: psycopg.AsyncConnection[Any], job: ProjectionJob) -> None:
        """A projection write's statements, in the transaction ``conn`` holds open."""
        if job.expected is not None:
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s)",
                (_lock_key(self.schema, "checkpoint", job.name),),
            )
            cur = await conn.execute(
                sql.SQL("SELECT position FROM {} WHERE name = %s").format(self._q_checkpoints),
                (job.name,),
            )
            row = await cur.fetchone()
            actual = row[0] if row else 0
            if actual != job.expected:
                raise CheckpointConflict(job.name, job.expected, actual)
        try:
            async with conn.cursor() as cur:
                for st in job.statements:
                    if st.many:
                        await cur.executemany(st.sql, st.params)
                    else:
                        await cur.execute(st.sql, st.params)
        except psycopg.OperationalError:
            raise
        except (psycopg.Error, ValueError, TypeError) as exc:
            raise ProjectionFailed(f"projection {job.name!r}: {exc}") from exc
        await conn.execute(
            sql.SQL(
                "INSERT INTO {} (name, position, updated_at) VALUES (%s, %s, now()) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
                "updated_at = excluded.updated_at"
            ).format(self._q_checkpoints),
            (job.name, job.position),
        )

    # ----------------------------------------------------------------- live wake-ups
    async def _listen(self, ready: asyncio.Future[None]) -> None:
        delay = 0.1
        while not self._closed:
            try:
                conn = await self._connect()
                try:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    if not ready.done():
                        ready.set_result(None)
                    else:  # reconnected: we may have missed notifications
                        self._notifier.poke()
                    delay = 0.1
                    async for note in conn.notifies():
                        with contextlib.suppress(ValueError):
                            self._notifier.advance(int(note.payload))
                finally:
                    await conn.close()
            except asyncio.CancelledError:
                raise
            except psycopg.Error as exc:
                if not ready.done():
                    ready.set_exception(StoreUnavailable(f"cannot LISTEN: {exc}"))
                    return
                log.warning("event store listener lost its connection: %s", exc)
                self._notifier.poke()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # ----------------------------------------------------------------- reader side
    async def _fetch(self, query: Any, params: Any = ()) -> list[tuple[Any, ...]]:
        """A read on a pooled connection. The pool does not check a connection before
        lending it (a round trip per read: a third of a follower's reads); a read that
        finds its connection broken (PostgreSQL restarted since it was last used) has the
        pool check all of its idle ones, and is made once more."""
        for attempt in (1, 2):
            try:
                async with asyncio.timeout(self._timeout), self._pool.connection() as conn:
                    cur = await conn.execute(query, params, binary=True)
                    return await cur.fetchall()
            except TimeoutError as exc:
                raise StoreUnavailable(
                    f"PostgreSQL did not answer within {self._timeout}s"
                ) from exc
            except psycopg.OperationalError as exc:
                if attempt == 2:
                    raise StoreUnavailable(f"PostgreSQL read failed: {exc}") from exc
                with contextlib.suppress(psycopg.Error, PoolTimeout, OSError):
                    await self._pool.check()
            except (psycopg.Error, PoolTimeout) as exc:
                raise StoreUnavailable(f"PostgreSQL read failed: {exc}") from exc
        raise AssertionError("unreachable")

    async def _read_stream(
        self, stream_id: str, from_version: int | None, backwards: bool, limit: int | None
    ) -> list[RecordedEvent]:
        if backwards:
            cond = "WHERE stream_id = %s AND version <= %s ORDER BY version DESC"
            start = from_version if from_version is not None else 1 << 62
        else:
            cond = "WHERE stream_id = %s AND version >= %s ORDER BY version"
            start = from_version if from_version is not None else 1
        query = self._q_select + sql.SQL(cond)
        params: list[Any] = [stream_id, start]
        if limit is not None:
            query += sql.SQL(" LIMIT %s")
            params.append(limit)
        return list(map(RecordedEvent.from_row, await self._fetch(query, params)))

    async def _read_requests(self, stream_id: str, request_ids: list[str]) -> list[RecordedEvent]:
        # ``metadata ? 'request_id'`` is the partial index's predicate, spelled out so
        # the planner can use the index.
        query = self._q_select + sql.SQL(
            "WHERE stream_id = %s AND metadata ? 'request_id' "
            "AND (metadata->>'request_id') = ANY(%s) ORDER BY version"
        )
        return list(map(RecordedEvent.from_row, await self._fetch(query, [stream_id, request_ids])))

    async def _read_requests_many(
        self, requests: dict[str, list[str]]
    ) -> dict[str, list[RecordedEvent]]:
        # One round trip for every stream: a lateral join probes the request index once
        # per (stream, id) pair, whatever the planner thinks of the arrays' sizes.
        streams = [s for s, ids in requests.items() for _ in ids]
        ids = [i for found in requests.values() for i in found]
        query = (
            sql.SQL("SELECT e.* FROM unnest(%s::text[], %s::text[]) AS r(s, id), LATERAL (")
            + self._q_select
            + sql.SQL(
                "WHERE stream_id = r.s AND metadata ? 'request_id' "
                "AND (metadata->>'request_id') = r.id) AS e ORDER BY e.stream_id, e.version"
            )
        )
        found: dict[str, list[RecordedEvent]] = {}
        for row in await self._fetch(query, [streams, ids]):
            event = RecordedEvent.from_row(row)
            found.setdefault(event.stream_id, []).append(event)
        return found

    async def _read_page(
        self, after: int, limit: int, flt: ReadFilter, max_bytes: int | None = None
    ) -> PageRead:
        # Every page is a bounded position range, not an open "position > after LIMIT n":
        # on a freshly loaded table without statistics the planner picked a bitmap scan
        # of everything after ``after`` plus a sort, making replays quadratic. Positions
        # are dense (assigned from the maximum under the append lock), so an unfiltered
        # page of ``limit`` events is the range (after, after + limit]; a filtered page
        # scans a wider window and reports how far it got.
        # One round trip: the head, and the events of the page up to it (the head comes
        # in a last column; with no events there is one row of NULLs and the head).
        window = (
            limit
            if flt.stream_prefix is None and flt.types is None
            else max(limit * 4, FILTER_WINDOW)
        )
        if max_bytes is None:
            max_bytes = self.page_max_bytes
        where: sql.Composable = sql.SQL("WHERE position > %s AND position <= least(h.head, %s)")
        range_params: list[Any] = [after, after + window]
        if flt.stream_prefix is not None:
            where += sql.SQL(" AND left(stream_id, %s) = %s")
            range_params += [len(flt.stream_prefix), flt.stream_prefix]
        if flt.types is not None:
            where += sql.SQL(" AND type = ANY(%s)")
            range_params.append(sorted(flt.types))
        # The quick way first, unless the last page needed the exact one: a page of
        # events each within limit-th of the budget needs no running sum.
        each = max(1, max_bytes // limit)
        if self._fast_pages:
            rows = await self._fetch(
                self._q_fast_start + where + self._q_fast_end,
                [each, each, each, *range_params, limit],
            )
            head = int(rows[0][-1])
            if rows[0][0] is None:  # no events: one row of NULLs and the head
                return PageRead([], min(head, after + window), head, 0, False)
            if not any(map(_BIG, rows)):  # all sent: within the budget
                taken, nbytes, full = take_rows(rows, limit, max_bytes)
                events = list(map(RecordedEvent.from_row, taken))
                scanned = events[-1].position if full else min(head, after + window)
                return PageRead(events, scanned, head, nbytes, full)
            del rows
        query = self._q_page_start + where + self._q_page_end
        rows = await self._fetch(
            query, [_RENDERED_PER_COST, max_bytes, *range_params, limit, max_bytes]
        )
        alone = rows[0][0] is not None and rows[0][9]
        if alone:  # it starts with an event not sent: read alone, a full page (of 1)
            rows = await self._fetch(query, [1 << 40, max_bytes, *range_params, 1, max_bytes])
        head = int(rows[0][-1])
        if rows[0][0] is None:  # no events: one row of NULLs and the head
            return PageRead([], min(head, after + window), head, 0, False)
        flags = list(map(_BIG, rows))
        sent = flags.index(True) if True in flags else len(rows)
        taken, nbytes, full = take_rows(rows[:sent], limit, max_bytes)
        # full: cut by the client, before an event not sent, or by the server's cut
        full = full or alone or len(taken) < len(rows) or bool(rows[-1][10])
        # the next page the quick way when this one's events would have gone so
        self._fast_pages = all(len(row[6]) + len(row[7]) <= each for row in taken)
        events = list(map(RecordedEvent.from_row, taken))
        scanned = events[-1].position if full else min(head, after + window)
        return PageRead(events, scanned, head, nbytes, full)

    async def _stream_version(self, stream_id: str) -> int:
        rows = await self._fetch(
            sql.SQL("SELECT coalesce(max(version), 0) FROM {} WHERE stream_id = %s").format(
                self._q_table
            ),
            (stream_id,),
        )
        return int(rows[0][0])

    async def _head(self) -> int:
        rows = await self._fetch(
            sql.SQL("SELECT coalesce(max(position), 0) FROM {}").format(self._q_table)
        )
        return int(rows[0][0])

    async def _save_snapshot(
        self, name: str, position: int, parts: Iterator[bytes], expected: int | None
    ) -> None:
        # On a pooled connection, not the writer's: appends go on meanwhile. Each part is
        # sent as a statement of its own, so libpq's buffers (which grow to twice the
        # largest message and never shrink while the connection lives) stay at a part's
        # size. A row of ``snapshots`` whose ``data`` is not empty was written whole by an
        # earlier release; ours are empty, the state is in ``snapshot_parts``.
        # A connection the server dropped while it was idle in the pool (a restart)
        # fails the first statement, before any part is drawn: the pool then checks its
        # connections and the write is made once more (the parts cannot be drawn twice).
        drawn = False

        def draw() -> Iterator[bytes]:
            nonlocal drawn
            for part in parts:
                drawn = True
                yield part

        for attempt in (1, 2):
            try:
                await self._snapshot_in(name, position, draw(), expected)
                return
            except _SnapshotFailed as failed:
                exc, committing = failed.cause, failed.committing
            if isinstance(exc, TimeoutError):  # a statement's, so not the COMMIT's
                raise StoreUnavailable(
                    f"PostgreSQL did not answer a snapshot write within {self._timeout}s"
                ) from exc
            # "no part drawn" alone does not tell the COMMIT was not sent: a snapshot
            # of no parts draws none
            retry = not drawn and not committing
            if attempt == 1 and retry and isinstance(exc, psycopg.OperationalError):
                log.warning("a snapshot write found its connection dropped (%s): again", exc)
                with contextlib.suppress(psycopg.Error, PoolTimeout, OSError):
                    await self._pool.check()
                continue
            raise StoreUnavailable(
                f"PostgreSQL snapshot write failed: {exc}", outcome_unknown=committing
            ) from exc

    async def _snapshot_in(
        self, name: str, position: int, parts: Iterator[bytes], expected: int | None
    ) -> None:
        """One attempt of :meth:`_save_snapshot`; a database failure comes as
        :class:`_SnapshotFailed`, saying whether it came during the COMMIT."""

        async def run(
            query: sql.Composed | sql.SQL, params: tuple[Any, ...]
        ) -> psycopg.AsyncCursor[Any]:
            async with asyncio.timeout(self._timeout):
                return await conn.execute(query, params)

        committing = False
        try:
            async with self._pool.connection() as conn, conn.transaction():
                # one writer of a name's snapshot at a time: the parts of two never mix
                await run(
                    sql.SQL("SELECT pg_advisory_xact_lock(%s)"),
                    (_lock_key(self.schema, "checkpoint", name),),
                )
                if expected is not None:
                    cur = await run(
                        sql.SQL("SELECT position FROM {} WHERE name = %s").format(
                            self._q_checkpoints
                        ),
                        (name,),
                    )
                    row = await cur.fetchone()
                    actual = row[0] if row else 0
                    if actual != expected:
                        raise CheckpointConflict(name, expected, actual)
                await run(
                    sql.SQL("DELETE FROM {} WHERE name = %s").format(self._q_snapshot_parts),
                    (name,),
                )
                insert = sql.SQL("INSERT INTO {} (name, part, data) VALUES (%s, %s, %b)").format(
                    self._q_snapshot_parts
                )
                for number, part in enumerate(parts):
                    await run(insert, (name, number, part))
                    del part
                await run(
                    sql.SQL(
                        "INSERT INTO {} (name, position, data) VALUES (%s, %s, '') "
                        "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
                        "data = excluded.data"
                    ).format(self._q_snapshots),
                    (name, position),
                )
                await run(
                    sql.SQL(
                        "INSERT INTO {} (name, position, updated_at) VALUES (%s, %s, now()) "
                        "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
                        "updated_at = excluded.updated_at"
                    ).format(self._q_checkpoints),
                    (name, position),
                )
                committing = True
        except (TimeoutError, psycopg.Error, PoolTimeout) as exc:
            raise _SnapshotFailed(exc, committing) from exc

    async def _load_snapshot(self, name: str) -> tuple[int, list[bytes]] | None:
        query = sql.SQL(
            "SELECT s.position, s.data, p.data FROM {} s LEFT JOIN {} p ON p.name = s.name "
            "WHERE s.name = %s ORDER BY p.part"
        ).format(self._q_snapshots, self._q_snapshot_parts)
        position: int | None = None
        whole: bytes | None = None
        parts: list[bytes] = []
        try:
            async with asyncio.timeout(self._timeout), self._pool.connection() as conn:
                # a row at a time (libpq's input buffer grows to the largest row it took)
                async for row in conn.cursor(binary=True).stream(query, (name,)):
                    position, data, part = row
                    if data and whole is None:  # written whole by an earlier release
                        whole = bytes(data)
                    if part is not None:
                        parts.append(bytes(part))
        except TimeoutError as exc:
            raise StoreUnavailable(f"PostgreSQL did not answer within {self._timeout}s") from exc
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreUnavailable(f"PostgreSQL read failed: {exc}") from exc
        if position is None:
            return None
        return int(position), [whole] if whole is not None else parts

    async def _get_checkpoint(self, name: str) -> int:
        rows = await self._fetch(
            sql.SQL("SELECT position FROM {} WHERE name = %s").format(self._q_checkpoints),
            (name,),
        )
        return int(rows[0][0]) if rows else 0

    # ----------------------------------------------------------------- shutdown
    async def _close(self) -> None:
        if self._index_task is not None:  # a build cut short is rebuilt at a later open
            self._index_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._index_task
        if self._committer is not None:
            await self._committer.stop()
        if self._listener_task is not None:
            self._listener_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener_task
        if self._writer is not None:
            await self._writer.close()
        await self._pool.close()
