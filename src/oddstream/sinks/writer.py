"""The JDBC sink's writer: records in, rows out, the position committed with them.

:class:`JdbcSink` writes a batch of :class:`~oddstream.sinks.schema.SinkRecord` into the
target database in **one transaction together with the sink's position** (the row of
``oddstream_sink_offsets`` named after the sink), and only from the position it expects:

- the stored position equals the batch's ``after``: the rows are written and the position
  moves to the batch's ``position``, both or neither;
- the stored position is already at or past ``position``: the batch was committed before
  (a retry after a lost acknowledgement, a restart that read an older checkpoint):
  nothing is written again;
- anything else: :class:`~oddstream.sinks.errors.PositionConflict`, nothing written.

Tables are created (``auto.create``) and evolved (``auto.evolve``: ADD COLUMN, never a
drop) before the batch's transaction: the DDL only ever adds, so running it again is
harmless, and MariaDB's DDL commits by itself anyway.

The writer is synchronous (each driver's DB-API connection) and used by one thread at a
time; a consumer runs it on a thread. It keeps one connection.

**A deadline for each call** (``db.call.timeout.ms``). A server that stops answering
without closing the connection (frozen, or behind a network that drops packets) would
block the driver for ever. Every call of the writer — connecting, reading the position,
each statement of a batch, the commit — must get its answer within the deadline, renewed
at each statement (so a batch of many statements is not cut short for being long, only a
statement the database does not answer). Past it a :class:`~.watchdog.Watchdog` thread
breaks the connection, the blocked call raises, and the writer raises
:class:`~.failures.NoAnswer` (the target unavailable, never a record's fault) and drops
the connection. :meth:`JdbcSink.interrupt` breaks a call in flight at once (a service
stopping).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal

from .config import JdbcSinkConfig
from .dialects import Column, Dialect, Row, dialect_for
from .errors import PositionConflict, RecordError, SchemaMismatch, TableMissing
from .failures import NoAnswer
from .schema import FieldSchema, KeySchema, SinkRecord
from .watchdog import Watchdog

Kind = Literal["insert", "upsert", "update", "delete"]
#: Layouts are cached by the identity of the schemas (a registry's parsed schema is one
#: object); at most this many, so schemas made anew for every record cost no memory.
_CACHED_LAYOUTS = 256


@dataclass(frozen=True)
class WriteResult:
    """What one :meth:`JdbcSink.write` did. ``already_written``: the target already held
    the batch (its position was at or past ``position``), nothing was written."""

    position: int
    rows: int = 0
    deleted: int = 0
    skipped: int = 0
    already_written: bool = False


class _Layout:
    """The columns one (table, key schema, value schema) writes, and how a record
    becomes a row (Confluent's FieldsMetadata for the pk mode)."""

    __slots__ = ("columns", "key_columns", "key_of", "row_of")

    def __init__(
        self,
        columns: tuple[Column, ...],
        row_of: Callable[[SinkRecord], Row],
        key_columns: tuple[Column, ...],
        key_of: Callable[[SinkRecord], Row] | None,
    ) -> None:
        self.columns = columns
        self.row_of = row_of
        self.key_columns = key_columns
        self.key_of = key_of


def _getter(names: Sequence[str]) -> Callable[[Mapping[str, Any]], Row]:
    """A C-speed tuple of ``names`` from a mapping; an absent name reads as ``None``."""
    if not names:
        return lambda _m: ()
    if len(names) == 1:
        only = names[0]
        return lambda m: (m.get(only),)
    fast = itemgetter(*names)

    def get(m: Mapping[str, Any]) -> Row:
        try:
            return fast(m)
        except KeyError:
            return tuple(m.get(n) for n in names)

    return get


def _adapted(
    get: Callable[[Any], Row], adapters: Sequence[tuple[int, Callable[[Any], Any]]]
) -> Callable[[Any], Row]:
    if not adapters:
        return get

    def row(source: Any) -> Row:
        values = list(get(source))
        for i, adapt in adapters:
            values[i] = adapt(values[i])
        return tuple(values)

    return row


class JdbcSink:
    """A JDBC sink's writer for one connector (its ``name`` keys its position)."""

    def __init__(self, name: str, config: JdbcSinkConfig, *, dialect: Dialect | None = None):
        if not name or not isinstance(name, str) or len(name) > 255:
            raise ValueError("a sink's name is a string of 1 to 255 characters")
        self.name = name
        self.config = config
        self.dialect = dialect or dialect_for(config.connection, config.timezone)
        self._conn: Any = None
        self._tables: dict[str, str] = {}  # topic -> table
        self._columns: dict[str, list[str]] = {}  # table -> columns it has, as last seen
        self._layouts: dict[tuple[str, int, int], tuple[Any, Any, _Layout]] = {}
        self._key_layouts: dict[int, tuple[Any, tuple[tuple[Column, ...], Any]]] = {}
        self._watch = Watchdog(f"sink-{name}", config.call_timeout)
        self._in_call = False

    # --- connection ----------------------------------------------------------------

    def open(self) -> None:
        """Connect and make sure the offsets table exists."""
        if self._conn is not None:
            return
        with self._answering():
            self._conn = self.dialect.connect(self.config.connection, self._watch.timeout)
            self._watch.attach(self.dialect.breaker(self._conn))
            self._watch.renew()  # an interrupt while connecting ends the call here
            cur = self._conn.cursor()
            try:
                self.dialect.begin(self._conn)
                self.dialect.bound_statements(cur, self._watch.timeout)
                self.dialect.ensure_offsets(cur)
                self.dialect.commit(self._conn)
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        """Close the connection (and end the watchdog's thread)."""
        conn, self._conn = self._conn, None
        self._watch.attach(None)  # before the socket closes: its number may be reused
        self._watch.stop()
        if conn is not None:
            try:
                conn.close()
            finally:
                self._forget()

    def interrupt(self) -> bool:
        """Break the connection of the call in flight, if any, from any thread: it raises
        :class:`~.failures.NoAnswer` at once. Answers whether a call was in flight."""
        return self._watch.interrupt()

    @contextlib.contextmanager
    def _answering(self) -> Iterator[None]:
        """One call to the database, under the deadline (calls within it share it)."""
        if self._in_call:
            yield
            return
        self._in_call = True
        self._watch.arm()
        try:
            yield
        except BaseException as exc:
            fired = self._watch.disarm()
            if fired is None:
                raise
            self._discard()
            if fired == "interrupted":
                raise NoAnswer("the call to the database was interrupted") from exc
            raise NoAnswer(
                f"no answer from the database within {self._watch.timeout:g} s (db.call.timeout.ms)"
            ) from exc
        else:
            if self._watch.disarm() is not None:
                self._discard()  # broken just as the answer came: of no use any more
        finally:
            self._in_call = False

    def _discard(self) -> None:
        """Drop a connection that was broken (closing it may fail: it is gone anyway)."""
        with contextlib.suppress(Exception):
            self.close()

    def __enter__(self) -> JdbcSink:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _forget(self) -> None:
        """Drop what was learnt of the tables (after a failure they may differ)."""
        self._columns.clear()

    @property
    def connection(self) -> Any:
        if self._conn is None:
            self.open()
        return self._conn

    def stored_position(self) -> int | None:
        """The position committed with the last batch, ``None`` if the target holds none
        (the sink starts from the beginning)."""
        with self._answering():
            conn = self.connection
            try:  # a plain read: no write lock (SQLite) nor row lock taken
                return self.dialect.lock_position(conn.cursor(), self.name, lock=False)
            finally:
                self.dialect.rollback(conn)

    def clear(self, topics: Iterable[str]) -> None:
        """Empty the tables of ``topics`` (those that exist) and forget the stored
        position, in one transaction: the sink then starts from the beginning, as a
        rebuild does. A table is emptied, never dropped."""
        with self._answering():
            conn = self.connection
            cur = conn.cursor()
            tables = [self.table_for(topic) for topic in topics]
            existing = [table for table in tables if self._reflect(cur, table) is not None]
            self._watch.renew()
            self.dialect.begin(conn)
            try:
                for table in existing:
                    self._watch.renew()
                    self.dialect.clear_table(cur, table)
                self.dialect.forget_position(cur, self.name)
                self.dialect.commit(conn)
            except BaseException:
                self.dialect.rollback(conn)
                raise

    # --- records to rows ------------------------------------------------------------

    def table_for(self, topic: str) -> str:
        """The table of ``topic``'s records, checked as an identifier (cached)."""
        table = self._tables.get(topic)
        if table is None:
            table = self.config.table_name(topic)
            self.dialect.check_table(table)  # unfit as an identifier, or the sink's own
            self._tables[topic] = table
        return table

    def _key_layout(self, key_schema: KeySchema | None) -> tuple[tuple[Column, ...], Any]:
        """Key columns from the record's key (pk.mode=record_key) and how to read them."""
        cached = self._key_layouts.get(id(key_schema))
        if cached is not None and cached[0] is key_schema:
            return cached[1]
        pk_fields = self.config.pk_fields
        if key_schema is None:
            raise RecordError("pk.mode is record_key but the record has no key schema")
        if isinstance(key_schema, FieldSchema):
            if len(pk_fields) != 1:
                raise SchemaMismatch(
                    "the record key is a primitive: pk.fields must name exactly one column "
                    f"(got {list(pk_fields)})"
                )
            field = FieldSchema(
                pk_fields[0], key_schema.type, False, key_schema.logical, key_schema.scale
            )
            columns: tuple[Column, ...] = (Column(pk_fields[0], field, key=True),)
            adapt = self.dialect.adapter(field) or (lambda value: value)

            def key_of(record: SinkRecord) -> Row:
                if record.key is None:
                    raise RecordError("pk.mode is record_key but the record's key is null")
                return (adapt(record.key),)

        else:
            names = list(pk_fields) or list(key_schema.names)
            missing = [n for n in names if n not in key_schema]
            if missing:
                raise SchemaMismatch(f"pk.fields {missing} are not fields of the record key")
            columns = tuple(Column(n, key_schema[n], key=True) for n in names)
            get = _getter(names)
            adapters = [
                (i, a)
                for i, c in enumerate(columns)
                if (a := self.dialect.adapter(c.field)) is not None
            ]
            key_get = _adapted(get, adapters)

            def key_of(record: SinkRecord) -> Row:
                if not isinstance(record.key, Mapping):
                    raise RecordError("the record key is not a struct as its schema says")
                return key_get(record.key)

        if len(self._key_layouts) >= _CACHED_LAYOUTS:
            self._key_layouts.clear()
        self._key_layouts[id(key_schema)] = (key_schema, (columns, key_of))
        return columns, key_of

    def _layout(self, record: SinkRecord) -> _Layout:
        value_schema = record.value_schema
        key_schema = record.key_schema
        table = self.table_for(record.topic)
        cache_key = (table, id(key_schema), id(value_schema))
        cached = self._layouts.get(cache_key)
        if cached is not None and cached[0] is key_schema and cached[1] is value_schema:
            return cached[2]
        if value_schema is None:
            raise RecordError("a record with a value needs its value schema")
        mode = self.config.pk_mode
        whitelist = set(self.config.fields_whitelist)

        def kept(f: FieldSchema) -> bool:
            return not whitelist or f.name in whitelist

        key_columns: tuple[Column, ...] = ()
        key_of = None
        if mode == "record_key":
            key_columns, key_of = self._key_layout(key_schema)
            key_names = {c.name for c in key_columns}
            others = [f for f in value_schema.fields if f.name not in key_names and kept(f)]
        elif mode == "record_value":
            names = list(self.config.pk_fields) or list(value_schema.names)
            missing = [n for n in names if n not in value_schema]
            if missing:
                raise SchemaMismatch(f"pk.fields {missing} are not fields of the record value")
            key_columns = tuple(Column(n, value_schema[n], key=True) for n in names)
            others = [f for f in value_schema.fields if f.name not in set(names) and kept(f)]
        else:
            others = [f for f in value_schema.fields if kept(f)]
        value_columns = tuple(Column(f.name, f, key=False) for f in others)
        columns = key_columns + value_columns
        adapters = [
            (i, a)
            for i, c in enumerate(columns)
            if (a := self.dialect.adapter(c.field)) is not None
        ]
        if mode == "record_key":
            assert key_of is not None
            value_get = _getter([c.name for c in value_columns])
            kof = key_of
            offset = len(key_columns)
            value_adapters = [(i - offset, a) for i, a in adapters if i >= offset]
            vget = _adapted(value_get, value_adapters)

            def row_of(record: SinkRecord) -> Row:
                return kof(record) + vget(record.value)

        else:
            get = _adapted(_getter([c.name for c in columns]), adapters)

            def row_of(record: SinkRecord) -> Row:
                return get(record.value)

        layout = _Layout(columns, row_of, key_columns, key_of)
        if len(self._layouts) >= _CACHED_LAYOUTS:
            self._layouts.clear()  # schemas made anew for each record: keep memory bounded
        self._layouts[cache_key] = (key_schema, value_schema, layout)
        return layout

    def _runs(self, records: Sequence[SinkRecord]) -> tuple[list[_Run], int]:
        """The batch as runs of one kind of write to one table with one layout, in
        order; tombstones skipped when deletes are off (counted)."""
        runs: list[_Run] = []
        skipped = 0
        mode: Kind = self.config.insert_mode
        last: _Run | None = None
        # records of one topic and schemas in a row (the usual batch) reuse the last
        # record's layout and run: the per-record work is then the row itself
        seen: tuple[str, Any, Any] | None = None
        rows: list[Row] = []
        row_of: Callable[[SinkRecord], Row] | None = None
        n_key = 0
        for index, record in enumerate(records):
            try:
                if (
                    seen is not None
                    and row_of is not None
                    and record.value is not None
                    and record.value_schema is seen[2]
                    and record.key_schema is seen[1]
                    and record.topic == seen[0]
                ):
                    row = row_of(record)
                    if n_key < 0:
                        rows.append(row)
                    else:
                        assert last is not None
                        last.add(row, row[:n_key])
                    continue
                seen = None
                table = self.table_for(record.topic)
                if record.value is None:
                    if not self.config.delete_enabled:
                        skipped += 1
                        continue
                    if record.key is None:
                        raise RecordError("a tombstone without a key deletes nothing")
                    key_columns, key_of = self._key_layout(record.key_schema)
                    row = key_of(record)
                    if last is None or not last.same("delete", table, key_columns):
                        last = _Run("delete", table, key_columns, None)
                        runs.append(last)
                    last.add(row, row)
                    continue
                layout = self._layout(record)
                row = layout.row_of(record)
                if last is None or not last.same(mode, table, layout):
                    last = _Run(mode, table, layout.columns, layout)
                    runs.append(last)
                if mode == "insert" or not self.dialect.unique_keys_per_statement:
                    n_key = -1  # in log order: the database applies a key's writes in turn
                    rows = last.rows
                    rows.append(row)
                else:
                    n_key = len(layout.key_columns)
                    last.add(row, row[:n_key])
                seen = (record.topic, record.key_schema, record.value_schema)
                row_of = layout.row_of
            except RecordError as exc:
                if exc.index is None:
                    exc.index = index
                raise
        for run in runs:
            if not run.by_key:
                run.count = len(run.rows)
        return runs, skipped

    # --- tables ----------------------------------------------------------------------

    def _prepare_tables(self, runs: Iterable[_Run]) -> None:
        """Create and evolve the tables the runs write (committed before the batch)."""
        dialect = self.dialect
        conn = self.connection
        cur = conn.cursor()
        done: set[tuple[str, int]] = set()
        for run in runs:
            if (run.table, id(run.columns)) in done:
                continue
            done.add((run.table, id(run.columns)))
            have = self._columns.get(run.table)
            if have is None:
                have = self._reflect(cur, run.table)
            if have is None:
                if run.kind == "delete":
                    run.skip = True  # nothing to delete from a table that does not exist
                    continue
                if not self.config.auto_create:
                    raise TableMissing(
                        f"table {run.table!r} does not exist and auto.create is false"
                    )
                try:
                    self._ddl(conn, cur, [dialect.create_table(run.table, run.columns)])
                except Exception:
                    if self._reflect(cur, run.table) is None:
                        raise
                    # another writer created it since we looked (two replays into a
                    # new database): write into it, evolved below if it lacks columns
                have = self._reflect(cur, run.table) or []
            missing = [
                c for c in run.columns if not any(dialect.same_column(c.name, h) for h in have)
            ]
            if not missing:
                continue
            names = [c.name for c in missing]
            if not self.config.auto_evolve:
                raise SchemaMismatch(
                    f"table {run.table!r} lacks columns {names} and auto.evolve is false"
                )
            for c in missing:
                if c.key:
                    raise SchemaMismatch(
                        f"table {run.table!r} lacks key column {c.name!r}: a primary key "
                        "is never changed by evolution"
                    )
                if not c.field.optional and not c.field.has_default:
                    raise SchemaMismatch(
                        f"cannot add column {c.name!r} to table {run.table!r}: the field "
                        "is neither optional nor has a default value"
                    )
            self._ddl(conn, cur, [dialect.add_column(run.table, c) for c in missing])
            self._reflect(cur, run.table)

    def _reflect(self, cur: Any, table: str) -> list[str] | None:
        self._watch.renew()
        try:
            have = self.dialect.existing_columns(cur, table)
        finally:
            self.dialect.rollback(self.connection)
        if have is None:
            self._columns.pop(table, None)
        else:
            self._columns[table] = have
        return have

    def _ddl(self, conn: Any, cur: Any, statements: Sequence[str]) -> None:
        self.dialect.begin(conn)
        try:
            for statement in statements:
                self._watch.renew()
                cur.execute(statement)
            self.dialect.commit(conn)
        except BaseException:
            self.dialect.rollback(conn)
            raise

    # --- the batch -------------------------------------------------------------------

    def write(self, records: Sequence[SinkRecord], *, after: int, position: int) -> WriteResult:
        """Write ``records`` — the batch ``(after, position]`` of the log — and move the
        stored position from ``after`` to ``position`` in the same transaction."""
        if position < after:
            raise ValueError(f"a batch ends at or after its start ({after} > {position})")
        runs, skipped = self._runs(records)
        try:
            with self._answering():
                self._prepare_tables(runs)
                return self._commit(runs, skipped, after, position)
        except BaseException:
            self._forget()
            raise

    def _commit(self, runs: Sequence[_Run], skipped: int, after: int, position: int) -> WriteResult:
        dialect = self.dialect
        conn = self.connection
        cur = conn.cursor()
        self._watch.renew()  # the tables' preparation may have taken most of the last one
        dialect.begin(conn)
        try:
            stored = dialect.lock_position(cur, self.name)
            current = stored if stored is not None else 0
            if stored is not None and stored >= position and position > after:
                dialect.rollback(conn)
                return WriteResult(stored, skipped=skipped, already_written=True)
            if current != after:
                raise PositionConflict(self.name, after, stored)
            rows = deleted = 0
            for run in runs:
                if run.skip or not run.count:
                    continue
                batch = run.batch()
                self._watch.renew()
                if run.kind == "insert":
                    dialect.insert(cur, run.table, run.columns, batch)
                elif run.kind == "upsert":
                    dialect.upsert(cur, run.table, run.columns, batch)
                elif run.kind == "update":
                    dialect.update(cur, run.table, run.columns, batch)
                else:
                    dialect.delete(cur, run.table, run.columns, batch)
                if run.kind == "delete":
                    deleted += len(batch)
                else:
                    rows += run.count
            self._watch.renew()
            dialect.save_position(cur, self.name, position, stored is not None)
            dialect.commit(conn)
        except BaseException:
            dialect.rollback(conn)
            raise
        return WriteResult(position, rows=rows, deleted=deleted, skipped=skipped)


class _Run:
    """Consecutive writes of one kind to one table with one set of columns, in log
    order; deletes, and upserts and updates where the dialect writes a run in one
    statement (PostgreSQL), keep one row per key (the last: what the key ends as)."""

    __slots__ = ("by_key", "columns", "count", "kind", "layout", "rows", "skip", "table")

    def __init__(
        self, kind: Kind, table: str, columns: tuple[Column, ...], layout: _Layout | None
    ) -> None:
        self.kind = kind
        self.table = table
        self.columns = columns
        self.layout = layout
        self.rows: list[Row] = []
        self.by_key: dict[Row, Row] = {}
        self.count = 0
        self.skip = False

    def same(self, kind: Kind, table: str, layout_or_columns: Any) -> bool:
        if self.kind != kind or self.table != table:
            return False
        if kind == "delete":
            return self.columns is layout_or_columns
        return self.layout is layout_or_columns

    def add(self, row: Row, key: Row | None) -> None:
        self.count += 1
        if key is None:
            self.rows.append(row)
        else:
            if key in self.by_key:
                del self.by_key[key]  # the last write of a key goes last
            self.by_key[key] = row

    def batch(self) -> list[Row]:
        return list(self.by_key.values()) if self.by_key else self.rows
