"""Datasette over the analysts' SQLite files, read-only (``oddstream browse``).

Datasette is an optional extra (``pip install 'oddstream[browse]'``): without it,
importing this module raises ``ImportError`` (the command says how to install it).

Read-only is kept by the connections, not by Datasette's checks alone: each one is
opened ``mode=ro`` with ``PRAGMA query_only`` (or ``immutable=1``), and asking for a
write connection raises, so no route, query or plugin going through Datasette can
change the file. Datasette's
own SQL check lets ``WITH … INSERT`` through, for instance; SQLite refuses it here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datasette.app import Datasette
from datasette.database import Database

#: Datasette's limits, written out so that the page's memory stays bounded whatever a
#: table holds: a page of rows, at most this many rows from any query, a time limit
SETTINGS: dict[str, Any] = {
    "default_page_size": 100,
    "max_returned_rows": 1000,
    "sql_time_limit_ms": 2000,
    "facet_time_limit_ms": 200,
    "num_sql_threads": 3,
}


class ReadOnlyRefused(PermissionError):
    """Something asked Datasette for a connection that may write."""


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
        conn = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
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
    "SETTINGS",
    "ReadOnlyDatabase",
    "ReadOnlyRefused",
    "SqliteFileError",
    "check_sqlite_file",
    "read_only_datasette",
    "sqlite_uri",
]
