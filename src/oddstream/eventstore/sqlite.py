"""SQLite adapter: WAL, one writer task with group commit, pooled reader threads.

Appends from any number of tasks are queued to a single writer task on the event loop.
Whatever has queued up while the previous transaction was committing goes into the next
one (group commit): one ``BEGIN IMMEDIATE`` … ``COMMIT`` and so one fsync for the lot,
each append still checked and failing on its own (see :mod:`.planner`). Readers use their
own connections on a small thread pool; WAL lets them read while the writer writes.

Durability: ``synchronous=FULL`` by default, so an acknowledged append survives a power
cut. ``synchronous="NORMAL"`` survives a crash of the process but may lose the last
transactions on power loss; it is several times faster for small commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

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
from .envelope import AppendResult, RecordedEvent
from .errors import (
    CheckpointConflict,
    ProjectionFailed,
    StoreUnavailable,
)
from .factory import check_synchronous
from .groupcommit import AppendJob, GroupCommitter, ProjectionJob
from .planner import BatchPlan, BatchState, ExistingEvent, Row, plan_batch
from .prepare import PreparedPart

SCHEMA_VERSION = 1
#: Rows of the latest commits kept in memory for live subscribers (at least this many,
#: unless they hold more than ``RECENT_BYTES`` of data and metadata).
RECENT_ROWS = 20_000
#: The rows kept for live subscribers hold at most about twice this many bytes.
RECENT_BYTES = 32 << 20
#: How long appends wait for another process to release SQLite's write lock.
BUSY_TIMEOUT = 30.0

#: A command's request id in an event's metadata (indexed per stream; see read_requests).
_REQUEST_EXPR = "json_extract(CAST(metadata AS TEXT), '$.request_id')"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS events (
    position       INTEGER PRIMARY KEY,
    stream_id      TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    event_id       BLOB    NOT NULL,
    type           TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    data           BLOB    NOT NULL,
    metadata       BLOB    NOT NULL,
    recorded_us    INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_stream_version ON events (stream_id, version);
CREATE UNIQUE INDEX IF NOT EXISTS events_event_id ON events (event_id);
CREATE INDEX IF NOT EXISTS events_request ON events (stream_id, {_REQUEST_EXPR})
    WHERE {_REQUEST_EXPR} IS NOT NULL;
CREATE TABLE IF NOT EXISTS checkpoints (
    name       TEXT PRIMARY KEY,
    position   INTEGER NOT NULL,
    updated_us INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    data     BLOB    NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshot_parts (
    name TEXT    NOT NULL,
    part INTEGER NOT NULL,
    data BLOB    NOT NULL,
    PRIMARY KEY (name, part)
);
"""

# A snapshot is its row in ``snapshots`` (position; ``data`` empty) and its parts in
# ``snapshot_parts``. A row whose ``data`` is not empty was written whole by an earlier
# release: that value is the snapshot's one part.
_SNAPSHOT_UPSERT = (
    "INSERT INTO snapshots (name, position, data) VALUES (?, ?, x'') ON CONFLICT (name) "
    "DO UPDATE SET position = excluded.position, data = excluded.data"
)
_SNAPSHOT_PART = "INSERT INTO snapshot_parts (name, part, data) VALUES (?, ?, ?)"
_SNAPSHOT_SELECT = (
    "SELECT s.position, s.data, p.data FROM snapshots s "
    "LEFT JOIN snapshot_parts p ON p.name = s.name WHERE s.name = ? ORDER BY p.part"
)
#: The page cache (KiB) of the connections a snapshot is written and read on: its pages
#: are written once and read once, so they pass through a small cache (spilling to the
#: WAL as they come) instead of filling a large one until the commit.
_SNAPSHOT_CACHE_KIB = 2048
_COLUMNS = (
    "position, stream_id, version, event_id, type, schema_version, data, metadata, recorded_us"
)
_INSERT = f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


class _Busy(Exception):
    """Another process holds SQLite's write lock; try again shortly."""


def _open_writer(path: Path, synchronous: str) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = _connect(str(path), synchronous)
    conn.executescript(_SCHEMA)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    # From now on a busy database must not block the event loop: the writer backs off
    # asynchronously instead (see _retry_busy).
    conn.execute("PRAGMA busy_timeout=0")
    return conn


def _close_quietly(opened: list[sqlite3.Connection]) -> None:
    """Close a snapshot's connection (rolling back what it did not commit)."""
    for conn in opened:
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        with contextlib.suppress(sqlite3.Error):
            conn.close()


async def _done(value: Any) -> Any:
    return value


