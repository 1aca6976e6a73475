"""The FastAPI application: tote API, live push, health, metrics and the board page.

Embedded mode: the event store, the race writers and the read model all live in this
process. The HTTP layer only talks to ``Services`` (the writer is reached through
``RaceWriter.execute``), so the writer can move behind a bus without touching it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import __version__
from ..application.services import WalletView
from ..config import Settings, redact_url
from ..consumers import ConsumerGroup
from ..demo import DEMO_WALLETS, Demo, post_sample_quotes
from ..demo_markets import MarketDemo
from ..eventstore import EventStore, EventStoreError, open_store
from ..eventstore.factory import is_postgres_url
from ..integrations.kafka.connect_api import connect_authorizer, connect_router
from ..projections.odds_view import OddsView
from ..projections.tote_view import ToteView
from ..projections.wallets import WalletReader, open_wallet_read_model, wallet_storage
from ..runtime.cashier import Cashier
from ..runtime.market_cashier import MarketBets, MarketCashier
from ..runtime.market_writer import MarketWriter
from ..runtime.ports import Markets, MarketWalletBets, Races, WalletBets, Wallets
from ..runtime.race_writer import RaceWriter
from ..runtime.wallet_writer import WalletWriter
from ..sinks.connectors import ConnectorNotFound
from ..velocity import InProcessVelocityBus, VelocityBus
from . import (
    bet_routes,
    errors,
    graphql_api,
    market_bet_routes,
    odds_routes,
    push,
    quote_routes,
    race_admin,
    race_routes,
    wallet_routes,
)
from .auth import KeyRing, Role
from .lean import LeanRoutes
from .metrics import Metrics
from .middleware import App
from .odds_push import OddsHub
from .openapi import document
from .push import BoardHub
from .server import server_config
from .services import Services, services_of

if TYPE_CHECKING:
    from ..cluster.status import ClusterStatus
    from ..integrations.kafka.service import KafkaIntegration
    from ..sinks.connectors import ConnectorManager

log = logging.getLogger(__name__)
WEB = Path(__file__).resolve().parent.parent / "web"


def create_app(
    settings: Settings | None = None,
    *,
    demo: bool = False,
    store: EventStore | None = None,
    kafka_compat: bool | None = None,
    role: Literal["embedded", "api"] = "embedded",
) -> FastAPI:
    """Build the app. The store is opened at startup (or ``store`` is used as given and
    left open) and everything is stopped in order at shutdown.

    ``kafka_compat`` (default: ``settings.kafka_compat``) switches the Kafka integration
    on (:mod:`oddstream.integrations.kafka`): the Schema Registry and REST Proxy on this
    app and on their own ports (8081, 8082 by default), where existing clients expect
    them, under one key policy; anonymous producers are allowed as
    ``ODDSTREAM_KAFKA_ANONYMOUS_PRODUCERS`` says (unset: yes, as the POC's scripts send
    no key). Off, none of it exists: no registry, no topics, no bridge, no routes.

    ``role``: ``embedded`` (``oddstream serve``) runs the writers, the cashier and every
    consumer here; ``api`` (services mode, ``oddstream api``) sends commands over NATS
    to the workers owning their partitions, reads wallets from the shared Redis read
    model and follows the log (PostgreSQL) for its own live boards.

    Embedded, the SQL sinks' connectors (:class:`~oddstream.sinks.ConnectorManager`)
    run here too, started after the store and the Kafka integration and stopped before
    them, with Kafka Connect's REST API on this app (and on its own port, 8083, with the
    Kafka integration on). An API process of services mode runs no connectors (for
    now): a sink writes from one process, and the workers own no such thing yet.
    """

    settings = settings or Settings()
    metrics = Metrics()
    keys = KeyRing.from_settings(settings, extra=_demo_keys(settings) if demo else ())
    metrics.watch_auth(keys.failures)
    kafka_on = settings.kafka_compat if kafka_compat is None else kafka_compat
    if role == "api":
        _check_api_settings(settings, store)
        if kafka_on:
            raise ValueError("the Kafka integration runs in the embedded mode only (for now)")
        if settings.quote_tables_url:
            # no process of services mode runs connectors: refused, not silently unused
            raise ValueError(
                "ODDSTREAM_QUOTE_TABLES_URL: the quote tables' connector runs in the "
                "embedded mode only (oddstream serve), for now"
            )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if store is None:
                the_store = await open_store(settings.store_url, **settings.store_options())
                stack.push_async_callback(the_store.close)
            else:
                the_store = store
            view = ToteView(
                the_store,
                keep_finished=settings.keep_finished_races,
                snapshot_every=settings.snapshot_seconds,
            )
            hub = BoardHub(view, settings.push_coalesce_ms / 1000)
            stack.push_async_callback(hub.close)
            odds_view = OddsView(
                the_store,
                keep_finished=settings.keep_finished_markets,
                snapshot_every=settings.snapshot_seconds,
            )
            consumers = ConsumerGroup()
            consumers.add(view.runner)
            consumers.add(odds_view.runner)
            if role == "api":
                parts = await _remote_parts(settings, the_store, stack, odds_view.runner.hint)
            else:
                parts = await _local_parts(settings, the_store, metrics, consumers, stack)
            metrics.velocity_bus = parts.bus
            markets, market_bets = parts.markets, parts.market_bets
            market_cashier = None
            if markets is None:  # embedded: this process writes markets and pays bets
                writer = MarketWriter(
                    the_store, on_append=metrics.append_latency.observe, bus=parts.bus
                )
                market_cashier = MarketCashier(the_store, MarketBets(writer), parts.wallets)
                consumers.add(market_cashier.runner)
                markets, market_bets = writer, market_cashier
            app.state.services = Services(
                settings=settings,
                store=the_store,
                writer=parts.races,
                view=view,
                hub=hub,
                metrics=metrics,
                keys=keys,
                wallets=parts.wallets,
                cashier=parts.bets,
                wallet_view=parts.wallet_view,
                consumers=consumers,
                cluster=parts.cluster,
                markets=markets,
                market_cashier=market_bets,
                velocity_bus=parts.bus,
                odds_view=odds_view,
                odds_hub=OddsHub(odds_view),
            )
            await view.start()
            stack.push_async_callback(view.stop)
            await odds_view.start()
            stack.push_async_callback(odds_view.stop)
            await parts.start()
            if market_cashier is not None:
                await market_cashier.start()
                stack.push_async_callback(market_cashier.stop)
            kafka = None
            if kafka_on:
                kafka = await _start_kafka(app, settings, keys, the_store, parts, consumers, stack)
            if role == "embedded":
                app.state.services.connectors = await _start_connectors(
                    settings, keys, the_store, kafka, stack
                )
            if demo and role == "embedded" and settings.quote_tables_url:
                counts = await post_sample_quotes(the_store)
                log.info("demo: the sample quote journeys posted: %s", counts)
            if demo:
                runner = Demo(
                    parts.races,
                    bets_per_second=settings.demo_bets_per_second,
                    race_seconds=settings.demo_race_seconds,
                    wallets=parts.wallets,
                    cashier=parts.bets,
                )
                runner.start()
                stack.push_async_callback(runner.stop)
                market_demo = MarketDemo(markets, market_seconds=settings.demo_race_seconds)
                market_demo.start()
                stack.push_async_callback(market_demo.stop)
            yield

    app = App(
        title="oddstream",
        version=__version__,
        lifespan=lifespan,
        description="Event-sourced tote: races, bets, live odds. Money is integer cents.",
    )
    errors.install(app)
    lean = LeanRoutes([*bet_routes.lean, *wallet_routes.lean, push.lean])
    app.include_router(race_routes.router)
    app.include_router(bet_routes.router)
    app.include_router(race_admin.router)
    app.include_router(wallet_routes.router)
    app.include_router(push.router)
    app.include_router(quote_routes.router)
    app.include_router(odds_routes.router)
    app.include_router(market_bet_routes.router)
    app.state.graphql = graphql_api.graphql_router(settings.max_connections)
    app.include_router(app.state.graphql)
    if role == "embedded":
        app.include_router(connect_router(_connectors_of, connect_authorizer(keys)))
    _ops_routes(app, settings)
    if (WEB / "index.html").exists():
        app.mount("/static", StaticFiles(directory=WEB), name="static")

        @app.get("/", include_in_schema=False)
        async def index() -> FileResponse:
            return FileResponse(WEB / "index.html")

        @app.get("/markets", include_in_schema=False)
        async def markets() -> FileResponse:
            """The fixed-odds page: every market's prices, live over GraphQL."""
            return FileResponse(WEB / "markets.html")

    app.install_edge(metrics, settings.max_body_bytes, lean)
    document(app, lean)
    return app


