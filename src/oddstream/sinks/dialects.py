"""What differs between the three target databases: identifiers, column types, DDL, the
bulk write of each mode, and the offsets row that moves with every batch.

Each dialect works on a plain DB-API connection of its driver (``sqlite3``, psycopg 3,
PyMySQL): the measurement in ``bench/sink_paths.py`` (see ``docs/analytics.md``) chose
each driver's own bulk path over SQLAlchemy Core. SQL is built here and only here; every
identifier goes through :meth:`Dialect.quote`, which refuses names that are not fit to be
identifiers and quotes the rest.
"""

from __future__ import annotations

import abc
import datetime as dt
import math
import os
import socket
import sqlite3
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from .config import ConnectionUrl
from .errors import InvalidIdentifier, NotTransactional, SchemaMismatch, UnsupportedSchema
from .schema import FieldSchema

OFFSETS_TABLE = "oddstream_sink_offsets"
#: PostgreSQL's staging tables for a run: ``oddstream_stage_<n>``, temporary.
STAGE_PREFIX = "oddstream_stage_"

Row = tuple[Any, ...]
Adapter = Callable[[Any], Any]

_EPOCH_DATE = dt.date(1970, 1, 1)
_UTC = dt.UTC


class Column:
    """A column the sink writes: its name, the field it comes from, whether it is part
    of the primary key."""

    __slots__ = ("field", "key", "name")

    def __init__(self, name: str, field: FieldSchema, key: bool) -> None:
        self.name = name
        self.field = field
        self.key = key

    def __repr__(self) -> str:
        return f"Column({self.name!r}, {self.field.type}, key={self.key})"


# --- values ------------------------------------------------------------------------------


def _timestamp(tz: ZoneInfo) -> Adapter:
    """Connect's Timestamp (an instant) as the naive local time of ``db.timezone``, as
    Confluent's sink writes it; a naive datetime is taken as UTC, an int as epoch ms."""

    def adapt(value: Any) -> Any:
        if value.__class__ is dt.datetime and value.tzinfo is not None:  # the usual case
            return value.astimezone(tz).replace(tzinfo=None)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            value = dt.datetime.fromtimestamp(value / 1000, _UTC)
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=_UTC)
            return value.astimezone(tz).replace(tzinfo=None)
        return value

    return adapt


