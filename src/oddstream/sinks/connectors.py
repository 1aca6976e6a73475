"""Connectors: SQL sinks created, configured, paused, resumed, restarted and deleted as
Kafka Connect's REST API does it, kept as events in the log so that they survive
restarts.

Each connector ``n`` is the stream ``connector-n``:

=============================== ====================== ===============================
event                           data                   effect
=============================== ====================== ===============================
``connect.ConnectorCreated``    ``{name, config}``     exists, RUNNING (again, after a
                                                       delete)
``connect.ConnectorConfigUpdated`` ``{name, config}``  new config; the sink restarts
``connect.ConnectorPaused``     ``{name}``             PAUSED: its sink stopped
``connect.ConnectorResumed``    ``{name}``             RUNNING
``connect.ConnectorRestarted``  ``{name}``             none in the log (the sink was
                                                       restarted: an audit entry)
``connect.ConnectorDeleted``    ``{name}``             gone
=============================== ====================== ===============================

The config is stored **as given, password included**: after a restart the sink must
connect again, and there is no secret store to point at instead. The log is the
service's own database (whoever reads it reads the bets and wallets too); answers never
carry the password (:meth:`ConnectorManager.config` is the redacted view, ``[hidden]``),
and a config sent back with ``[hidden]`` where a password was keeps the stored one, so a
client may GET, edit and PUT a config.

:class:`ConnectorManager` replays the streams at :meth:`~ConnectorManager.start` and
runs every RUNNING connector's :class:`~oddstream.sinks.consumer.SinkConsumer` on its
own :class:`~oddstream.consumers.ConsumerRunner`. States are Connect's: RUNNING, PAUSED,
FAILED, UNASSIGNED (not started yet); a task that stopped on a record it cannot write
(``errors.tolerance=none``) is FAILED with the trace, while its connector stays RUNNING,
as in Connect; a stored config the code no longer accepts makes the connector FAILED.

Besides Confluent's JDBC sink on the REST Proxy's topics (``source_for``), a manager may
know connector classes of oddstream's own (:class:`SinkPlugin`: the analysts' quote
tables, ``oddstream.QuoteTablesSinkConnector``), each with its own reading of the config
and its own sink.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..consumers import ConsumerRunner, RunnerState, SinkCheckpoint
from ..eventstore import EventStore, NewEvent, WrongExpectedVersion
from ..eventstore.prepare import MAX_STREAM_ID_LENGTH
from ..runtime.deadletters import DeadLetterStore, check_source
from .config import HIDDEN, ConfigProblem, JdbcSinkConfig, SinkConfigError, parse_config
from .config import redact_jdbc_url as _redact_url
from .consumer import RecordSource, SinkConsumer

log = logging.getLogger(__name__)

CATEGORY = "connector"
CREATED = "connect.ConnectorCreated"
CONFIG_UPDATED = "connect.ConnectorConfigUpdated"
PAUSED = "connect.ConnectorPaused"
RESUMED = "connect.ConnectorResumed"
RESTARTED = "connect.ConnectorRestarted"
DELETED = "connect.ConnectorDeleted"
#: dead-letter sources that belong to something else (the quote ingest's letters are
#: replayed into the ingest): a sink's dead-letter topic may not be one
RESERVED_DLQ_SOURCES = frozenset({"quotes"})
#: the longest name a connector may have (its stream's id holds it)
MAX_NAME_LENGTH = MAX_STREAM_ID_LENGTH - len(CATEGORY) - 1

State = Literal["RUNNING", "PAUSED", "FAILED", "UNASSIGNED"]
#: how a connector's records are read: its config → the source (the REST Proxy's topics)
SourceFactory = Callable[[JdbcSinkConfig], RecordSource]
#: a plugin's sink: (connector name, config, dead-letter store) → the consumer to run
ConsumerFactory = Callable[[str, JdbcSinkConfig, DeadLetterStore], SinkConsumer]


@dataclass(frozen=True)
class SinkPlugin:
    """A connector class of oddstream's own (Connect's ``connector.class``): ``parse``
    reads a config given with that class (raising :class:`SinkConfigError`; the parsed
    config's ``connector_class`` is the plugin's), ``consumer`` makes its sink;
    ``version`` is what ``GET /connector-plugins`` reports."""

    connector_class: str
    parse: Callable[[Mapping[str, Any]], JdbcSinkConfig]
    consumer: ConsumerFactory
    version: str


class ConnectorError(Exception):
    """Base of the manager's refusals."""