@dataclass
class _Parts:
    """What commands go through and wallets are read from, and how to start it."""

    races: Races
    wallets: Wallets
    bets: WalletBets
    wallet_view: WalletView
    start: Callable[[], Awaitable[None]]
    writer: RaceWriter | None = None
    cluster: ClusterStatus | None = None
    #: where the market writer publishes committed events by velocity tier (services
    #: mode: the workers publish; this process subscribes)
    bus: VelocityBus = field(default_factory=InProcessVelocityBus)
    #: services mode: markets' requests and bets on them, to their owners (embedded:
    #: None, this process's market writer and cashier are made with the rest)
    markets: Markets | None = None
    market_bets: MarketWalletBets | None = None


async def _local_parts(
    settings: Settings,
    store: EventStore,
    metrics: Metrics,
    consumers: ConsumerGroup,
    stack: contextlib.AsyncExitStack,
) -> _Parts:
    """Embedded: the writers, the cashier and the wallet projection, in this process."""
    writer = RaceWriter(store, on_append=metrics.append_latency.observe)
    wallets = WalletWriter(store, on_append=metrics.append_latency.observe)
    cashier = Cashier(store, writer, wallets)
    wallet_view = open_wallet_read_model(settings, store)
    consumers.add(wallet_view.runner)
    consumers.add(cashier.runner)

    async def start() -> None:
        await wallet_view.start()
        stack.push_async_callback(wallet_view.stop)
        await cashier.start()
        stack.push_async_callback(cashier.stop)

    return _Parts(writer, wallets, cashier, wallet_view, start, writer=writer)


