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
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import __version__
from ..config import Settings, redact_url
from ..consumers import ConsumerGroup
from ..demo import DEMO_WALLETS, Demo
from ..eventstore import EventStore, EventStoreError, open_store
from ..projections.tote_view import ToteView
from ..projections.wallets import open_wallet_read_model
from ..runtime.cashier import Cashier
from ..runtime.race_writer import RaceWriter
from ..runtime.wallet_writer import WalletWriter
from . import bet_routes, errors, push, race_admin, race_routes, wallet_routes
from .auth import KeyRing, Role
from .lean import LeanRoutes
from .metrics import Metrics
from .middleware import App
from .openapi import document
from .push import BoardHub
from .server import server_config
from .services import Services

log = logging.getLogger(__name__)
WEB = Path(__file__).resolve().parent.parent / "web"


def create_app(
    settings: Settings | None = None,
    *,
    demo: bool = False,
    store: EventStore | None = None,
    kafka_compat: bool | None = None,
) -> FastAPI:
    """Build the app. The store is opened at startup (or ``store`` is used as given and
    left open) and everything is stopped in order at shutdown.

    ``kafka_compat`` (default: ``settings.kafka_compat``) switches the Kafka integration
    on (:mod:`oddstream.integrations.kafka`): the Schema Registry and REST Proxy on this
    app and on their own ports (8081, 8082 by default), where existing clients expect
    them, under one key policy; anonymous producers are allowed as
    ``ODDSTREAM_KAFKA_ANONYMOUS_PRODUCERS`` says (unset: yes, as the POC's scripts send
    no key). Off, none of it exists: no registry, no topics, no bridge, no routes.
    """
    settings = settings or Settings()
    metrics = Metrics()
    keys = KeyRing.from_settings(settings, extra=_demo_keys(settings) if demo else ())
    metrics.watch_auth(keys.failures)
    kafka_on = settings.kafka_compat if kafka_compat is None else kafka_compat

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_store = store is None
        the_store = store or await open_store(settings.store_url, **settings.store_options())
        view = ToteView(
            the_store,
            keep_finished=settings.keep_finished_races,
            snapshot_every=settings.snapshot_seconds,
        )
        hub = BoardHub(view, settings.push_coalesce_ms / 1000)
        writer = RaceWriter(the_store, on_append=metrics.append_latency.observe)
        wallets = WalletWriter(the_store, on_append=metrics.append_latency.observe)
        cashier = Cashier(the_store, writer, wallets)
        wallet_view = open_wallet_read_model(settings, the_store)
        consumers = ConsumerGroup()
        for follower in (view.runner, wallet_view.runner, cashier.runner):
            consumers.add(follower)
        app.state.services = Services(
            settings=settings,
            store=the_store,
            writer=writer,
            view=view,
            hub=hub,
            metrics=metrics,
            keys=keys,
            wallets=wallets,
            cashier=cashier,
            wallet_view=wallet_view,
            consumers=consumers,
        )
        await view.start()
        await wallet_view.start()
        await cashier.start()
        kafka = None
        side_servers = []
        if kafka_on:
            from ..integrations.kafka.service import KafkaIntegration

            authorize = _kafka_authorizer(settings, keys)
            kafka = await KafkaIntegration.start(the_store, writer, authorize=authorize)
            for follower in kafka.bridge.runners:
                consumers.add(follower)
            for router in kafka.routers():
                app.include_router(router)
            app.openapi_schema = None  # regenerate it with the routes just added
            side_servers = [
                _side_server(kafka.schema_registry_app(), settings, settings.schema_registry_port),
                _side_server(kafka.rest_proxy_app(), settings, settings.rest_proxy_port),
            ]
        runner = None
        if demo:
            runner = Demo(
                writer,
                bets_per_second=settings.demo_bets_per_second,
                race_seconds=settings.demo_race_seconds,
                wallets=wallets,
                cashier=cashier,
            )
            runner.start()
        try:
            yield
        finally:
            if runner is not None:
                await runner.stop()
            for server, task in side_servers:
                server.should_exit = True
                with contextlib.suppress(Exception):
                    await task
            if kafka is not None:
                await kafka.stop()
            await cashier.stop()
            await wallet_view.stop()
            await view.stop()
            await hub.close()
            if own_store:
                await the_store.close()

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
    _ops_routes(app, settings)
    if (WEB / "index.html").exists():
        app.mount("/static", StaticFiles(directory=WEB), name="static")

        @app.get("/", include_in_schema=False)
        async def index() -> FileResponse:
            return FileResponse(WEB / "index.html")

    app.install_edge(metrics, settings.max_body_bytes, lean)
    document(app, lean)
    return app


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
                    "last_error": status.last_error,
                }
                for status in services.consumers.statuses()
            },
            "wallet_read_model_rebuilding": services.wallet_view.rebuilding,
        }

    @app.get("/healthz", tags=["ops"], summary="Liveness and the store this process opened")
    async def healthz(request: Request) -> JSONResponse:
        try:
            status = await store_status(request)
        except EventStoreError as exc:
            return JSONResponse({"status": "error", "reason": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "version": __version__, "store": status})

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
        if rebuilding or behind:
            reasons = []
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
                },
                status_code=503,
            )
        return JSONResponse({"ready": True, "store": status})

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
        except EventStoreError:
            pass
        services.metrics.push_clients.set(services.hub.clients)
        return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