class ConnectorNotFound(ConnectorError, LookupError):
    """No connector has this name (Connect answers 404)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Connector {name} not found")
        self.name = name


class ConnectorExists(ConnectorError):
    """A connector of this name exists already (Connect answers 409)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Connector {name} already exists")
        self.name = name


class ConnectorConflict(ConnectorError):
    """Another process changed the connector meanwhile; its state was reloaded: try
    again (Connect answers 409 during a rebalance)."""


class InvalidConnectorName(ConnectorError, ValueError):
    """A name that cannot name a connector (empty, control characters, padded, too
    long)."""


def stream_of(name: str) -> str:
    """The stream of connector ``name``'s events."""
    return f"{CATEGORY}-{name}"


def check_name(name: object) -> str:
    """``name`` if it can name a connector (and its stream)."""
    if not isinstance(name, str) or not name:
        raise InvalidConnectorName("a connector's name is a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidConnectorName(f"a connector's name is at most {MAX_NAME_LENGTH} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in name):
        raise InvalidConnectorName("a connector's name holds no control characters")
    if name != name.strip():
        raise InvalidConnectorName("a connector's name has no white space at either end")
    return name


@dataclass(frozen=True)
class ConnectorInfo:
    """What ``POST /connectors`` and ``GET /connectors/{name}`` answer; ``report``: the
    settings kept but not acted on (unknown or ignored), one line each."""

    name: str
    config: dict[str, str]
    report: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "config": dict(self.config),
            "tasks": [{"connector": self.name, "task": 0}],
            "type": "sink",
        }


@dataclass(frozen=True)
class TaskStatus:
    id: int
    state: State
    worker_id: str
    trace: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "state": self.state, "worker_id": self.worker_id}
        if self.trace is not None:
            out["trace"] = self.trace
        return out


@dataclass(frozen=True)
class ConnectorStatus:
    """``GET /connectors/{name}/status`` (:meth:`to_json`), and oddstream's details of
    the sink (``details``: the runner's state — ``live``, ``catching_up``,
    ``retrying`` … —, position, lag, failures, the last error, rows written, records
    dead-lettered, whether the target is unavailable)."""

    name: str
    state: State
    worker_id: str
    tasks: list[TaskStatus]
    trace: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self, *, details: bool = False) -> dict[str, Any]:
        connector: dict[str, Any] = {"state": self.state, "worker_id": self.worker_id}
        if self.trace is not None:
            connector["trace"] = self.trace
        out: dict[str, Any] = {
            "name": self.name,
            "connector": connector,
            "tasks": [t.to_json() for t in self.tasks],
            "type": "sink",
        }
        if details:
            out["details"] = dict(self.details)
        return out


@dataclass
class _Connector:
    name: str
    config: dict[str, Any]
    version: int  # its stream's version (the expected version of the next event)
    paused: bool = False
    parsed: JdbcSinkConfig | None = None
    config_error: str | None = None
    runner: ConsumerRunner | None = None
    consumer: SinkConsumer | None = None
    #: what the connector will not write that a user might expect it to (its stream's
    #: history: created again after a delete, topics added), for its status
    warnings: list[str] = field(default_factory=list)