def _check_api_settings(settings: Settings, store: EventStore | None) -> None:
    """What an API process of services mode cannot serve without: the workers' log
    (PostgreSQL: an SQLite file would be a log of its own), NATS and Redis."""
    if store is None and not is_postgres_url(settings.store_url):
        raise ValueError(
            "an API process reads the workers' log: ODDSTREAM_STORE_URL must be the "
            "deployment's PostgreSQL store"
        )
    if not settings.nats_url:
        raise ValueError("an API process needs NATS (ODDSTREAM_NATS_URL)")
    if not settings.redis_url:
        raise ValueError("an API process needs Redis for the wallets (ODDSTREAM_REDIS_URL)")


async def _remote_parts(
    settings: Settings,
    store: EventStore,
    stack: contextlib.AsyncExitStack,
    odds_wake: Callable[[int], bool],
) -> _Parts:
    """Services mode's API process: commands to the workers over NATS, wallets read from
    the shared read model; the high tier of the velocity bus wakes the odds view's
    follower (``odds_wake``: its runner's ``hint``) from its pace
    (:class:`~oddstream.velocity.wake.VelocityWake`)."""
    import nats

    from ..cluster.router import Router
    from ..cluster.status import ClusterStatus
    from ..cluster.worker import subject_prefix
    from ..velocity.nats_bus import NatsVelocityBus
    from ..velocity.wake import VelocityWake

    assert settings.nats_url is not None  # _check_api_settings
    nc = await nats.connect(
        settings.nats_url,
        name="oddstream-api",
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
    )
    stack.push_async_callback(nc.close)
    prefix = await subject_prefix(settings, store)
    bus = NatsVelocityBus(
        settings.nats_url,
        f"{prefix}.velocity",
        name="oddstream-api",
        fmt=settings.bus_format,
        rates=settings.velocity_rates(),
    )
    await bus.start()
    stack.push_async_callback(bus.close)
    router = Router(
        nc,
        prefix=prefix,
        partitions=settings.partitions,
        deadline=settings.command_deadline_seconds,
        store=store,
        reader=WalletWriter(store),
    )
    reader = WalletReader(store, wallet_storage(settings))
    status = ClusterStatus(router, nc, dsn=settings.store_url, schema=settings.pg_schema)
    stack.push_async_callback(status.close)

    wake = VelocityWake(bus, odds_wake)

    async def start() -> None:
        await reader.start()
        stack.push_async_callback(reader.stop)
        await wake.start()
        stack.push_async_callback(wake.stop)

    return _Parts(
        router.races,
        router.wallets,
        router.bets,
        reader,
        start,
        cluster=status,
        bus=bus,
        markets=router.markets,
        market_bets=router.market_bets,
    )