def _connect(path: str, synchronous: str, timeout: float = 30.0) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=timeout)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA cache_size=-65536")
    return conn


class SqliteEventStore(EventStore):
    """The embedded event store. Open with :meth:`open`."""

    backend = "sqlite"

    def __init__(
        self,
        path: str,
        writer: sqlite3.Connection,
        *,
        synchronous: str,
        readers: int = 4,
        idle_recheck: float = DEFAULT_IDLE_RECHECK,
        follow_pace: float = DEFAULT_FOLLOW_PACE,
        commit_thread: bool = False,
        page_max_bytes: int = DEFAULT_PAGE_MAX_BYTES,
    ) -> None:
        """Use :meth:`open`; this takes an already prepared writer connection."""
        super().__init__(
            idle_recheck=idle_recheck, follow_pace=follow_pace, page_max_bytes=page_max_bytes
        )
        self.path = path
        self.synchronous = synchronous
        self._loop = asyncio.get_running_loop()
        self._writer_conn = writer
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="es-read")
        self._committer_thread = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="es-commit")
            if commit_thread
            else None
        )
        self._committer = GroupCommitter(self._write_appends, self._write_projection)
        self._recent: list[Row] = []
        self._recent_first = 0
        self._recent_bytes = 0
        #: a reader connection used on the event loop itself (see _read_requests)
        self._loop_conn: sqlite3.Connection | None = None

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        readers: int = 4,
        idle_recheck: float = DEFAULT_IDLE_RECHECK,
        follow_pace: float = DEFAULT_FOLLOW_PACE,
        commit_thread: bool = False,
        page_max_bytes: int = DEFAULT_PAGE_MAX_BYTES,
    ) -> SqliteEventStore:
        """Open (creating if needed) the store in the SQLite file at ``path``.

        By default a group commit runs on the event loop: the fastest for one caller
        after another. ``commit_thread=True`` runs it on a thread of its own instead, so
        the loop keeps serving while the commit waits for the disk (what a server with
        many clients wants; ``oddstream serve`` sets it). ``page_max_bytes``: the byte
        budget of a page of the log (:attr:`~EventStore.page_max_bytes`).
        """
        synchronous = check_synchronous(synchronous)
        check_follow_pace(follow_pace)
        check_page_max_bytes(page_max_bytes)
        path = Path(path)
        try:
            # in a thread: creating the schema may wait for another process's lock
            writer = await asyncio.to_thread(_open_writer, path, synchronous)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"cannot open SQLite store at {str(path)!r}: {exc}") from exc
        store = cls(
            str(path),
            writer,
            synchronous=synchronous,
            readers=readers,
            idle_recheck=idle_recheck,
            follow_pace=follow_pace,
            commit_thread=commit_thread,
            page_max_bytes=page_max_bytes,
        )
        await store.head_position()
        return store

    # ----------------------------------------------------------------- writer side
    async def _submit(self, parts: list[PreparedPart]) -> list[AppendResult]:
        return await self._committer.append(parts)

    async def _submit_many(
        self, requests: list[list[PreparedPart]]
    ) -> list[list[AppendResult] | BaseException]:
        return await self._committer.append_many(requests)

    async def _commit_projection(
        self, name: str, position: int, statements: list[SqlStatement], expected: int | None
    ) -> None:
        await self._committer.project(name, position, statements, expected)

    # The writes run on the event loop and call SQLite synchronously: a hand-off to a
    # thread and back costs more here than a whole commit (see docs/eventstore.md). While
    # one group commits, the loop queues the next.

    async def _write_appends(self, group: list[AppendJob]) -> None:
        if self._committer_thread is None:
            result = await self._retry_busy(self._commit_group_db, group)
        else:
            result = await self._retry_busy_async(
                lambda: self._loop.run_in_executor(
                    self._committer_thread, self._commit_group_db, group
                )
            )
        self._finish_group(group, result)

    async def _write_projection(self, job: ProjectionJob) -> None:
        await self._retry_busy(self._write_projection_sync, job)

    @staticmethod
    async def _retry_busy(write: Any, arg: Any) -> Any:
        return await SqliteEventStore._retry_busy_async(lambda: _done(write(arg)))

    @staticmethod
    async def _retry_busy_async(attempt: Any) -> Any:
        delay = 0.001
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                return await attempt()
            except _Busy:
                if time.monotonic() > deadline:
                    raise StoreUnavailable(
                        f"another process held the SQLite write lock for {BUSY_TIMEOUT}s"
                    ) from None
                await asyncio.sleep(delay)  # another process is writing
                delay = min(delay * 2, 0.05)

    @staticmethod
    def _begin(conn: sqlite3.Connection) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise _Busy from exc
            raise

    def _commit_group_db(self, group: list[AppendJob]) -> BatchPlan | StoreUnavailable:
        """The database side of a group commit (safe to run on the commit thread)."""
        conn = self._writer_conn
        try:
            self._begin(conn)
            try:
                plan = plan_batch(self._batch_state(conn, group), [j.parts for j in group])
                if plan.rows:
                    conn.executemany(_INSERT, plan.rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:  # the database itself failed (I/O, full)
            if isinstance(exc.__cause__, _Busy) or "locked" in str(exc):
                raise
            return StoreUnavailable(f"SQLite failed: {exc}")
        # Anything else (a constraint, a value SQLite refuses) rolled the group back and
        # propagates: the committer then retries its appends one by one.
        return plan

    def _finish_group(self, group: list[AppendJob], result: BatchPlan | StoreUnavailable) -> None:
        """The event-loop side: answer the callers, feed live readers."""
        if isinstance(result, StoreUnavailable):
            for job in group:
                job.settle(result)
            return
        for job, outcome in zip(group, result.outcomes, strict=True):
            job.settle(outcome)
        if result.rows:
            self._remember(result.rows)
            self._committed_here(result.last_position)

    @staticmethod
    def _batch_state(conn: sqlite3.Connection, group: list[AppendJob]) -> BatchState:
        versions: dict[str, int] = {}
        existing: dict[bytes, ExistingEvent] = {}
        for job in group:
            for part in job.parts:
                if part.stream_id not in versions:
                    row = conn.execute(
                        "SELECT max(version) FROM events WHERE stream_id = ?", (part.stream_id,)
                    ).fetchone()
                    versions[part.stream_id] = row[0] or 0
                if part.supplied:
                    for eid, supplied in zip(part.event_ids, part.supplied, strict=True):
                        if supplied:
                            row = conn.execute(
                                "SELECT stream_id, version, position FROM events "
                                "WHERE event_id = ?",
                                (eid,),
                            ).fetchone()
                            if row is not None:
                                existing[eid] = ExistingEvent(*row)
        last = conn.execute("SELECT max(position) FROM events").fetchone()[0] or 0
        return BatchState(versions, existing, last, time.time_ns() // 1000)

    def _write_projection_sync(self, job: ProjectionJob) -> None:
        conn = self._writer_conn
        self._begin(conn)
        try:
            if job.expected is not None:
                row = conn.execute(
                    "SELECT position FROM checkpoints WHERE name = ?", (job.name,)
                ).fetchone()
                actual = row[0] if row else 0
                if actual != job.expected:
                    raise CheckpointConflict(job.name, job.expected, actual)
            try:
                for st in job.statements:
                    if st.many:
                        conn.executemany(st.sql, st.params)
                    else:
                        conn.execute(st.sql, st.params)
            except (sqlite3.Error, ValueError, TypeError, OverflowError) as exc:
                raise ProjectionFailed(f"projection {job.name!r}: {exc}") from exc
            conn.execute(
                "INSERT INTO checkpoints (name, position, updated_us) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
                "updated_us = excluded.updated_us",
                (job.name, job.position, time.time_ns() // 1000),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        job.settle(None)

    # ----------------------------------------------------------------- reader side
    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, self.synchronous)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    async def _read(self, fn: Any, *args: Any) -> Any:
        try:
            return await self._loop.run_in_executor(self._readers, fn, *args)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite read failed: {exc}") from exc

    def _read_stream_sync(
        self, stream_id: str, from_version: int | None, backwards: bool, limit: int | None
    ) -> list[RecordedEvent]:
        if backwards:
            sql = (
                f"SELECT {_COLUMNS} FROM events WHERE stream_id = ? AND version <= ? "
                "ORDER BY version DESC"
            )
            start = from_version if from_version is not None else 1 << 62
        else:
            sql = (
                f"SELECT {_COLUMNS} FROM events WHERE stream_id = ? AND version >= ? "
                "ORDER BY version"
            )
            start = from_version if from_version is not None else 1
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._reader().execute(sql, (stream_id, start)).fetchall()
        return list(map(RecordedEvent.from_row, rows))

    async def _read_stream(
        self, stream_id: str, from_version: int | None, backwards: bool, limit: int | None
    ) -> list[RecordedEvent]:
        return await self._read(self._read_stream_sync, stream_id, from_version, backwards, limit)

    def _read_requests_sync(
        self, stream_id: str, request_ids: list[str], conn: sqlite3.Connection | None = None
    ) -> list[RecordedEvent]:
        # Pinned to the index: without statistics SQLite prefers (stream_id, version) and
        # would read the whole stream.
        marks = ", ".join("?" * len(request_ids))
        sql = (
            f"SELECT {_COLUMNS} FROM events INDEXED BY events_request "
            f"WHERE stream_id = ? AND {_REQUEST_EXPR} IN ({marks}) "
            "ORDER BY version"
        )
        rows = (conn or self._reader()).execute(sql, (stream_id, *request_ids)).fetchall()
        return list(map(RecordedEvent.from_row, rows))

    async def _read_requests(self, stream_id: str, request_ids: list[str]) -> list[RecordedEvent]:
        # A point lookup in an index (tens of µs) is cheaper than the hand-off to a
        # reader thread and back; a writer on the loop asks one for each command whose
        # request id it does not hold. A WAL reader does not wait for the writer; if the
        # database is busy all the same (a checkpoint's recovery), the thread path waits.
        try:
            return self._read_requests_sync(stream_id, request_ids, self._loop_reader())
        except sqlite3.Error:
            return await self._read(self._read_requests_sync, stream_id, request_ids)

    def _loop_reader(self) -> sqlite3.Connection:
        conn = self._loop_conn
        if conn is None:
            conn = self._loop_conn = _connect(self.path, self.synchronous, timeout=0.0)
            conn.execute("PRAGMA query_only=ON")
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    def _read_page_sync(self, after: int, limit: int, flt: ReadFilter, max_bytes: int) -> PageRead:
        conn = self._reader()
        head = conn.execute("SELECT max(position) FROM events").fetchone()[0] or 0
        sql = f"SELECT {_COLUMNS} FROM events WHERE position > ? AND position <= ?"
        params: list[Any] = [after, head]
        if flt.stream_prefix is not None:
            sql += " AND substr(stream_id, 1, ?) = ?"
            params += [len(flt.stream_prefix), flt.stream_prefix]
        if flt.types is not None:
            sql += f" AND type IN ({', '.join('?' * len(flt.types))})"
            params += sorted(flt.types)
        sql += " ORDER BY position LIMIT ?"
        params.append(limit)
        cursor = conn.execute(sql, params)
        try:  # row by row: a page of large events stops at the budget, not after it
            rows, nbytes, full = take_rows(cursor, limit, max_bytes)
        finally:
            cursor.close()  # ends the statement's read of the snapshot
        events = list(map(RecordedEvent.from_row, rows))
        return PageRead(events, events[-1].position if full else head, head, nbytes, full)

    async def _read_page(
        self, after: int, limit: int, flt: ReadFilter, max_bytes: int | None = None
    ) -> PageRead:
        if max_bytes is None:
            max_bytes = self.page_max_bytes
        recent = self._recent
        first = self._recent_first
        if recent and first <= after + 1 <= first + len(recent) - 1:
            # Live tailing: the page is among the rows this process just committed, so
            # it comes from memory, without a thread hop or a query.
            start = after + 1 - first
            last = first + len(recent) - 1
            prefix, types = flt.stream_prefix, flt.types
            if prefix is None and types is None:
                rows, nbytes, full = take_rows(recent[start : start + limit], limit, max_bytes)
            else:
                matching = (
                    row
                    for row in recent[start:]
                    if (prefix is None or row[1].startswith(prefix))
                    and (types is None or row[4] in types)
                )
                rows, nbytes, full = take_rows(itertools.islice(matching, limit), limit, max_bytes)
            events = list(map(RecordedEvent.from_row, rows))
            scanned = events[-1].position if full else last
            return PageRead(events, scanned, last, nbytes, full)
        result: PageRead = await self._read(self._read_page_sync, after, limit, flt, max_bytes)
        return result

    def _remember(self, rows: list[Row]) -> None:
        """Keep the rows just committed for live readers. Only a contiguous run of
        positions is kept: a gap means another process wrote, so start again."""
        recent = self._recent
        if not recent or rows[0][0] != self._recent_first + len(recent):
            recent.clear()
            self._recent_first = rows[0][0]
            self._recent_bytes = 0
        recent.extend(rows)
        self._recent_bytes += sum([len(row[6]) + len(row[7]) for row in rows])
        if len(recent) > 2 * RECENT_ROWS or self._recent_bytes > 2 * RECENT_BYTES:
            # down to RECENT_ROWS rows and RECENT_BYTES bytes (readers further behind read
            # the database)
            drop = max(0, len(recent) - RECENT_ROWS)
            kept = self._recent_bytes - sum([len(row[6]) + len(row[7]) for row in recent[:drop]])
            while kept > RECENT_BYTES and drop < len(recent) - 1:
                kept -= len(recent[drop][6]) + len(recent[drop][7])
                drop += 1
            del recent[:drop]
            self._recent_first += drop
            self._recent_bytes = kept

    def _scalar_sync(self, sql: str, params: tuple[Any, ...]) -> Any:
        row = self._reader().execute(sql, params).fetchone()
        return row[0] if row else None

    async def _stream_version(self, stream_id: str) -> int:
        value = await self._read(
            self._scalar_sync, "SELECT max(version) FROM events WHERE stream_id = ?", (stream_id,)
        )
        return value or 0

    async def _head(self) -> int:
        return await self._read(self._scalar_sync, "SELECT max(position) FROM events", ()) or 0

    async def _save_snapshot(
        self, name: str, position: int, parts: Iterator[bytes], expected: int | None
    ) -> None:
        # On a connection of its own (a long-lived one's cached statement would keep the
        # last part bound), driven from the loop: each part is drawn (encoded) here while
        # the one before is being written, so about two parts exist at a time. One
        # thread runs the connection's calls in order, the clean-up last.
        worker = ThreadPoolExecutor(1, thread_name_prefix="es-snapshot")
        opened: list[sqlite3.Connection] = []

        def run(fn: Any, *args: Any) -> asyncio.Future[Any]:
            return self._loop.run_in_executor(worker, fn, *args)

        try:
            await run(self._begin_snapshot_sync, opened, name, expected)
            conn = opened[0]
            writing: asyncio.Future[Any] | None = None
            for number, part in enumerate(parts):
                if writing is not None:
                    await writing
                writing = run(conn.execute, _SNAPSHOT_PART, (name, number, part))
                del part
            if writing is not None:
                await writing
            await run(self._commit_snapshot_sync, conn, name, position)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite snapshot write failed: {exc}") from exc
        finally:
            worker.submit(_close_quietly, opened)  # after the calls queued before it
            worker.shutdown(wait=False)

    def _snapshot_connect(self, timeout: float) -> sqlite3.Connection:
        conn = _connect(self.path, self.synchronous, timeout=timeout)
        conn.execute(f"PRAGMA cache_size=-{_SNAPSHOT_CACHE_KIB}")
        return conn

    def _begin_snapshot_sync(
        self, opened: list[sqlite3.Connection], name: str, expected: int | None
    ) -> None:
        conn = self._snapshot_connect(BUSY_TIMEOUT)
        opened.append(conn)
        conn.execute("BEGIN IMMEDIATE")
        if expected is not None:
            row = conn.execute(
                "SELECT position FROM checkpoints WHERE name = ?", (name,)
            ).fetchone()
            actual = row[0] if row else 0
            if actual != expected:
                raise CheckpointConflict(name, expected, actual)
        conn.execute("DELETE FROM snapshot_parts WHERE name = ?", (name,))

    def _commit_snapshot_sync(self, conn: sqlite3.Connection, name: str, position: int) -> None:
        conn.execute(_SNAPSHOT_UPSERT, (name, position))
        conn.execute(
            "INSERT INTO checkpoints (name, position, updated_us) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
            "updated_us = excluded.updated_us",
            (name, position, time.time_ns() // 1000),
        )
        conn.execute("COMMIT")

    async def _load_snapshot(self, name: str) -> tuple[int, list[bytes]] | None:
        def load() -> tuple[int, list[bytes]] | None:
            conn = self._snapshot_connect(30.0)  # of its own, as for writes
            try:
                rows = conn.execute(_SNAPSHOT_SELECT, (name,))
                first = rows.fetchone()
                if first is None:
                    return None
                position, whole, part = first
                if whole:  # written whole by an earlier release
                    return position, [whole]
                parts = [] if part is None else [part]
                parts += (row[2] for row in rows)
                return position, parts
            finally:
                conn.close()

        result: tuple[int, list[bytes]] | None = await self._read(load)
        return result

    async def _get_checkpoint(self, name: str) -> int:
        value = await self._read(
            self._scalar_sync, "SELECT position FROM checkpoints WHERE name = ?", (name,)
        )
        return value or 0

    # ----------------------------------------------------------------- shutdown
    async def _close(self) -> None:
        await self._committer.stop()
        if self._committer_thread is not None:
            await asyncio.to_thread(self._committer_thread.shutdown, True)
        with contextlib.suppress(sqlite3.Error):
            self._writer_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._writer_conn.close()
        await asyncio.to_thread(self._readers.shutdown, True)
        with self._reader_lock:
            for conn in self._reader_conns:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._reader_conns.clear()