class ConnectorManager:
    """The connectors of one store: their events, and a running sink for each RUNNING
    one. ``source_for`` makes a JDBC sink connector's record source from its config;
    ``plugins`` are the other connector classes it runs; ``runner_options`` go to each
    :class:`ConsumerRunner` (``batch_size`` is the connector's ``batch.size``)."""

    def __init__(
        self,
        store: EventStore,
        source_for: SourceFactory,
        *,
        dead_letters: DeadLetterStore | None = None,
        worker_id: str = "oddstream",
        runner_options: Mapping[str, Any] | None = None,
        plugins: Iterable[SinkPlugin] = (),
    ) -> None:
        self.store = store
        self.source_for = source_for
        self.plugins = {plugin.connector_class: plugin for plugin in plugins}
        self.dead_letters = dead_letters or DeadLetterStore(store)
        self.worker_id = worker_id
        self.runner_options = dict(runner_options or {})
        self._connectors: dict[str, _Connector] = {}
        self._lock = asyncio.Lock()
        self._started = False

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Replay the connectors' streams and start every RUNNING connector's sink."""
        async with self._lock:
            self._connectors = await self._replay()
            self._started = True
            for connector in self._connectors.values():
                if not connector.paused and connector.parsed is not None:
                    await self._start_sink(connector)

    async def stop(self) -> None:
        """Stop every sink (their positions are in their targets)."""
        async with self._lock:
            self._started = False
            for connector in self._connectors.values():
                await self._stop_sink(connector)

    async def _replay(self) -> dict[str, _Connector]:
        found: dict[str, _Connector] = {}
        async for event in self.store.scan_all(0, category=CATEGORY):
            name = event.stream_id[len(CATEGORY) + 1 :]
            self._apply(found, name, event.type, event.data, event.version)
        for connector in found.values():
            self._parse(connector)
        return found

    @staticmethod
    def _apply(
        found: dict[str, _Connector], name: str, kind: str, data: Mapping[str, Any], version: int
    ) -> None:
        current = found.get(name)
        if kind == CREATED:
            created = _Connector(name, dict(data.get("config") or {}), version)
            if version > 1:  # its stream holds an earlier life
                created.warnings.append(RECREATED_WARNING)
            found[name] = created
            return
        if current is None:
            return  # a deleted connector's later events (none are written)
        current.version = version
        if kind == CONFIG_UPDATED:
            new = dict(data.get("config") or {})
            added = _topics_added(current.config, new)
            if added is not None:
                current.warnings.append(added)
            current.config = new
        elif kind == PAUSED:
            current.paused = True
        elif kind == RESUMED:
            current.paused = False
        elif kind == DELETED:
            found.pop(name)

    def _parse(self, connector: _Connector) -> None:
        try:
            connector.parsed = self._check(connector.name, connector.config)
            connector.config_error = None
        except SinkConfigError as exc:
            connector.parsed = None
            connector.config_error = f"the stored configuration is refused: {exc}"

    def _check(self, name: str, config: Mapping[str, Any]) -> JdbcSinkConfig:
        return check_config(name, config, self.plugins)

    # ----------------------------------------------------------------- sinks
    async def _start_sink(self, connector: _Connector) -> None:
        assert connector.parsed is not None
        plugin = self.plugins.get(connector.parsed.connector_class)
        if plugin is not None:
            consumer = plugin.consumer(connector.name, connector.parsed, self.dead_letters)
        else:
            consumer = SinkConsumer(
                connector.name,
                connector.parsed,
                self.source_for(connector.parsed),
                self.dead_letters,
            )
        options = {"max_backoff": 60.0, **self.runner_options}
        options["batch_size"] = connector.parsed.batch_size
        checkpoint = SinkCheckpoint(refuse_beyond_head=True)  # analysts' tables: never wiped
        runner = ConsumerRunner(self.store, consumer, checkpoint, retry_load=True, **options)
        connector.consumer, connector.runner = consumer, runner
        await runner.start()

    async def _stop_sink(self, connector: _Connector) -> None:
        runner, consumer = connector.runner, connector.consumer
        connector.runner = connector.consumer = None
        if runner is not None:
            with contextlib.suppress(Exception):
                await runner.stop()
        if consumer is not None:
            await consumer.close()

    # ----------------------------------------------------------------- events
    async def _append(self, connector: _Connector, kind: str, data: dict[str, Any]) -> None:
        try:
            result = await self.store.append(
                stream_of(connector.name),
                [NewEvent(kind, {"name": connector.name, **data})],
                connector.version,
            )
        except WrongExpectedVersion:
            await self._reload(connector.name)
            raise ConnectorConflict(
                f"connector {connector.name} was changed by another process; try again"
            ) from None
        connector.version = result.version

    async def _reload(self, name: str) -> None:
        found: dict[str, _Connector] = {}
        async for event in self.store.scan_stream(stream_of(name)):
            self._apply(found, name, event.type, event.data, event.version)
        old = self._connectors.pop(name, None)
        if old is not None:
            await self._stop_sink(old)
        fresh = found.get(name)
        if fresh is not None:
            self._parse(fresh)
            self._connectors[name] = fresh
            if self._started and not fresh.paused and fresh.parsed is not None:
                await self._start_sink(fresh)

    def _get(self, name: str) -> _Connector:
        connector = self._connectors.get(name)
        if connector is None:
            raise ConnectorNotFound(name)
        return connector

    async def _version(self, name: str) -> int:
        return await self.store.stream_version(stream_of(name))

    # ----------------------------------------------------------------- commands
    async def create(self, name: str, config: Mapping[str, Any]) -> ConnectorInfo:
        """Create and start a connector (``ConnectorExists``, ``SinkConfigError``)."""
        check_name(name)
        async with self._lock:
            if name in self._connectors:
                raise ConnectorExists(name)
            return self._info(await self._create(name, config))

    async def _create(self, name: str, config: Mapping[str, Any]) -> _Connector:
        """Check, record and (once the manager runs) start a new connector; the caller
        holds the lock and knows the name is free."""
        parsed = self._check(name, config)
        connector = _Connector(name, dict(config), await self._version(name), parsed=parsed)
        await self._append(connector, CREATED, {"config": dict(config)})
        if connector.version > 1:
            connector.warnings.append(RECREATED_WARNING)
        self._connectors[name] = connector
        if self._started:
            await self._start_sink(connector)
        return connector

    async def update_config(
        self, name: str, config: Mapping[str, Any]
    ) -> tuple[ConnectorInfo, bool]:
        """Replace a connector's config (creating it if there is none: Connect's ``PUT
        /connectors/{name}/config``); answers the info and whether it was created. A
        secret setting sent as ``[hidden]`` keeps its stored value."""
        check_name(name)
        async with self._lock:
            connector = self._connectors.get(name)
            if connector is None:
                return self._info(await self._create(name, config)), True
            merged = _keep_hidden(connector.config, config)
            parsed = self._check(name, merged)
            await self._append(connector, CONFIG_UPDATED, {"config": merged})
            added = _topics_added(connector.config, merged)
            if added is not None:
                connector.warnings.append(added)
                log.warning("connector %s: %s", name, added)
            await self._stop_sink(connector)
            connector.config, connector.parsed, connector.config_error = merged, parsed, None
            if self._started and not connector.paused:
                await self._start_sink(connector)
            return self._info(connector), False

    async def ensure(self, name: str, settings: Mapping[str, Any]) -> str:
        """Make connector ``name`` exist with ``settings`` (a service setting that owns
        a connector): created when absent; when present, its config with ``settings``
        written over it, recorded only if that changes it (the other settings an admin
        set are kept, and a paused connector stays paused). Answers ``"created"``,
        ``"updated"`` or ``"kept"``."""
        check_name(name)
        async with self._lock:
            connector = self._connectors.get(name)
            if connector is None:
                await self._create(name, settings)
                return "created"
            merged = {**connector.config, **settings}
            if merged == connector.config and connector.parsed is not None:
                return "kept"
            parsed = self._check(name, merged)
            await self._append(connector, CONFIG_UPDATED, {"config": merged})
            await self._stop_sink(connector)
            connector.config, connector.parsed, connector.config_error = merged, parsed, None
            if self._started and not connector.paused:
                await self._start_sink(connector)
            return "updated"

    async def pause(self, name: str) -> None:
        """Stop the connector's sink until resumed (kept across restarts)."""
        async with self._lock:
            connector = self._get(name)
            if connector.paused:
                return
            await self._append(connector, PAUSED, {})
            connector.paused = True
            await self._stop_sink(connector)

    async def resume(self, name: str) -> None:
        """Run a paused connector's sink again, from where its target stands."""
        async with self._lock:
            connector = self._get(name)
            if not connector.paused:
                return
            await self._append(connector, RESUMED, {})
            connector.paused = False
            if self._started and connector.parsed is not None:
                await self._start_sink(connector)

    async def restart(self, name: str) -> None:
        """Stop and start the connector's sink (a FAILED task tries its batch again);
        a paused connector stays paused."""
        async with self._lock:
            connector = self._get(name)
            await self._append(connector, RESTARTED, {})
            await self._stop_sink(connector)
            self._parse(connector)
            if self._started and not connector.paused and connector.parsed is not None:
                await self._start_sink(connector)

    async def delete(self, name: str) -> None:
        """Stop the connector's sink and forget the connector (its tables and its
        offsets row in the target stay)."""
        async with self._lock:
            connector = self._get(name)
            await self._append(connector, DELETED, {})
            await self._stop_sink(connector)
            self._connectors.pop(name, None)

    # ----------------------------------------------------------------- queries
    def list(self) -> list[str]:
        """The connectors' names, sorted."""
        return sorted(self._connectors)

    def config(self, name: str) -> dict[str, str]:
        """The connector's config as given, passwords ``[hidden]``."""
        return self._info(self._get(name)).config

    def info(self, name: str) -> ConnectorInfo:
        return self._info(self._get(name))

    def _info(self, connector: _Connector) -> ConnectorInfo:
        if connector.parsed is not None:
            return ConnectorInfo(
                connector.name, connector.parsed.redacted(), connector.parsed.report()
            )
        return ConnectorInfo(connector.name, _redacted(connector.config))

    def runners(self) -> builtins.list[ConsumerRunner]:
        """The runners of the sinks running now (for ``/healthz`` and ``/metrics``)."""
        return [c.runner for c in self._connectors.values() if c.runner is not None]

    async def status(self, name: str) -> ConnectorStatus:
        """Connector and task states as Connect reports them, with oddstream's details."""
        connector = self._get(name)
        worker = self.worker_id
        if connector.parsed is None:
            return ConnectorStatus(name, "FAILED", worker, [], trace=connector.config_error)
        if connector.paused:
            return ConnectorStatus(name, "PAUSED", worker, [TaskStatus(0, "PAUSED", worker)])
        runner, consumer = connector.runner, connector.consumer
        if runner is None or consumer is None:
            return ConnectorStatus(
                name, "UNASSIGNED", worker, [TaskStatus(0, "UNASSIGNED", worker)]
            )
        status = runner.status()
        head = await self.store.head_position()
        details: dict[str, Any] = {
            "state": status.state.value,
            "position": status.position,
            "lag": max(0, head - status.position),
            "caught_up": status.caught_up,
            "failures": status.failures,
            "last_error": status.last_error,
            "target_unavailable": consumer.last_unavailable,
            "rows_written": consumer.rows_written,
            "rows_deleted": consumer.rows_deleted,
            "dead_lettered": consumer.dead_lettered,
            "dead_letter_source": consumer.dlq_source,
            "started_from": consumer.started_from,
            "warnings": [
                w
                for w in connector.warnings
                # re-created, but its target held no position for it: it starts from 0
                if not (w == RECREATED_WARNING and consumer.start_known)
                or consumer.started_from is not None
            ],
        }
        if status.state is RunnerState.FAILED:
            trace = consumer.failure_trace or status.last_error
            task = TaskStatus(0, "FAILED", worker, trace)
        else:
            task = TaskStatus(0, "RUNNING", worker)
        return ConnectorStatus(name, "RUNNING", worker, [task], details=details)


