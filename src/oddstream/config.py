"""One settings object, read from ``ODDSTREAM_*`` environment variables.

The defaults are the embedded mode: an SQLite store under ``./data/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .eventstore.errors import InvalidEvent


def _env(name: str, default: str) -> str:
    return os.environ.get(f"ODDSTREAM_{name}", default)


def _flag(text: str) -> bool | None:
    """``1/true/yes/on`` → True, ``0/false/no/off`` → False, empty → None (the default)."""
    value = text.strip().lower()
    if not value:
        return None
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise InvalidEvent(f"a yes/no setting cannot be {text!r} (1/true/yes/on or 0/false/no/off)")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable, with its environment variable in the comment."""

    #: ODDSTREAM_STORE_URL: ``sqlite:///data/oddstream.db`` or ``postgresql://…``
    store_url: str = field(default_factory=lambda: _env("STORE_URL", "sqlite:///data/oddstream.db"))
    #: ODDSTREAM_SQLITE_SYNCHRONOUS: FULL (default, survives power loss) or NORMAL
    sqlite_synchronous: str = field(default_factory=lambda: _env("SQLITE_SYNCHRONOUS", "FULL"))
    #: ODDSTREAM_SQLITE_COMMIT_THREAD: commit on a thread of its own (1, the service's
    #: default: the loop keeps serving during the fsync) or on the event loop (0)
    sqlite_commit_thread: bool = field(
        default_factory=lambda: _env("SQLITE_COMMIT_THREAD", "1") not in ("0", "false", "no")
    )
    #: ODDSTREAM_PG_SCHEMA: the PostgreSQL schema holding the store's tables
    pg_schema: str = field(default_factory=lambda: _env("PG_SCHEMA", "oddstream"))
    #: ODDSTREAM_HOST / ODDSTREAM_PORT: where ``oddstream serve`` listens
    host: str = field(default_factory=lambda: _env("HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(_env("PORT", "8000")))
    #: ODDSTREAM_SCHEMA_REGISTRY_PORT / ODDSTREAM_REST_PROXY_PORT: with --kafka-compat
    schema_registry_port: int = field(
        default_factory=lambda: int(_env("SCHEMA_REGISTRY_PORT", "8081"))
    )
    rest_proxy_port: int = field(default_factory=lambda: int(_env("REST_PROXY_PORT", "8082")))
    #: ODDSTREAM_ADMIN_KEY: the API key for admin actions (``--demo`` makes one if unset)
    admin_key: str | None = field(default_factory=lambda: os.environ.get("ODDSTREAM_ADMIN_KEY"))
    #: ODDSTREAM_CUSTOMER_KEYS: ``key=wallet`` pairs, comma-separated: customer API keys,
    #: each confined to its own wallet
    customer_keys: str | None = field(
        default_factory=lambda: os.environ.get("ODDSTREAM_CUSTOMER_KEYS")
    )
    #: ODDSTREAM_API_KEYS_FILE: a JSON file of keys and roles (see docs/wallets.md)
    api_keys_file: str | None = field(
        default_factory=lambda: os.environ.get("ODDSTREAM_API_KEYS_FILE")
    )
    #: ODDSTREAM_COMPAT_ANONYMOUS_PRODUCERS: ``1`` lets callers without a key register
    #: schemas and produce on the Schema Registry / REST Proxy (the Kafka POC's scripts
    #: send none); ``0`` never; unset: only with ``--kafka-compat`` or ``--demo``
    compat_anonymous_producers: bool | None = field(
        default_factory=lambda: _flag(_env("COMPAT_ANONYMOUS_PRODUCERS", ""))
    )
    #: ODDSTREAM_MAX_BODY_BYTES: larger request bodies answer 413
    max_body_bytes: int = field(
        default_factory=lambda: int(_env("MAX_BODY_BYTES", str(16 * 1024 * 1024)))
    )
    #: ODDSTREAM_REQUEST_READ_TIMEOUT_SECONDS: a request's headers and body must arrive
    #: within this many seconds of its first byte (of the connection, for the first
    #: request), else it is answered 408 and the connection closed
    request_read_timeout_seconds: float = field(
        default_factory=lambda: float(_env("REQUEST_READ_TIMEOUT_SECONDS", "20"))
    )
    #: ODDSTREAM_MAX_CONNECTIONS: past this many open connections (live streams count)
    #: or requests in progress, new requests are answered 503
    max_connections: int = field(default_factory=lambda: int(_env("MAX_CONNECTIONS", "4096")))
    #: ODDSTREAM_AUTH_FAILURE_LIMIT / ODDSTREAM_AUTH_FAILURE_WINDOW_SECONDS: a client
    #: address that presents more unknown API keys than this within the window is answered
    #: 429 (Retry-After) for any key until the window ends
    auth_failure_limit: int = field(default_factory=lambda: int(_env("AUTH_FAILURE_LIMIT", "20")))
    auth_failure_window_seconds: float = field(
        default_factory=lambda: float(_env("AUTH_FAILURE_WINDOW_SECONDS", "60"))
    )
    #: ODDSTREAM_READ_WAIT_SECONDS: how long ``?min_position=`` may wait
    read_wait_seconds: float = field(default_factory=lambda: float(_env("READ_WAIT_SECONDS", "2")))
    #: ODDSTREAM_PUSH_COALESCE_MS: live boards are pushed at most this often per race
    push_coalesce_ms: int = field(default_factory=lambda: int(_env("PUSH_COALESCE_MS", "100")))
    #: ODDSTREAM_READY_MAX_LAG: /readyz fails when projections lag the log by more
    ready_max_lag: int = field(default_factory=lambda: int(_env("READY_MAX_LAG", "10000")))
    #: ODDSTREAM_KEEP_FINISHED_RACES: races that are over (final, abandoned) kept in the
    #: tote read model's memory; older ones are read from their streams when asked for
    keep_finished_races: int = field(default_factory=lambda: int(_env("KEEP_FINISHED_RACES", "50")))
    #: ODDSTREAM_DEMO_BETS_PER_SECOND / ODDSTREAM_DEMO_RACE_SECONDS: the demo's pace
    demo_bets_per_second: float = field(
        default_factory=lambda: float(_env("DEMO_BETS_PER_SECOND", "20"))
    )
    demo_race_seconds: float = field(default_factory=lambda: float(_env("DEMO_RACE_SECONDS", "90")))
    #: ODDSTREAM_READ_MODEL_PATH: the SQLite file of the read models (wallet balances
    #: and transactions) when no Redis is configured; ``:memory:`` keeps them in memory;
    #: empty (the default): beside an SQLite store's file, else ``data/read_models.db``
    read_model_path: str = field(default_factory=lambda: _env("READ_MODEL_PATH", ""))
    #: ODDSTREAM_REDIS_URL: ``redis://host:6379/0`` puts the read models in Redis;
    #: unset (the default) keeps them in SQLite at ``read_model_path``
    redis_url: str | None = field(default_factory=lambda: os.environ.get("ODDSTREAM_REDIS_URL"))
    #: ODDSTREAM_REDIS_PREFIX: the prefix of every Redis key the read models write
    redis_prefix: str = field(default_factory=lambda: _env("REDIS_PREFIX", "oddstream:"))

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with the given non-``None`` values replaced."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise InvalidEvent(f"unknown settings: {sorted(unknown)}")
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def store_options(self) -> dict[str, Any]:
        """Adapter options for :func:`oddstream.eventstore.open_store`."""
        if self.store_url.startswith(("postgresql://", "postgres://")):
            return {"schema": self.pg_schema}
        return {
            "synchronous": self.sqlite_synchronous,
            "commit_thread": self.sqlite_commit_thread,
        }
