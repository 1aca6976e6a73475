"""Choosing an adapter from a URL, so that callers never branch on the backend."""

from __future__ import annotations

from typing import Any

from .base import EventStore
from .errors import InvalidEvent


async def open_store(url: str, **options: Any) -> EventStore:
    """Open the event store named by ``url``.

    * ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (or a bare path):
      the embedded store.
    * ``postgresql://user@host:port/db``: the PostgreSQL store.

    ``options`` go to the adapter (``synchronous`` for SQLite, ``pool_size`` for
    PostgreSQL, ``idle_recheck`` for both).
    """
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresEventStore

        return await PostgresEventStore.open(url, **options)
    path = sqlite_path(url)
    if path is None:
        raise InvalidEvent(f"unsupported event store URL scheme in {url!r}")
    if not path:
        raise InvalidEvent("the SQLite URL names no file")
    from .sqlite import SqliteEventStore

    return await SqliteEventStore.open(path, **options)


def sqlite_path(url: str) -> str | None:
    """The file an SQLite store URL (or bare path) names; ``None`` for another scheme."""
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        return path.removeprefix("/") if not path.startswith("//") else path[1:]
    if "://" in url:
        return None
    return url