async def _start_kafka(
    app: FastAPI,
    settings: Settings,
    keys: KeyRing,
    store: EventStore,
    parts: _Parts,
    consumers: ConsumerGroup,
    stack: contextlib.AsyncExitStack,
) -> KafkaIntegration:
    """The Kafka integration (embedded only): its routes here, its own ports beside."""
    from ..integrations.kafka.service import KafkaIntegration

    assert parts.writer is not None
    authorize = _kafka_authorizer(settings, keys)
    kafka = await KafkaIntegration.start(store, parts.writer, authorize=authorize)
    stack.push_async_callback(kafka.stop)
    for follower in kafka.bridge.runners:
        consumers.add(follower)
    for router in kafka.routers():
        app.include_router(router)
    app.openapi_schema = None  # regenerate it with the routes just added
    for side_app, port in (
        (kafka.schema_registry_app(), settings.schema_registry_port),
        (kafka.rest_proxy_app(), settings.rest_proxy_port),
    ):
        server, task = _side_server(side_app, settings, port)
        stack.push_async_callback(_stop_side_server, server, task)
    return kafka


def _connectors_of(request: Request) -> ConnectorManager:
    connectors = services_of(request).connectors
    assert connectors is not None  # the routes exist in the embedded mode only
    return connectors


async def _start_connectors(
    settings: Settings,
    keys: KeyRing,
    store: EventStore,
    kafka: KafkaIntegration | None,
    stack: contextlib.AsyncExitStack,
) -> ConnectorManager:
    """The SQL sinks' connectors: replayed from the log, every RUNNING one's sink
    started (a target that cannot be reached is retried, never fatal); with the Kafka
    integration on, Kafka Connect's REST API on its own port too.

    Sinks read the REST Proxy's topics, whose Avro schemas are in the Schema Registry:
    the integration's registry when it is on, else one opened read-only on the log (the
    topics a previous run with it wrote are still there); a connector of the class
    ``oddstream.QuoteTablesSinkConnector`` reads the quote streams instead. With
    ``ODDSTREAM_QUOTE_TABLES_URL`` set, the connector ``quote-tables`` of that class is
    made (or pointed at that URL) here."""
    from ..integrations.kafka.connect_api import connect_app
    from ..integrations.kafka.schema_registry import SchemaRegistry
    from ..integrations.kafka.sink_source import TopicSource
    from ..sinks.config import JdbcSinkConfig
    from ..sinks.connectors import ConnectorManager
    from ..sinks.quote_tables.connector import (
        QUOTE_TABLES_CONNECTOR,
        quote_tables_connector,
        quote_tables_plugin,
    )

    registry = kafka.registry if kafka is not None else await SchemaRegistry.open(store)

    def source_for(config: JdbcSinkConfig) -> TopicSource:
        return TopicSource(config, registry)

    manager = ConnectorManager(
        store,
        source_for,
        worker_id=f"{settings.host}:{settings.port}",
        plugins=[quote_tables_plugin(store)],
    )
    await manager.start()
    stack.push_async_callback(manager.stop)
    if settings.quote_tables_url:
        # the setting owns this connector: made, or pointed at the URL, at each start
        done = await manager.ensure(
            QUOTE_TABLES_CONNECTOR, quote_tables_connector(settings.quote_tables_url)
        )
        log.info("quote tables connector %s: %s", QUOTE_TABLES_CONNECTOR, done)
    if kafka is not None:
        side = connect_app(manager, connect_authorizer(keys))
        server, task = _side_server(side, settings, settings.kafka_connect_port)
        stack.push_async_callback(_stop_side_server, server, task)
    return manager


