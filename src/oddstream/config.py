"""One settings object, read from ``ODDSTREAM_*`` environment variables.

The defaults are the embedded mode: an SQLite store under ``./data/``. Every value is
typed and checked when the settings are made: a bad one raises :class:`SettingsError`
naming its variable and the reason (``ODDSTREAM_PORT: Input should be less than or
equal to 65535 (got '70000')``). A variable set to the empty string counts as unset.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from .eventstore.base import DEFAULT_PAGE_MAX_BYTES
from .eventstore.factory import (
    check_schema_name,
    check_store_url,
    check_synchronous,
    is_postgres_url,
)
from .velocity.bus import RATE

ENV_PREFIX = "ODDSTREAM_"
#: Settings whose values are never repeated in an error message.
_SECRETS = frozenset({"admin_key", "customer_keys"})
#: Settings holding URLs, repeated in an error message without their password.
_URLS = frozenset({"store_url", "redis_url", "nats_url", "quote_tables_url"})
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class SettingsError(ValueError):
    """A setting is unknown or has an unusable value; the message names each such
    setting (by its environment variable when that is where the value came from) and
    why it is refused."""


_NATS_SCHEMES = ("nats://", "tls://")


def redact_url(url: str) -> str:
    """``url`` without the password of its credentials, if it has one (a NATS URL:
    each of a comma-separated list, and a token — ``nats://TOKEN@host`` — too)."""
    if url.startswith(_NATS_SCHEMES) and "," in url:
        return ",".join(redact_url(part.strip()) for part in url.split(","))
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user, password, _ = creds.partition(":")
        if not password and url.startswith(_NATS_SCHEMES):
            user = "***"  # NATS's token form: the one field is the secret
        return f"{scheme}://{user}@{host}"
    return url


def _redis_url(url: str | None) -> str | None:
    if url is not None and not url.startswith(_REDIS_SCHEMES):
        raise ValueError(f"a Redis URL starts with {', '.join(_REDIS_SCHEMES)}")
    return url


def _nats_url(url: str | None) -> str | None:
    if url is not None and not all(
        part.strip().startswith(_NATS_SCHEMES) for part in url.split(",")
    ):
        raise ValueError("a NATS URL starts with nats:// or tls:// (several: comma-separated)")
    return url


def _jdbc_url(url: str | None) -> str | None:
    if url is not None:
        from .sinks.config import parse_connection_url

        parse_connection_url(url.strip())  # a ValueError names what is wrong
        return url.strip()
    return url


Port = Annotated[int, Field(ge=1, le=65535)]
#: A positive, finite number (a duration, a rate).
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
#: ``eventstore.factory.SYNCHRONOUS_MODES``, as a type (tests/test_config.py checks so).
SynchronousMode = Annotated[Literal["FULL", "NORMAL", "EXTRA"], BeforeValidator(check_synchronous)]


def _yes_no(value: object) -> object:
    """Spaces around a yes/no value are not part of it; blank is unset (``None``)."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


#: a yes/no setting: 1/true/yes/on/y/t or 0/false/no/off/n/f, any case, spaces ignored
YesNo = Annotated[bool, BeforeValidator(_yes_no)]


#: variables of settings that were renamed → their new names
RENAMED = {"ODDSTREAM_COMPAT_ANONYMOUS_PRODUCERS": "ODDSTREAM_KAFKA_ANONYMOUS_PRODUCERS"}


class Settings(BaseSettings):
    """Everything configurable; each field ``x`` is read from ``ODDSTREAM_X``.

    ``Settings()`` reads the environment; keyword arguments take precedence over it.
    Settings are immutable: :meth:`with_overrides` makes a changed (and checked) copy.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        frozen=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )

    store_url: Annotated[str, AfterValidator(check_store_url)] = "sqlite:///data/oddstream.db"
    """ODDSTREAM_STORE_URL: ``sqlite:///data/oddstream.db``, ``sqlite:////abs/path.db``,
    a bare file path or ``postgresql://…``"""
    sqlite_synchronous: SynchronousMode = "FULL"
    """ODDSTREAM_SQLITE_SYNCHRONOUS: FULL (default, survives power loss), NORMAL (survives
    a process crash only, faster) or EXTRA; any case"""
    sqlite_commit_thread: YesNo = True
    """ODDSTREAM_SQLITE_COMMIT_THREAD: commit on a thread of its own (1, the service's
    default: the loop keeps serving during the fsync) or on the event loop (0)"""
    pg_schema: Annotated[str, AfterValidator(check_schema_name)] = "oddstream"
    """ODDSTREAM_PG_SCHEMA: the PostgreSQL schema holding the store's tables"""
    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    """ODDSTREAM_HOST: the address ``oddstream serve`` listens on"""
    port: Port = 8000
    """ODDSTREAM_PORT: the port ``oddstream serve`` listens on"""
    kafka_compat: YesNo = False
    """ODDSTREAM_KAFKA_COMPAT: ``1`` switches the Kafka integration on (as ``serve
    --kafka-compat`` does): the Schema Registry and REST Proxy (on the main port and their
    own), the ``tote_win_bets`` bridge and its odds topic; ``0`` (the default): none of it"""
    schema_registry_port: Port = 8081
    """ODDSTREAM_SCHEMA_REGISTRY_PORT: the Schema Registry's port, with --kafka-compat"""
    rest_proxy_port: Port = 8082
    """ODDSTREAM_REST_PROXY_PORT: the REST Proxy's port, with --kafka-compat"""
    kafka_connect_port: Port = 8083
    """ODDSTREAM_KAFKA_CONNECT_PORT: Kafka Connect's REST API (the SQL sinks'
    connectors), with --kafka-compat"""
    admin_key: str | None = None
    """ODDSTREAM_ADMIN_KEY: the API key for admin actions (``--demo`` makes one if unset)"""
    customer_keys: str | None = None
    """ODDSTREAM_CUSTOMER_KEYS: ``key=wallet`` pairs, comma-separated: customer API keys,
    each confined to its own wallet"""
    api_keys_file: str | None = None
    """ODDSTREAM_API_KEYS_FILE: a JSON file of keys and roles (see docs/wallets.md)"""
    kafka_anonymous_producers: Annotated[bool | None, BeforeValidator(_yes_no)] = None
    """ODDSTREAM_KAFKA_ANONYMOUS_PRODUCERS: with the Kafka integration on, ``1`` lets
    callers without a key register schemas and produce (the Kafka POC's scripts send
    none); ``0`` never; unset: ``1``"""
    max_body_bytes: Annotated[int, Field(ge=1)] = 16 * 1024 * 1024
    """ODDSTREAM_MAX_BODY_BYTES: larger request bodies answer 413"""
    request_read_timeout_seconds: Positive = 20.0
    """ODDSTREAM_REQUEST_READ_TIMEOUT_SECONDS: a request's headers and body must arrive
    within this many seconds of its first byte (of the connection, for the first
    request), else it is answered 408 and the connection closed"""
    max_connections: Annotated[int, Field(ge=1)] = 4096
    """ODDSTREAM_MAX_CONNECTIONS: past this many open connections (live streams count) or
    requests in progress, new requests are answered 503"""
    auth_failure_limit: Annotated[int, Field(ge=1)] = 20
    """ODDSTREAM_AUTH_FAILURE_LIMIT: a client address that presents more unknown API keys
    than this within the window is answered 429 (Retry-After) for any key until the
    window ends"""
    auth_failure_window_seconds: Positive = 60.0
    """ODDSTREAM_AUTH_FAILURE_WINDOW_SECONDS: the window of ``auth_failure_limit``"""
    read_wait_seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 2.0
    """ODDSTREAM_READ_WAIT_SECONDS: how long ``?min_position=`` may wait (0: not at all)"""
    push_coalesce_ms: Annotated[int, Field(ge=0)] = 100
    """ODDSTREAM_PUSH_COALESCE_MS: live boards are pushed at most this often per race"""
    ready_max_lag: Annotated[int, Field(ge=0)] = 10_000
    """ODDSTREAM_READY_MAX_LAG: /readyz fails when projections lag the log by more"""
    keep_finished_races: Annotated[int, Field(ge=0)] = 50
    """ODDSTREAM_KEEP_FINISHED_RACES: races that are over (final, abandoned) kept in the
    tote read model's memory; older ones are read from their streams when asked for"""
    keep_finished_markets: Annotated[int, Field(ge=0)] = 1000
    """ODDSTREAM_KEEP_FINISHED_MARKETS: fixed-odds markets that are over (resulted,
    voided, deleted) kept in the odds read model's memory; older ones leave the listing
    (``GET /odds``) and are read from their streams when asked for"""
    follow_pace_ms: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)] = 10.0
    """ODDSTREAM_FOLLOW_PACE_MS: a caught-up follower of the log (a read model, a consumer)
    reads it at most this often, so that under load the commits of this long come in
    one read rather than one read per commit in every process; after a quiet spell it
    reads at once, and a request waiting for a position (``min_position``) hurries its
    own process's follower. 0: a read per wake-up"""
    page_max_bytes: Annotated[int, Field(ge=1)] = DEFAULT_PAGE_MAX_BYTES
    """ODDSTREAM_PAGE_MAX_BYTES: a page of the log read by a follower (a read model, a
    consumer, a sink) ends when its events' data and metadata reach this many bytes, or
    at its count limit, whichever comes first; a larger single event comes alone. It
    bounds a follower's memory (about three pages: docs/consumers.md)"""
    snapshot_seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 60.0
    """ODDSTREAM_SNAPSHOT_SECONDS: seconds between snapshots of the tote and odds read
    models into the store while running (and one at stop), so a restart, even after a crash, resumes
    from a recent one; 0: at stop only"""
    demo_bets_per_second: Positive = 20.0
    """ODDSTREAM_DEMO_BETS_PER_SECOND: the demo's pace (at least 0.1 is used)"""
    demo_race_seconds: Positive = 90.0
    """ODDSTREAM_DEMO_RACE_SECONDS: how long a demo race is open (at least 5 is used)"""
    read_model_path: str = ""
    """ODDSTREAM_READ_MODEL_PATH: the SQLite file of the read models (wallet balances and
    transactions) when no Redis is configured; ``:memory:`` keeps them in memory; empty
    (the default): beside an SQLite store's file, else ``data/read_models.db``"""
    quote_tables_url: Annotated[str | None, AfterValidator(_jdbc_url)] = None
    """ODDSTREAM_QUOTE_TABLES_URL: a JDBC URL (``jdbc:sqlite:data/analytics.db``,
    ``jdbc:postgresql://host/db``, ``jdbc:mysql://host/db``): the embedded service keeps
    the connector ``quote-tables`` (``oddstream.QuoteTablesSinkConnector``) writing the
    analysts' quote tables there; unset (the default): no such connector is made"""
    redis_url: Annotated[str | None, AfterValidator(_redis_url)] = None
    """ODDSTREAM_REDIS_URL: ``redis://host:6379/0`` puts the read models in Redis; unset
    (the default) keeps them in SQLite at ``read_model_path``"""
    redis_prefix: str = "oddstream:"
    """ODDSTREAM_REDIS_PREFIX: the prefix of every Redis key the read models write"""
    nats_url: Annotated[str | None, AfterValidator(_nats_url)] = None
    """ODDSTREAM_NATS_URL: ``nats://127.0.0.1:4222``: services mode's bus (``oddstream
    api`` / ``worker`` / ``up``); unset for the embedded ``serve``"""
    bus_format: Literal["msgpack", "protobuf"] = "msgpack"
    """ODDSTREAM_BUS_FORMAT: services mode: the format of the velocity bus's messages on
    NATS, ``msgpack`` (the default) or ``protobuf``; every process reads both, so it can
    change one process at a time"""
    velocity_medium_rate: Annotated[float, Field(ge=0, allow_inf_nan=False)] = RATE["medium"] or 0.0
    """ODDSTREAM_VELOCITY_MEDIUM_RATE: services mode: the medium tier's events per second
    an API process sends on NATS at most, so a burst is spread out rather than taking the
    CPU from the high tier (which is never paced, and which medium and low wait for);
    events now and then are never held back; 0: as fast as it can"""
    velocity_low_rate: Annotated[float, Field(ge=0, allow_inf_nan=False)] = RATE["low"] or 0.0
    """ODDSTREAM_VELOCITY_LOW_RATE: services mode: the low tier's events per second an API
    process sends on NATS at most (as ``ODDSTREAM_VELOCITY_MEDIUM_RATE``); a burst of
    100,000 takes 2 s at the default; 0: as fast as it can"""
    partitions: Annotated[int, Field(ge=1, le=4096)] = 64
    """ODDSTREAM_PARTITIONS: services mode: races, fixed-odds markets and wallets are
    spread over this many partitions by a stable hash of their stream; every process of
    a deployment must agree on it"""
    command_deadline_seconds: Positive = 5.0
    """ODDSTREAM_COMMAND_DEADLINE_SECONDS: services mode: how long an API process keeps
    trying to reach the owner of a command's partition before answering 503"""
    rebalance_seconds: Positive = 0.5
    """ODDSTREAM_REBALANCE_SECONDS: services mode: how often a worker checks who is alive
    and takes or gives up partitions"""
    worker_health_host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    """ODDSTREAM_WORKER_HEALTH_HOST: services mode: the address a worker's health port
    listens on"""
    worker_health_port: Annotated[int, Field(ge=0, le=65535)] = 0
    """ODDSTREAM_WORKER_HEALTH_PORT: services mode: the port of a worker's ``/healthz``
    and ``/readyz`` (``oddstream worker --health-port``); 0 (the default): none"""

    def __init__(self, **values: Any) -> None:
        for old, new in RENAMED.items():  # an old name is refused, never silently ignored
            if os.environ.get(old, "").strip():
                raise SettingsError(f"{old} is now {new}: set that instead")
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(_describe(exc.errors(), given=values.keys())) from None

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with the given non-``None`` values replaced, checked as the environment's
        are (:class:`SettingsError` names the setting)."""
        unknown = set(changes) - set(type(self).model_fields)
        if unknown:
            raise SettingsError(f"unknown settings: {sorted(unknown)}")
        given = {name: value for name, value in changes.items() if value is not None}
        # every field is passed, so nothing comes from the environment again
        return type(self)(**{**self.model_dump(), **given})

    def velocity_rates(self) -> dict[str, float | None]:
        """The velocity bus's pace per paced tier (``NatsVelocityBus(rates=…)``): None
        for a rate of 0 (unpaced)."""
        return {"medium": self.velocity_medium_rate or None, "low": self.velocity_low_rate or None}

    def store_options(self) -> dict[str, Any]:
        """Adapter options for :func:`oddstream.eventstore.open_store`."""
        pace = self.follow_pace_ms / 1000
        if is_postgres_url(self.store_url):
            return {
                "schema": self.pg_schema,
                "follow_pace": pace,
                "page_max_bytes": self.page_max_bytes,
            }
        return {
            "synchronous": self.sqlite_synchronous,
            "commit_thread": self.sqlite_commit_thread,
            "follow_pace": pace,
            "page_max_bytes": self.page_max_bytes,
        }


def _describe(errors: list[ErrorDetails], *, given: Collection[str]) -> str:
    """One line per refused value: ``NAME: reason (got value)``, where NAME is the
    environment variable unless the value was given as a keyword."""
    lines = []
    for error in errors:
        field = str(error["loc"][0]) if error["loc"] else "settings"
        from_env = field in Settings.model_fields and field not in given
        name = f"{ENV_PREFIX}{field.upper()}" if from_env else field
        if error["type"] in ("bool_parsing", "bool_type"):
            reason = "Input should be a yes/no value (1/true/yes/on/y/t or 0/false/no/off/n/f)"
        elif error["type"] == "value_error":
            reason = error["msg"].removeprefix("Value error, ")
        else:
            reason = error["msg"]
        value = error["input"]
        if field in _URLS and isinstance(value, str):
            value = redact_url(value)
            if field == "quote_tables_url":
                from .sinks.config import redact_jdbc_url

                value = redact_jdbc_url(value)
        if field in _SECRETS or repr(value) in reason:
            lines.append(f"{name}: {reason}")
        else:
            lines.append(f"{name}: {reason} (got {value!r})")
    return "\n".join(lines)