RECREATED_WARNING = (
    "created again after a delete: it follows on from the position its earlier life left "
    "in the target's oddstream_sink_offsets (as Kafka Connect keeps a deleted connector's "
    "offsets; see started_from). To write the log from its beginning, delete that row "
    "before creating it, or use a new name"
)


def _topics_added(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """The warning for a config change that makes the connector follow topics it did
    not: the sink keeps one position for all its topics, so a topic added is followed
    from where the sink stands, its earlier records not written (Kafka Connect would
    read them from the topic's beginning)."""
    try:
        before, after = parse_config(old), parse_config(new)
    except SinkConfigError:
        return None
    remedy = (
        "their records before the position the sink stood at when this config was applied "
        "are not written (one position for all topics). To write them, follow such a topic "
        "with a connector of its own (a new name starts from the log's beginning)"
    )
    if after.topics_regex is None:
        if before.topics_regex is not None:
            return f"topics.regex replaced by topics {', '.join(after.topics)}: {remedy}"
        gained = [t for t in after.topics if t not in before.topics]
        return f"topics added: {', '.join(gained)}: {remedy}" if gained else None
    if before.topics_regex == after.topics_regex:
        return None
    return (
        f"topics.regex is now {after.topics_regex!r}: for the topics it matches that "
        f"the earlier config did not, {remedy}"
    )


def check_config(
    name: str, config: Mapping[str, Any], plugins: Mapping[str, SinkPlugin]
) -> JdbcSinkConfig:
    """Connector ``name``'s ``config`` parsed by its class (one of ``plugins`` by
    ``connector.class``, else Confluent's JDBC sink), or :class:`SinkConfigError` naming
    each refused setting."""
    problems: list[ConfigProblem] = []
    given = config.get("name")
    if given is not None and given != name:
        problems.append(
            ConfigProblem(
                "name",
                f"Connector name configuration ({given}) doesn't match connector name "
                f"in the URL ({name})",
            )
        )
    connector_class = config.get("connector.class")
    plugin = plugins.get(connector_class.strip()) if isinstance(connector_class, str) else None
    parsed = plugin.parse(config) if plugin is not None else parse_config(config)
    dlq = parsed.dlq_topic
    if dlq is not None:
        try:
            check_source(dlq)
            if dlq in RESERVED_DLQ_SOURCES:
                raise ValueError(f"{dlq!r} holds another source's dead letters")
        except ValueError as exc:
            problems.append(ConfigProblem("errors.deadletterqueue.topic.name", str(exc)))
    if problems:
        raise SinkConfigError(problems)
    return parsed


async def stored_config(
    store: EventStore, name: str, plugins: Iterable[SinkPlugin] = ()
) -> JdbcSinkConfig:
    """Connector ``name``'s config as its stream holds it now, without a manager (a
    replay of one of its dead letters from the CLI): :class:`ConnectorNotFound` when it
    does not exist (never did, or deleted), :class:`SinkConfigError` when this release
    refuses it."""
    found: dict[str, _Connector] = {}
    async for event in store.scan_stream(stream_of(name)):
        ConnectorManager._apply(found, name, event.type, event.data, event.version)
    connector = found.get(name)
    if connector is None:
        raise ConnectorNotFound(name)
    return check_config(
        name, connector.config, {plugin.connector_class: plugin for plugin in plugins}
    )


def _redacted(config: Mapping[str, Any]) -> dict[str, str]:
    from .config import _redact_value

    return {str(k): _redact_value(str(k), v) for k, v in config.items()}


def _keep_hidden(stored: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` with each value a client sent back as ``[hidden]`` (as it read it)
    replaced by the stored one."""
    out = dict(given)
    for key, value in given.items():
        old = stored.get(key)
        if old is None or not isinstance(value, str) or HIDDEN not in value:
            continue
        if value == HIDDEN or (isinstance(old, str) and _redact_url(old) == value):
            out[key] = old
    return out


__all__ = [
    "CATEGORY",
    "MAX_NAME_LENGTH",
    "ConnectorConflict",
    "ConnectorError",
    "ConnectorExists",
    "ConnectorInfo",
    "ConnectorManager",
    "ConnectorNotFound",
    "ConnectorStatus",
    "ConsumerFactory",
    "InvalidConnectorName",
    "SinkPlugin",
    "SourceFactory",
    "TaskStatus",
    "check_name",
    "stored_config",
    "stream_of",
]
