"""Choosing an adapter from a URL, so that callers never branch on the backend; and the
checks of a store's configuration, shared by the adapters and the settings."""

from __future__ import annotations

import re
from typing import Any

from .base import EventStore
from .errors import StoreConfigError

#: SQLite's ``synchronous`` modes the SQLite store accepts (any case).
SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA")
#: A PostgreSQL schema name the PostgreSQL store accepts.
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,47}")
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


async def open_store(url: str, **options: Any) -> EventStore:
    """Open the event store named by ``url``.

    * ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (or a bare path):
      the embedded store.
    * ``postgresql://user@host:port/db``: the PostgreSQL store.

    ``options`` go to the adapter (``synchronous`` for SQLite, ``pool_size`` for
    PostgreSQL, ``idle_recheck`` for both). An unusable URL or option raises
    :class:`StoreConfigError`.
    """
    if is_postgres_url(check_store_url(url)):
        from .postgres import PostgresEventStore

        return await PostgresEventStore.open(url, **options)
    from .sqlite import SqliteEventStore

    return await SqliteEventStore.open(sqlite_path(url) or "", **options)


def is_postgres_url(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL store."""
    return url.startswith(_POSTGRES_SCHEMES)


def sqlite_path(url: str) -> str | None:
    """The file an SQLite store URL (or bare path) names; ``None`` for another scheme."""
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        return path.removeprefix("/") if not path.startswith("//") else path[1:]
    if "://" in url:
        return None
    return url


def check_store_url(url: str) -> str:
    """``url`` if it names a store :func:`open_store` can open, else :class:`StoreConfigError`."""
    if is_postgres_url(url):
        return url
    path = sqlite_path(url)
    if path is None:
        scheme = url.split("://", 1)[0]
        raise StoreConfigError(
            f"unsupported event store URL scheme {scheme!r}"
            " (sqlite:///path.db, postgresql://… or a bare file path)"
        )
    if not path:
        raise StoreConfigError("the SQLite URL names no file")
    return url


def check_schema_name(schema: object) -> str:
    """``schema`` if it is a usable PostgreSQL schema name, else :class:`StoreConfigError`."""
    if not isinstance(schema, str) or not SCHEMA_NAME.fullmatch(schema):
        raise StoreConfigError(
            f"schema {schema!r} must be lower-case letters, digits and '_' (≤ 48 chars)"
        )
    return schema


def check_synchronous(mode: object) -> str:
    """``mode`` upper-cased if it is one of :data:`SYNCHRONOUS_MODES` (any case), else
    :class:`StoreConfigError`."""
    if not isinstance(mode, str) or mode.upper() not in SYNCHRONOUS_MODES:
        raise StoreConfigError(
            f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, not {mode!r}"
        )
    return mode.upper()