async def _stop_side_server(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    with contextlib.suppress(Exception):
        await task


def _kafka_authorizer(settings: Settings, keys: KeyRing) -> Any:
    """The key policy of the Kafka integration's routes, on every port."""
    from ..integrations.kafka.access_policy import kafka_authorizer

    anonymous_producers = settings.kafka_anonymous_producers
    if anonymous_producers is None:
        anonymous_producers = True
    if anonymous_producers:
        log.warning(
            "anyone may register schemas and produce without a key "
            "(ODDSTREAM_KAFKA_ANONYMOUS_PRODUCERS=0 to require a producer key)"
        )
    return kafka_authorizer(keys, anonymous_producers=anonymous_producers)


def _demo_keys(settings: Settings) -> list[tuple[str, Role, str | None]]:
    """Keys the demo makes (an admin key unless one is configured, one per demo
    customer), printed so that someone can use them."""
    made: list[tuple[str, Role, str | None]] = []
    if settings.admin_key is None:
        made.append((secrets.token_urlsafe(18), "admin", None))
    if settings.customer_keys:  # configured (``oddstream up`` gives every process the same)
        return made
    made += [(secrets.token_urlsafe(18), "customer", wallet) for wallet in DEMO_WALLETS]
    for key, _role, wallet in made:
        who = f"customer key for wallet {wallet}" if wallet else "admin key"
        print(f"demo {who}: {key}", flush=True)
    return made


def serve_app(app: FastAPI, settings: Settings) -> FastAPI:
    """The ASGI callable to serve: the app itself (every route, the lean ones included,
    is inside it)."""
    return app


class _SideServer(uvicorn.Server):
    """A server run inside the main one's loop: the main server owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _side_server(
    app: Any, settings: Settings, port: int
) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Serve ``app`` on ``port`` from this process and loop (the Kafka-compatible ports),
    with the main server's read timeout and connection cap."""
    server = _SideServer(server_config(app, settings, host=settings.host, port=port))
    return server, asyncio.create_task(server.serve(), name=f"side-server-{port}")


_TASK_STATES = ("RUNNING", "PAUSED", "FAILED", "UNASSIGNED")


def _sink_metrics(metrics: Metrics, sinks: dict[str, Any] | None) -> None:
    """The sinks' gauges, from scratch (a deleted connector's series go)."""
    for gauge in (
        metrics.sink_lag,
        metrics.sink_state,
        metrics.sink_dead_lettered,
        metrics.sink_rows_written,
    ):
        gauge.clear()
    for name, sink in (sinks or {}).items():
        state = sink["task"] or sink["connector"]
        for known in _TASK_STATES:
            metrics.sink_state.labels(name, known).set(1 if known == state else 0)
        if sink["lag"] is not None:
            metrics.sink_lag.labels(name).set(sink["lag"])
            metrics.sink_dead_lettered.labels(name).set(sink["dead_lettered"] or 0)
            metrics.sink_rows_written.labels(name).set(sink["rows_written"] or 0)


def _ops_routes(app: FastAPI, settings: Settings) -> None:
    async def store_status(request: Request) -> dict[str, Any]:
        services: Services = request.app.state.services
        head = await services.store.head_position()
        return {
            "backend": services.store.backend,
            "url": redact_url(settings.store_url),
            "head_position": head,
            "consumers": {
                status.name: {
                    "state": status.state.value,
                    "position": status.position,
                    "lag": head - status.position,
                    "caught_up": status.caught_up,
                    "rebuilding": status.rebuilding,
                    "failures": status.failures,
                    "recoveries": status.recoveries,
                    "resumes": status.resumes,
                    "last_error": status.last_error,
                }
                for status in services.consumers.statuses()
            },
            "wallet_read_model_rebuilding": services.wallet_view.rebuilding,
        }

    async def sinks_status(request: Request) -> dict[str, Any] | None:
        """Each connector's states (Connect's names) and its sink's figures; ``None``
        where no connectors run (services mode).

        Figures only, no text from the sink: these answers are open, and a sink's
        errors and traces carry the target's host, user and driver messages, and a
        refused record's values (the reason the connector routes take the admin key);
        ``target_unavailable`` is whether the target is unreachable now, the message
        is in ``GET /connectors/{name}/status?details=true``."""
        connectors = services_of(request).connectors
        if connectors is None:
            return None
        out: dict[str, Any] = {}
        for name in connectors.list():
            try:
                status = await connectors.status(name)
            except ConnectorNotFound:
                continue  # deleted meanwhile
            task = status.tasks[0] if status.tasks else None
            entry: dict[str, Any] = {
                "connector": status.state,
                "task": task.state if task is not None else None,
                **{
                    key: status.details.get(key)
                    for key in (
                        "state",
                        "position",
                        "lag",
                        "failures",
                        "rows_written",
                        "dead_lettered",
                    )
                },
                "target_unavailable": bool(status.details.get("target_unavailable")),
            }
            out[name] = entry
        return out

    def sink_warnings(sinks: dict[str, Any] | None) -> list[str]:
        """What readyz says of the sinks without failing: a sink never makes the node
        unready (readiness gates the API's traffic, which no sink's state changes)."""
        warnings: list[str] = []
        for name, sink in (sinks or {}).items():
            if sink["connector"] == "FAILED" or sink["task"] == "FAILED":
                warnings.append(f"sink {name} FAILED")
            elif (sink["lag"] or 0) > settings.ready_max_lag:
                warnings.append(f"sink {name} lags the log by {sink['lag']} positions")
        return warnings

    async def cluster_status(request: Request) -> dict[str, Any] | None:
        services: Services = request.app.state.services
        return None if services.cluster is None else await services.cluster.report()

    @app.get("/healthz", tags=["ops"], summary="Liveness and the store this process opened")
    async def healthz(request: Request) -> JSONResponse:
        try:
            status = await store_status(request)
        except EventStoreError as exc:
            return JSONResponse({"status": "error", "reason": str(exc)}, status_code=503)
        answer = {"status": "ok", "version": __version__, "store": status}
        sinks = await sinks_status(request)
        if sinks is not None:
            answer["sinks"] = sinks
        cluster = await cluster_status(request)
        if cluster is not None:
            answer["services"] = cluster
        return JSONResponse(answer)

    @app.get("/readyz", tags=["ops"], summary="Store reachable and read model caught up")
    async def readyz(request: Request) -> JSONResponse:
        try:
            status = await store_status(request)
        except EventStoreError as exc:
            return JSONResponse({"ready": False, "reason": str(exc)}, status_code=503)
        consumers = status["consumers"]
        rebuilding = [name for name, c in consumers.items() if c["rebuilding"]]
        if status["wallet_read_model_rebuilding"] and "wallet-read-model" not in rebuilding:
            rebuilding.append("wallet-read-model")  # its storage was found wiped
        behind = {
            name: c["lag"] for name, c in consumers.items() if c["lag"] > settings.ready_max_lag
        }
        cluster = await cluster_status(request)
        problems = cluster["problems"] if cluster is not None else []
        sinks = await sinks_status(request)
        noted: dict[str, Any] = {"sinks": sinks} if sinks is not None else {}
        if warnings := sink_warnings(sinks):
            noted["warnings"] = warnings
        if rebuilding or behind or problems:
            reasons = list(problems)
            if rebuilding:
                reasons.append(f"rebuilding: {', '.join(rebuilding)}")
            if behind:
                lags = ", ".join(f"{name} by {lag}" for name, lag in behind.items())
                reasons.append(f"consumers lag the log: {lags} positions")
            return JSONResponse(
                {
                    "ready": False,
                    "reason": "; ".join(reasons),
                    "store": status,
                    **noted,
                    **({"services": cluster} if cluster is not None else {}),
                },
                status_code=503,
                headers={"Retry-After": "1"},
            )
        ready: dict[str, Any] = {"ready": True, "store": status, **noted}
        if cluster is not None:
            ready["services"] = cluster
        return JSONResponse(ready)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics")
    async def metrics_endpoint(request: Request) -> Response:
        services: Services = request.app.state.services
        try:
            head = await services.store.head_position()
            metrics = services.metrics
            for status in services.consumers.statuses():
                metrics.consumer_lag.labels(status.name).set(head - status.position)
                metrics.consumer_position.labels(status.name).set(status.position)
                metrics.consumer_failures.labels(status.name).set(status.failures)
                metrics.consumer_recoveries.labels(status.name).set(status.recoveries)
                metrics.consumer_resumes.labels(status.name).set(status.resumes)
            _sink_metrics(metrics, await sinks_status(request))
        except EventStoreError:
            pass
        services.metrics.push_clients.set(services.hub.clients)
        if services.odds_hub is not None:
            services.metrics.graphql_subscriptions.set(services.odds_hub.clients)
        services.metrics.graphql_sockets.set(request.app.state.graphql.sockets)
        return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
