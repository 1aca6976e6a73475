"""Datasette over the analysts' SQLite files, read-only (``oddstream browse``).

Datasette is an optional extra (``pip install 'oddstream[browse]'``): without it,
importing this module raises ``ImportError`` (the command says how to install it).

Read-only is kept by the connections, not by Datasette's checks alone: each one is
opened ``mode=ro`` with ``PRAGMA query_only`` (or ``immutable=1``), may attach no other
file, may not call ``fts3_tokenizer()`` (Debian's SQLite enables it: it hands out native
pointers and calls one it is given), and asking for a write connection raises, so no
route, query or plugin going through Datasette can change the file or open another.
Datasette's own SQL check lets ``WITH … INSERT`` through, for instance; SQLite refuses
it here.

Memory is bounded by the connections too: no value a query makes or reads may exceed
:data:`MAX_VALUE_BYTES` (SQLite's length limit: ``zeroblob(10^9)`` fails at once
rather than allocating), and the rows one statement returns stop at
:data:`MAX_ANSWER_BYTES` of values (Datasette's ``max_returned_rows`` counts rows, not
their size).
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from datasette.app import Datasette
from datasette.database import Database
from datasette.utils.asgi import Base400

#: Datasette's limits, written out so that the page's memory stays bounded whatever a
#: table holds: a page of rows, at most this many rows from any query, a time limit
SETTINGS: dict[str, Any] = {
    "default_page_size": 100,
    "max_returned_rows": 1000,
    "sql_time_limit_ms": 2000,
    "facet_time_limit_ms": 200,
    "num_sql_threads": 3,
}


#: the longest string or blob a query may make or read (SQLite's SQLITE_LIMIT_LENGTH);
#: a stored value longer than this is reported "too big" rather than shown
MAX_VALUE_BYTES = 4_000_000
#: the most bytes of values one statement's rows may hold (a page, a query's answer)
MAX_ANSWER_BYTES = 32_000_000
#: SQL functions no query may call (sqlite3 authorizer, SQLITE_FUNCTION)
DENIED_FUNCTIONS = frozenset({"fts3_tokenizer", "load_extension"})


class ReadOnlyRefused(PermissionError):
    """Something asked Datasette for a connection that may write."""


class TooBig(sqlite3.DataError, Base400):
    """A value or an answer past the limits: an error of the query (HTTP 400 on every
    page: a table's too, where Datasette answers a bare ``sqlite3`` error with a 500)."""


class SqliteFileError(ValueError):
    """A path that is not a readable SQLite database, with the reason."""


def sqlite_uri(path: Path, *, immutable: bool) -> str:
    """A read-only SQLite URI for ``path`` (percent-encoded, so a ``?`` or ``#`` in a
    file name is part of the name)."""
    flags = "mode=ro&immutable=1" if immutable else "mode=ro"
    return f"{path.resolve().as_uri()}?{flags}"


def check_sqlite_file(path: Path) -> None:
    """Raise :class:`SqliteFileError` unless ``path`` opens read-only as a SQLite
    database whose schema can be read (what Datasette needs before it serves it)."""
    if not path.exists():
        raise SqliteFileError(f"{path}: no such file")
    if not path.is_file():
        raise SqliteFileError(f"{path}: not a file")
    try:
        conn = sqlite3.connect(sqlite_uri(path, immutable=False), uri=True)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise SqliteFileError(f"{path}: {exc}") from exc


def _authorize(action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


@contextlib.contextmanager
def _too_big() -> Iterator[None]:
    """SQLite's "string or blob too big" (past :data:`MAX_VALUE_BYTES`) as :class:`TooBig`."""
    try:
        yield
    except sqlite3.DataError as exc:
        if isinstance(exc, TooBig) or "too big" not in str(exc):
            raise
        raise TooBig(f"{exc}: a value holds more than {MAX_VALUE_BYTES:,} bytes") from exc


def _size(row: Any) -> int:
    return sum(len(v) if isinstance(v, str | bytes) else 8 for v in row)


class _BoundedCursor(sqlite3.Cursor):
    """A cursor whose rows stop with :class:`sqlite3.DataError` once one statement's
    values pass :data:`MAX_ANSWER_BYTES` (each row is counted as it is fetched, so no
    more than that and one row is ever held)."""

    _fetched = 0

    def execute(self, sql: str, parameters: Any = (), /) -> _BoundedCursor:
        self._fetched = 0
        with _too_big():  # executing reads the first row already
            super().execute(sql, parameters)
        return self

    def __next__(self) -> Any:
        with _too_big():
            row = super().__next__()
        self._fetched += _size(row)
        if self._fetched > MAX_ANSWER_BYTES:
            raise TooBig(
                f"answer too large: its rows hold more than {MAX_ANSWER_BYTES:,} bytes"
                " (oddstream browse); select fewer rows or columns"
            )
        return row

    def fetchone(self) -> Any:
        return next(self, None)

    def fetchmany(self, size: int | None = None) -> list[Any]:
        return list(itertools.islice(self, self.arraysize if size is None else size))

    def fetchall(self) -> list[Any]:
        return list(self)


class _BoundedConnection(sqlite3.Connection):
    def cursor(self, factory: Any = _BoundedCursor) -> Any:  # Connection.execute uses it too
        return super().cursor(factory)


class ReadOnlyDatabase(Database):
    """A Datasette database whose every connection is read-only.

    ``immutable=False`` (the default) opens ``mode=ro``: the file may be written by a
    sink meanwhile (its WAL is read; each query sees a committed state). ``immutable=True``
    opens ``immutable=1``: SQLite then takes no locks and ignores the WAL, which is only
    right for a file that nothing writes (a copy); Datasette then also counts every
    table once and offers the file for download."""

    def __init__(self, ds: Datasette, path: Path, *, immutable: bool = False) -> None:
        super().__init__(ds, path=str(path), is_mutable=not immutable)
        self._uri = sqlite_uri(path, immutable=immutable)

    def connect(self, write: bool = False) -> sqlite3.Connection:
        if write:
            raise ReadOnlyRefused(f"{self.path} is open read-only (oddstream browse)")
        conn = sqlite3.connect(
            self._uri, uri=True, check_same_thread=False, factory=_BoundedConnection
        )
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.set_authorizer(_authorize)
        conn.execute("PRAGMA query_only = 1")
        return conn


def read_only_datasette(paths: Sequence[Path], *, immutable: bool = False) -> Datasette:
    """A Datasette serving each of ``paths`` read-only (named by its file's stem, a
    second of the same stem ``stem_2``), with :data:`SETTINGS`."""
    ds = Datasette(files=[], settings=SETTINGS)
    ds.remove_database("_memory")  # Datasette adds one when it is given no file
    for path in paths:
        ds.add_database(ReadOnlyDatabase(ds, path, immutable=immutable))
    return ds


__all__ = [
    "DENIED_FUNCTIONS",
    "MAX_ANSWER_BYTES",
    "MAX_VALUE_BYTES",
    "SETTINGS",
    "ReadOnlyDatabase",
    "ReadOnlyRefused",
    "SqliteFileError",
    "TooBig",
    "check_sqlite_file",
    "read_only_datasette",
    "sqlite_uri",
]