def _date(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return _EPOCH_DATE + dt.timedelta(days=value)
    if isinstance(value, dt.datetime):
        return value.date()
    return value


def _time(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        seconds, ms = divmod(value, 1000)
        minutes, second = divmod(seconds, 60)
        return dt.time(minutes // 60, minutes % 60, second, ms * 1000)
    if isinstance(value, dt.time) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    return value


def _decimal(scale: int) -> Adapter:
    def adapt(value: Any) -> Any:
        if value.__class__ is bytes or isinstance(value, bytes | bytearray):
            # Connect's encoding: unscaled, big-endian
            return Decimal(int.from_bytes(value, "big", signed=True)).scaleb(-scale)
        if isinstance(value, int | str) and not isinstance(value, bool):
            return Decimal(value)
        if isinstance(value, float):
            return Decimal(repr(value))
        return value

    return adapt


def _chain(first: Adapter, second: Adapter) -> Adapter:
    return lambda value: None if value is None else second(first(value))


def _skip_none(adapt: Adapter) -> Adapter:
    return lambda value: None if value is None else adapt(value)


# --- dialects ----------------------------------------------------------------------------


class Dialect(abc.ABC):
    """One database's SQL. Subclasses fill the class variables and the abstract
    methods; the writer calls only what is defined here."""

    name: ClassVar[str]
    quote_char: ClassVar[str]
    max_identifier: ClassVar[int]
    #: Where a parameter goes while a statement is built: a NUL, which no identifier
    #: holds; :meth:`p` turns it into the driver's own (``?`` or ``%s``).
    placeholder: ClassVar[str] = "\x00"
    driver_placeholder: ClassVar[str]
    #: PyMySQL and psycopg read ``%`` as a placeholder's start in a statement with
    #: parameters: a ``%`` inside an identifier is written twice there.
    percent_escapes: ClassVar[bool]
    #: Whether a run of upserts or updates is one statement that may not touch a row
    #: twice (PostgreSQL's ON CONFLICT, UPDATE … FROM): the writer then keeps the last
    #: write of each key. Elsewhere the rows go in log order and a key's last one wins.
    unique_keys_per_statement: ClassVar[bool] = False
    #: Whether DDL commits by itself (MariaDB): the writer then runs it before the
    #: batch's transaction, never inside it.
    ddl_commits: ClassVar[bool] = False

    def __init__(self, timezone: ZoneInfo | None = None) -> None:
        self.timezone = timezone or ZoneInfo("UTC")

    # identifiers -----------------------------------------------------------------

    def check_identifier(self, name: str) -> str:
        """``name`` if it can be an identifier here, else :class:`InvalidIdentifier`:
        not empty, not longer than the database allows, no control or unassigned
        characters, no spaces at its ends (MariaDB drops trailing spaces)."""
        if not isinstance(name, str) or not name:
            raise InvalidIdentifier("an identifier is a non-empty string")
        if len(name.encode()) > self.max_identifier:
            raise InvalidIdentifier(
                f"identifier {name[:40]!r}… is longer than {self.name}'s "
                f"{self.max_identifier} bytes"
            )
        for ch in name:
            if unicodedata.category(ch) in ("Cc", "Cs", "Cn", "Zl", "Zp"):
                raise InvalidIdentifier(f"identifier {name!r} holds the character {ch!r}")
        if name != name.strip():
            raise InvalidIdentifier(f"identifier {name!r} starts or ends with a space")
        return name

    def quote(self, name: str) -> str:
        """``name`` checked and quoted (the quote character doubled inside)."""
        q = self.quote_char
        return q + self.check_identifier(name).replace(q, q + q) + q

    def split_table(self, table: str) -> tuple[str | None, str]:
        """``schema.table`` or ``table`` (Confluent's table.name.format reads a dot as
        the schema's; a name with more dots is refused)."""
        parts = table.split(".")
        if len(parts) == 1:
            return None, self.check_identifier(parts[0])
        if len(parts) == 2:
            return self.check_identifier(parts[0]), self.check_identifier(parts[1])
        raise InvalidIdentifier(f"table name {table!r}: at most one dot (schema.table)")

    def check_table(self, table: str) -> None:
        """Refuse a target table that is the sink's own: the offsets table (records
        written there would move any sink's position) or a name of PostgreSQL's staging
        tables (a temporary table hides a table of the same name). Compared ignoring
        case and schema, so no database's folding lets one through."""
        _schema, name = self.split_table(table)
        low = name.lower()
        if low == OFFSETS_TABLE or low.startswith(STAGE_PREFIX):
            raise InvalidIdentifier(
                f"table {table!r} is reserved for the sink's own bookkeeping "
                f"({OFFSETS_TABLE}, {STAGE_PREFIX}*)"
            )

    def table_ref(self, table: str) -> str:
        schema, name = self.split_table(table)
        return self.quote(name) if schema is None else f"{self.quote(schema)}.{self.quote(name)}"

    def p(self, sql: str) -> str:
        """``sql`` (quoted identifiers, :attr:`placeholder` for each parameter) as the
        driver reads a statement with parameters."""
        if self.percent_escapes:
            sql = sql.replace("%", "%%")
        return sql.replace(self.placeholder, self.driver_placeholder)

    # types -------------------------------------------------------------------------

    @abc.abstractmethod
    def sql_type(self, field: FieldSchema, key: bool = False) -> str:
        """The column type Confluent's sink gives ``field`` on this database."""

    def adapter(self, field: FieldSchema) -> Adapter | None:
        """How a value of ``field`` is turned into what the driver binds (``None``:
        as it is)."""
        if field.logical == "Timestamp":
            return _timestamp(self.timezone)
        if field.logical == "Date":
            return _skip_none(_date)
        if field.logical == "Time":
            return _skip_none(_time)
        if field.logical == "Decimal":
            return _skip_none(_decimal(field.scale))
        return None

    def literal(self, value: Any) -> str:
        """A column default as an SQL literal (finite numbers, booleans, strings only;
        anything else is :class:`UnsupportedSchema`)."""
        if isinstance(value, bool):
            return self._true if value else self._false
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float | Decimal):
            if not math.isfinite(value):
                raise UnsupportedSchema(f"a default of {value!r} has no SQL literal")
            return repr(value) if isinstance(value, float) else str(value)
        if isinstance(value, str):
            if "\x00" in value:
                raise InvalidIdentifier("a default holds a NUL character")
            quoted = value.replace("'", "''").replace("\\", self._backslash)
            return f"{self._string_prefix}'{quoted}'"
        raise UnsupportedSchema(f"no SQL literal for a default of type {type(value).__name__}")

    #: How a backslash is written inside a string literal, and the literal's prefix.
    _backslash: ClassVar[str] = "\\"
    _string_prefix: ClassVar[str] = ""
    _true: ClassVar[str] = "1"
    _false: ClassVar[str] = "0"

    # DDL ----------------------------------------------------------------------------

    def column_definition(self, column: Column, *, nullable: bool | None = None) -> str:
        f = column.field
        null = (f.optional and not column.key) if nullable is None else nullable
        parts = [self.quote(column.name), self.sql_type(f, key=column.key)]
        if f.has_default and f.default is not None and f.logical is None and not column.key:
            parts.append(f"DEFAULT {self.literal(f.default)}")
        parts.append("NULL" if null else "NOT NULL")
        return " ".join(parts)

    def create_table(self, table: str, columns: Sequence[Column]) -> str:
        defs = [self.column_definition(c) for c in columns]
        keys = [self.quote(c.name) for c in columns if c.key]
        if keys:
            defs.append(f"PRIMARY KEY ({', '.join(keys)})")
        return f"CREATE TABLE {self.table_ref(table)} ({', '.join(defs)}){self.table_options}"

    table_options: ClassVar[str] = ""

    def add_column(self, table: str, column: Column) -> str:
        """ADD COLUMN of a field the table lacks: always nullable (Confluent's evolve
        adds columns; a field neither optional nor with a default is refused before)."""
        return (
            f"ALTER TABLE {self.table_ref(table)} ADD COLUMN "
            f"{self.column_definition(column, nullable=True)}"
        )

    @abc.abstractmethod
    def existing_columns(self, cur: Any, table: str) -> list[str] | None:
        """The table's column names, or ``None`` if it does not exist."""

    def same_column(self, a: str, b: str) -> bool:
        """Whether two column names name one column (case-insensitive on MariaDB and
        SQLite)."""
        return a.lower() == b.lower()

    # the batch's transaction ----------------------------------------------------

    @abc.abstractmethod
    def connect(self, url: ConnectionUrl, timeout: float | None = None) -> Any:
        """A DB-API connection, not in autocommit: the writer commits. ``timeout``
        (seconds, the sink's ``db.call.timeout.ms``) bounds the connecting itself where
        the driver can: no socket is there yet for a :meth:`breaker` to break."""

    @abc.abstractmethod
    def breaker(self, conn: Any) -> Callable[[], None]:
        """What breaks ``conn`` from another thread, so that a call blocked on it raises
        at once (the watchdog's, past the deadline; a service stopping)."""

    #: The offsets table's ``name`` column: compared exactly (case, accents and trailing
    #: spaces count), as Connect's connector names are.
    offsets_name_type: ClassVar[str] = "VARCHAR(255)"

    def offsets_ddl(self) -> str:
        return (
            f"CREATE TABLE IF NOT EXISTS {self.quote(OFFSETS_TABLE)} ("
            f"{self.quote('name')} {self.offsets_name_type} NOT NULL PRIMARY KEY, "
            f"{self.quote('position')} BIGINT NOT NULL){self.table_options}"
        )

    def ensure_offsets(self, cur: Any) -> None:
        """Create the offsets table if it does not exist."""
        cur.execute(self.offsets_ddl())

    def bound_statements(self, cur: Any, timeout: float) -> None:  # noqa: B027 - optional
        """Have the server end by itself, on this session, a statement running past
        ``timeout`` seconds, where it can: the writer's deadline breaks the connection
        of a call with no answer, and a server that is slow rather than frozen would
        otherwise go on with the statement of a client that is gone."""

    def begin(self, conn: Any) -> None:  # noqa: B027 - psycopg and PyMySQL begin implicitly
        """Start the batch's transaction."""

    def commit(self, conn: Any) -> None:
        conn.commit()

    def rollback(self, conn: Any) -> None:
        conn.rollback()

    def lock_position(self, cur: Any, name: str, *, lock: bool = True) -> int | None:
        """The stored position of sink ``name`` (``None``: none), locked until the
        transaction ends unless ``lock`` is false."""
        cur.execute(
            self.p(
                f"SELECT {self.quote('position')} FROM {self.quote(OFFSETS_TABLE)} "
                f"WHERE {self.quote('name')} = {self.placeholder}"
                + (self.for_update if lock else "")
            ),
            (name,),
        )
        row = cur.fetchone()
        return None if row is None else int(row[0])

    for_update: ClassVar[str] = " FOR UPDATE"

    def save_position(self, cur: Any, name: str, position: int, existed: bool) -> None:
        ph = self.placeholder
        if existed:
            cur.execute(
                self.p(
                    f"UPDATE {self.quote(OFFSETS_TABLE)} SET {self.quote('position')} = {ph} "
                    f"WHERE {self.quote('name')} = {ph}"
                ),
                (position, name),
            )
        else:
            cur.execute(
                self.p(
                    f"INSERT INTO {self.quote(OFFSETS_TABLE)} "
                    f"({self.quote('name')}, {self.quote('position')}) VALUES ({ph}, {ph})"
                ),
                (name, position),
            )

    def forget_position(self, cur: Any, name: str) -> None:
        """Delete sink ``name``'s stored position: it starts from the beginning."""
        cur.execute(
            self.p(
                f"DELETE FROM {self.quote(OFFSETS_TABLE)} "
                f"WHERE {self.quote('name')} = {self.placeholder}"
            ),
            (name,),
        )

    def clear_table(self, cur: Any, table: str) -> None:
        """Delete every row of ``table`` (DELETE, not TRUNCATE: it stays in the
        transaction on every database)."""
        cur.execute(f"DELETE FROM {self.table_ref(table)}")

    # writes --------------------------------------------------------------------------

    def _values(self, n: int) -> str:
        return "(" + ", ".join([self.placeholder] * n) + ")"

    def _names(self, columns: Sequence[Column]) -> str:
        return ", ".join(self.quote(c.name) for c in columns)

    def insert(self, cur: Any, table: str, columns: Sequence[Column], rows: list[Row]) -> None:
        """Insert ``rows`` (tuples in ``columns`` order)."""
        cur.executemany(
            self.p(
                f"INSERT INTO {self.table_ref(table)} ({self._names(columns)}) "
                f"VALUES {self._values(len(columns))}"
            ),
            rows,
        )

    @abc.abstractmethod
    def upsert(self, cur: Any, table: str, columns: Sequence[Column], rows: list[Row]) -> None:
        """Insert ``rows``, or update the row with the same key (one row per key)."""

    def update(self, cur: Any, table: str, columns: Sequence[Column], rows: list[Row]) -> None:
        """Update the rows with these keys (``rows`` in ``columns`` order); a key with no
        row updates nothing, as Confluent's does."""
        keys = [i for i, c in enumerate(columns) if c.key]
        others = [i for i, c in enumerate(columns) if not c.key]
        if not others:
            return
        ph = self.placeholder
        sets = ", ".join(f"{self.quote(columns[i].name)} = {ph}" for i in others)
        where = " AND ".join(f"{self.quote(columns[i].name)} = {ph}" for i in keys)
        order = others + keys
        cur.executemany(
            self.p(f"UPDATE {self.table_ref(table)} SET {sets} WHERE {where}"),
            [tuple(row[i] for i in order) for row in rows],
        )

    def delete(self, cur: Any, table: str, keys: Sequence[Column], rows: list[Row]) -> None:
        """Delete the rows with these keys (``rows`` hold the key columns only)."""
        ph = self.placeholder
        where = " AND ".join(f"{self.quote(c.name)} = {ph}" for c in keys)
        cur.executemany(self.p(f"DELETE FROM {self.table_ref(table)} WHERE {where}"), rows)


class SqliteDialect(Dialect):
    """SQLite: Confluent's types (INTEGER, REAL, TEXT, BLOB, NUMERIC for the logical
    types); dates and times stored as ISO 8601 text, decimals as their text (NUMERIC
    affinity keeps 15 significant digits, as SQLite does for any number)."""

    name = "sqlite"
    quote_char = '"'
    max_identifier = 128
    driver_placeholder = "?"
    percent_escapes = False
    for_update = ""  # BEGIN IMMEDIATE holds the database's write lock

    _TYPES: ClassVar[dict[str, str]] = {
        "boolean": "INTEGER",
        "int8": "INTEGER",
        "int16": "INTEGER",
        "int32": "INTEGER",
        "int64": "INTEGER",
        "float32": "REAL",
        "float64": "REAL",
        "string": "TEXT",
        "bytes": "BLOB",
    }

    def sql_type(self, field: FieldSchema, key: bool = False) -> str:
        if field.logical is not None:
            return "NUMERIC"
        return self._TYPES[field.type]

    def adapter(self, field: FieldSchema) -> Adapter | None:
        base = super().adapter(field)
        if field.logical == "Timestamp":
            tz = self.timezone
            other = _timestamp(tz)  # made once, not for every value

            def timestamp(value: Any) -> Any:
                if value.__class__ is dt.datetime and value.tzinfo is not None:
                    local = value.astimezone(tz).replace(tzinfo=None)
                    return local.isoformat(sep=" ", timespec="milliseconds")
                value = other(value)  # the rarer forms: naive, epoch ms, None
                return None if value is None else value.isoformat(sep=" ", timespec="milliseconds")

            return timestamp
        if field.logical == "Decimal":
            decimal = _decimal(field.scale)
            return lambda value: None if value is None else str(decimal(value))
        if field.logical in ("Date", "Time") and base is not None:
            return _chain(base, lambda v: v.isoformat())
        return base

    def connect(self, url: ConnectionUrl, timeout: float | None = None) -> Any:
        # a locked file is waited for by busy_timeout (then SQLITE_BUSY: unavailable)
        path = url.path or ":memory:"
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        if path != ":memory:":
            # analysts read the file while the sink writes: WAL lets them both go on
            conn.execute("PRAGMA journal_mode = WAL")
        return conn

    def breaker(self, conn: Any) -> Callable[[], None]:
        return conn.interrupt  # sqlite3's one call meant for another thread

    def begin(self, conn: Any) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def commit(self, conn: Any) -> None:
        if conn.in_transaction:
            conn.execute("COMMIT")

    def rollback(self, conn: Any) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def existing_columns(self, cur: Any, table: str) -> list[str] | None:
        schema, name = self.split_table(table)
        cur.execute("SELECT name FROM pragma_table_info(?, ?)", (name, schema or "main"))
        names = [row[0] for row in cur.fetchall()]
        return names or None

    def upsert(self, cur: Any, table: str, columns: Sequence[Column], rows: list[Row]) -> None:
        keys = ", ".join(self.quote(c.name) for c in columns if c.key)
        sets = ", ".join(
            f"{self.quote(c.name)} = excluded.{self.quote(c.name)}" for c in columns if not c.key
        )
        action = f"DO UPDATE SET {sets}" if sets else "DO NOTHING"
        cur.executemany(
            self.p(
                f"INSERT INTO {self.table_ref(table)} ({self._names(columns)}) "
                f"VALUES {self._values(len(columns))} ON CONFLICT ({keys}) {action}"
            ),
            rows,
        )


class PostgresDialect(Dialect):
    """PostgreSQL: Confluent's types; inserts by COPY, upserts / updates / deletes by
    COPY into a temporary table and one statement from it."""

    name = "postgresql"
    quote_char = '"'
    max_identifier = 63
    unique_keys_per_statement = True
    driver_placeholder = "%s"
    percent_escapes = True
    # E'…' reads a backslash as an escape whatever standard_conforming_strings says: with
    # the backslash doubled, no default can end the literal early
    _backslash = "\\\\"
    _string_prefix = "E"
    _true = "TRUE"
    _false = "FALSE"

    _TYPES: ClassVar[dict[str, str]] = {
        "int8": "SMALLINT",
        "int16": "SMALLINT",
        "int32": "INT",
        "int64": "BIGINT",
        "float32": "REAL",
        "float64": "DOUBLE PRECISION",
        "boolean": "BOOLEAN",
        "string": "TEXT",
        "bytes": "BYTEA",
    }
    _LOGICAL: ClassVar[dict[str, str]] = {
        "Decimal": "DECIMAL",
        "Date": "DATE",
        "Time": "TIME",
        "Timestamp": "TIMESTAMP",
    }

    def __init__(self, timezone: ZoneInfo | None = None) -> None:
        super().__init__(timezone)
        self._staged = 0
        #: the schema of tables named without one: the connection's current schema
        self.default_schema: str | None = None

    def sql_type(self, field: FieldSchema, key: bool = False) -> str:
        if field.logical is not None:
            return self._LOGICAL[field.logical]
        return self._TYPES[field.type]

    def adapter(self, field: FieldSchema) -> Adapter | None:
        if field.type == "string" and field.logical is None:
            # PostgreSQL's text holds no NUL; Confluent's sink drops them too.
            return lambda v: v.replace("\x00", "") if v.__class__ is str and "\x00" in v else v
        return super().adapter(field)

    def connect(self, url: ConnectionUrl, timeout: float | None = None) -> Any:
        import psycopg

        params = libpq_params(url.params)
        if timeout is not None:
            # the whole connecting, startup answer included (psycopg enforces it); a
            # loginTimeout of the URL wins
            params.setdefault("connect_timeout", str(max(2, math.ceil(timeout))))
        conninfo = psycopg.conninfo.make_conninfo(
            "",
            host=url.host,
            port=url.port,
            dbname=url.database,
            user=url.user,
            password=url.password,
            **params,
        )
        conn = psycopg.connect(conninfo, autocommit=False)
        try:
            row = conn.execute("SELECT current_schema()").fetchone()
            conn.rollback()
        except BaseException:
            conn.close()
            raise
        if row is None or row[0] is None:
            conn.close()
            raise SchemaMismatch(
                "the connection's search_path names no schema that exists: a table without "
                "a schema in table.name.format has nowhere to be"
            )
        self.default_schema = str(row[0])
        return conn

    def table_ref(self, table: str) -> str:
        """Qualified always: a bare name is in the connection's current schema (the
        first of its ``search_path`` that exists, ``currentSchema`` in the URL), never
        resolved through ``pg_catalog`` (searched first: a table named ``pg_class``
        would be the catalog's) or ``pg_temp``."""
        schema, name = self.split_table(table)
        schema = schema if schema is not None else self.default_schema
        if schema is None:  # not connected: the SQL is not sent (tests print it)
            return self.quote(name)
        return f"{self.quote(schema)}.{self.quote(name)}"

    def bound_statements(self, cur: Any, timeout: float) -> None:
        # A backend waiting for a lock does not notice its client gone: every call the
        # deadline broke would leave one queued (holding the offsets row and a
        # connection slot) until the lock is released. A second past the deadline, so
        # that the client's deadline (and its message) comes first; a statement_timeout
        # the server, role or URL already sets is kept.
        cur.execute(
            "SELECT CASE WHEN current_setting('statement_timeout') = '0' "
            "THEN set_config('statement_timeout', %s, false) END",
            (f"{math.ceil(timeout * 1000) + 1000}ms",),
        )

    def breaker(self, conn: Any) -> Callable[[], None]:
        fd = conn.pgconn.socket  # read now: never from another thread mid-call

        def shut() -> None:
            # shutdown acts on the socket, not on the descriptor: a duplicate reaches it
            # and psycopg's blocked wait sees the connection end
            with socket.socket(fileno=os.dup(fd)) as sock:
                sock.shutdown(socket.SHUT_RDWR)

        return shut

    def existing_columns(self, cur: Any, table: str) -> list[str] | None:
        schema, name = self.split_table(table)
        cur.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = COALESCE(%s, current_schema()) AND table_name = %s "
            "ORDER BY ordinal_position",
            (schema, name),
        )
        names = [row[0] for row in cur.fetchall()]
        return names or None

    def same_column(self, a: str, b: str) -> bool:
        return a == b

    def _copy(self, cur: Any, target: str, columns: Sequence[Column], rows: Iterable[Row]) -> None:
        with cur.copy(f"COPY {target} ({self._names(columns)}) FROM STDIN") as copy:
            write = copy.write_row
            for row in rows:
                write(row)

    def _stage(self, cur: Any, table: str, columns: Sequence[Column], rows: list[Row]) -> str:
        """COPY ``rows`` into a temporary table of the target's column types (dropped at
        commit); answers its quoted name."""
        self._staged += 1
        stage = self.quote(f"oddstream_stage_{self._staged}")
        cur.execute(
            f"CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS "
            f"SELECT {self._names(columns)} FROM {self.table_ref(table)} WITH NO DATA"
        )
        self._copy(cur, stage, columns, rows)
        return stage

    def insert(self, cur: Any, table: str, columns: Sequence[Column], rows: list[Row]) -> None:
        self._copy(cur, self.table_ref(table), columns, rows)

    def upsert(self, cur: Any, table: str, columns: Sequence[Column], rows: list[Row]) -> None:
        stage = self._stage(cur, table, columns, rows)
        names = self._names(columns)
        keys = ", ".join(self.quote(c.name) for c in columns if c.key)
        sets = ", ".join(
            f"{self.quote(c.name)} = EXCLUDED.{self.quote(c.name)}" for c in columns if not c.key
        )
        action = f"DO UPDATE SET {sets}" if sets else "DO NOTHING"
        cur.execute(
            f"INSERT INTO {self.table_ref(table)} ({names}) SELECT {names} FROM {stage} "
            f"ON CONFLICT ({keys}) {action}"
        )

    def update(self, cur: Any, table: str, columns: Sequence[Column], rows: list[Row]) -> None:
        if all(c.key for c in columns):
            return
        stage = self._stage(cur, table, columns, rows)
        target = self.table_ref(table)
        sets = ", ".join(
            f"{self.quote(c.name)} = s.{self.quote(c.name)}" for c in columns if not c.key
        )
        where = " AND ".join(
            f"t.{self.quote(c.name)} = s.{self.quote(c.name)}" for c in columns if c.key
        )
        cur.execute(f"UPDATE {target} AS t SET {sets} FROM {stage} AS s WHERE {where}")

    def delete(self, cur: Any, table: str, keys: Sequence[Column], rows: list[Row]) -> None:
        stage = self._stage(cur, table, keys, rows)
        where = " AND ".join(f"t.{self.quote(c.name)} = s.{self.quote(c.name)}" for c in keys)
        cur.execute(f"DELETE FROM {self.table_ref(table)} AS t USING {stage} AS s WHERE {where}")


#: PostgreSQL JDBC URL parameters with a libpq equivalent; others (driver tuning such as
#: ``prepareThreshold``) mean nothing to libpq and are left out.
_LIBPQ_SAME = frozenset(
    {
        "sslmode",
        "sslcert",
        "sslkey",
        "sslrootcert",
        "sslpassword",
        "connect_timeout",
        "application_name",
        "options",
        "target_session_attrs",
    }
)


def libpq_params(params: Mapping[str, str]) -> dict[str, str]:
    """The libpq connection parameters of a ``jdbc:postgresql:`` URL's parameters:
    libpq's own names pass; ``currentSchema``, ``ApplicationName``, ``loginTimeout``,
    ``connectTimeout``, ``ssl=true`` and ``targetServerType`` are translated."""
    out = {k: v for k, v in params.items() if k in _LIBPQ_SAME}
    if "currentSchema" in params:
        # libpq's options value: a backslash escapes a space or a backslash
        schema = params["currentSchema"].replace("\\", "\\\\").replace(" ", "\\ ")
        out["options"] = (out.get("options", "") + f" -c search_path={schema}").strip()
    if "ApplicationName" in params:
        out.setdefault("application_name", params["ApplicationName"])
    for timeout in ("loginTimeout", "connectTimeout"):
        if timeout in params:
            out.setdefault("connect_timeout", params[timeout])
    if params.get("ssl", "").lower() == "true":
        out.setdefault("sslmode", "require")
    server = params.get("targetServerType", "").lower()
    if server in ("primary", "master"):
        out.setdefault("target_session_attrs", "read-write")
    return out


class MysqlDialect(Dialect):
    """MariaDB / MySQL: Confluent's types (a string in a key is VARCHAR(256), compared
    by ``utf8mb4_bin``, TEXT elsewhere); InnoDB tables, so rows and position commit
    together; multi-row INSERT (PyMySQL's executemany) for inserts and ``ON DUPLICATE
    KEY UPDATE`` upserts."""

    name = "mysql"
    quote_char = "`"
    max_identifier = 64
    driver_placeholder = "%s"
    percent_escapes = True
    ddl_commits = True
    table_options = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    _backslash = "\\\\"
    # the database's default collation (utf8mb4_general_ci) would make "Sales", "sales"
    # and "sales " one sink; bytes compare exactly (255 characters of 4 bytes)
    offsets_name_type = "VARBINARY(1020)"

    def ensure_offsets(self, cur: Any) -> None:
        """Create the offsets table, or make an older one's ``name`` column binary;
        :class:`NotTransactional` if it is of an engine without transactions."""
        super().ensure_offsets(cur)
        self._check_engine(cur, None, OFFSETS_TABLE)
        cur.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = DATABASE() "
            "AND table_name = %s AND column_name = 'name'",
            (OFFSETS_TABLE,),
        )
        row = cur.fetchone()
        if row is not None and str(row[0]).lower() != "varbinary":
            cur.execute(
                f"ALTER TABLE {self.quote(OFFSETS_TABLE)} MODIFY {self.quote('name')} "
                f"{self.offsets_name_type} NOT NULL"
            )

    _TYPES: ClassVar[dict[str, str]] = {
        "int8": "TINYINT",
        "int16": "SMALLINT",
        "int32": "INT",
        "int64": "BIGINT",
        "float32": "FLOAT",
        "float64": "DOUBLE",
        "boolean": "TINYINT",
        "string": "TEXT",
        "bytes": "VARBINARY(1024)",
    }

    def check_identifier(self, name: str) -> str:
        super().check_identifier(name)
        if len(name) > 64:
            raise InvalidIdentifier(f"identifier {name[:40]!r}… is longer than 64 characters")
        if any(ord(ch) > 0xFFFF for ch in name):
            # MariaDB/MySQL identifiers are of the Basic Multilingual Plane only
            raise InvalidIdentifier(f"identifier {name!r} holds a character beyond U+FFFF")
        return name

    def sql_type(self, field: FieldSchema, key: bool = False) -> str:
        if field.logical == "Decimal":
            return f"DECIMAL(65,{field.scale})"
        if field.logical == "Date":
            return "DATE"
        if field.logical == "Time":
            return "TIME(3)"
        if field.logical == "Timestamp":
            return "DATETIME(3)"
        if field.type == "string" and key:
            # the default collation (utf8mb4_general_ci) would make keys differing in
            # case or accents ("1m", "1M") one row, an upsert overwriting the other's
            return "VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        return self._TYPES[field.type]

    def connect(self, url: ConnectionUrl, timeout: float | None = None) -> Any:
        import pymysql

        limits: dict[str, float] = {}
        if timeout is not None:
            # PyMySQL reads the server's greeting with no timeout of its own: a frozen
            # server would hold the connecting for ever. Its read/write timeouts bound
            # it, a little past the watchdog's deadline so that the watchdog (with its
            # message) is what ends a call once connected.
            limits = {
                "connect_timeout": min(10.0, timeout),
                "read_timeout": timeout + 1.0,
                "write_timeout": timeout + 1.0,
            }
        return pymysql.connect(
            host=url.host or "localhost",
            port=url.port or 3306,
            user=url.user or "root",
            password=url.password or "",
            database=url.database,
            autocommit=False,
            charset="utf8mb4",
            **limits,
        )

    def breaker(self, conn: Any) -> Callable[[], None]:
        sock = conn._sock  # PyMySQL's socket; shutdown is safe from another thread
        return lambda: sock.shutdown(socket.SHUT_RDWR)

    def existing_columns(self, cur: Any, table: str) -> list[str] | None:
        """The table's columns (``None``: no such table); :class:`NotTransactional` if
        it is of an engine without transactions (MyISAM: a rolled-back batch would leave
        its rows, and the sink would write them again)."""
        schema, name = self.split_table(table)
        cur.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = COALESCE(%s, DATABASE()) AND table_name = %s "
            "ORDER BY ordinal_position",
            (schema, name),
        )
        names = [row[0] for row in cur.fetchall()]
        if names:
            self._check_engine(cur, schema, name)
        return names or None

    def _check_engine(self, cur: Any, schema: str | None, name: str) -> None:
        cur.execute(
            "SELECT t.engine, e.transactions FROM information_schema.tables t "
            "LEFT JOIN information_schema.engines e ON e.engine = t.engine "
            "WHERE t.table_schema = COALESCE(%s, DATABASE()) AND t.table_name = %s",
            (schema, name),
        )
        row = cur.fetchone()
        # a view has no engine (its base tables' are checked where they are written)
        if row is not None and row[0] is not None and str(row[1]).upper() != "YES":
            where = name if schema is None else f"{schema}.{name}"
            raise NotTransactional(
                f"table {where!r} is {row[0]}, an engine without transactions: rows and "
                f"position cannot commit together (convert it: ALTER TABLE … ENGINE=InnoDB)"
            )

    def begin(self, conn: Any) -> None:
        conn.begin()

    def upsert(self, cur: Any, table: str, columns: Sequence[Column], rows: list[Row]) -> None:
        sets = ", ".join(
            f"{self.quote(c.name)} = VALUES({self.quote(c.name)})" for c in columns if not c.key
        )
        if not sets:  # only key columns: a duplicate changes nothing
            first = self.quote(columns[0].name)
            sets = f"{first} = {first}"
        cur.executemany(
            self.p(
                f"INSERT INTO {self.table_ref(table)} ({self._names(columns)}) "
                f"VALUES {self._values(len(columns))} ON DUPLICATE KEY UPDATE {sets}"
            ),
            rows,
        )


def dialect_for(url: ConnectionUrl, timezone: ZoneInfo | None = None) -> Dialect:
    """The dialect of a parsed ``connection.url``."""
    if url.dialect == "sqlite":
        return SqliteDialect(timezone)
    if url.dialect == "postgresql":
        return PostgresDialect(timezone)
    return MysqlDialect(timezone)
