"""Services mode: ``oddstream worker``, ``oddstream api`` and ``oddstream up``."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import typer

from ..runtime.tuning import tune_gc
from .common import StoreOption, _fail, _settings, app, console

#: where ``oddstream up`` finds the local engines unless the environment says otherwise
LOCAL_STORE = "postgresql://127.0.0.1:5432/postgres"
LOCAL_NATS = "nats://127.0.0.1:4222"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


@app.command()
def worker(
    store: str | None = StoreOption,
    name: str = typer.Option("worker", help="This worker's name in logs and NATS"),
    health_host: str | None = typer.Option(
        None, help="The health port's address [env ODDSTREAM_WORKER_HEALTH_HOST]"
    ),
    health_port: int | None = typer.Option(
        None,
        help="Serve /healthz and /readyz on this port; 0: none [env ODDSTREAM_WORKER_HEALTH_PORT]",
    ),
) -> None:
    """Run a worker of services mode: own a share of the partitions (their races' and
    wallets' writers) and run the consumers given to it; stops on SIGINT/SIGTERM."""
    from ..cluster.health import HealthPortError, HealthServer
    from ..cluster.supervisor import follow_supervisor, http_url
    from ..cluster.worker import Worker
    from ..logs import configure

    follow_supervisor()
    settings = _settings(
        store_url=store, worker_health_host=health_host, worker_health_port=health_port
    )
    configure()
    tune_gc()
    try:
        the_worker = Worker(settings, name=name)
    except ValueError as exc:
        _fail(str(exc))
    health: HealthServer | None = None
    if settings.worker_health_port:
        health = HealthServer(
            the_worker,
            settings,
            host=settings.worker_health_host,
            port=settings.worker_health_port,
        )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if health is not None:
            # before the locks are taken: a port in use stops the worker with nothing
            # taken, and /readyz says "starting" meanwhile
            await health.start()
            url = http_url(health.host, health.port)
            console.print(f"{name} health on {url}/healthz and {url}/readyz")
        try:
            await the_worker.start()
            console.print(f"{name} ready (pid {__import__('os').getpid()})")
            await stop.wait()
            await the_worker.stop()
        finally:
            if health is not None:
                await health.stop()

    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(main())
        except HealthPortError as exc:
            _fail(str(exc))


@app.command()
def api(
    host: str | None = typer.Option(None, help="Listen address [env ODDSTREAM_HOST]"),
    port: int | None = typer.Option(None, help="Listen port [env ODDSTREAM_PORT]"),
    store: str | None = StoreOption,
    demo: bool = typer.Option(False, "--demo", help="Run demo races from this process"),
) -> None:
    """Run an API process of services mode: HTTP and live boards; commands go over NATS
    to the workers, wallets are read from Redis."""
    import uvicorn

    from ..api.app import create_app, serve_app
    from ..api.auth import KeyConfigError
    from ..api.server import server_config
    from ..cluster.supervisor import follow_supervisor
    from ..logs import configure

    follow_supervisor()
    settings = _settings(host=host, port=port, store_url=store)
    configure()
    tune_gc()
    try:
        app_ = create_app(settings, demo=demo, role="api")
    except (KeyConfigError, ValueError) as exc:
        _fail(str(exc))
    console.print(f"oddstream API on [bold]http://{settings.host}:{settings.port}[/]")
    config = server_config(
        serve_app(app_, settings), settings, host=settings.host, port=settings.port
    )
    uvicorn.Server(config).run()


@app.command()
def up(
    apis: int = typer.Option(2, "--api", min=1, max=16, help="API processes"),
    workers: int = typer.Option(2, "--workers", min=1, max=16, help="Worker processes"),
    port: int = typer.Option(8000, help="The first API process's port (the next: +1, …)"),
    store: str | None = StoreOption,
    demo: bool = typer.Option(True, "--demo/--no-demo", help="Run demo races"),
) -> None:
    """Bring up a local services deployment against the local PostgreSQL, NATS and
    Redis: prints the URLs; Ctrl-C stops everything it started."""
    from ..cluster.supervisor import Deployment

    settings = _settings(store_url=store)
    try:
        deployment = Deployment(
            settings,
            apis=apis,
            workers=workers,
            port=port,
            demo=demo,
            local_store=LOCAL_STORE,
            local_nats=LOCAL_NATS,
            local_redis=LOCAL_REDIS,
        )
    except OSError as exc:  # no port for the workers' health (a bad health host)
        _fail(f"worker health port: {exc}")
    try:
        asyncio.run(deployment.run(console.print))
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        _fail(str(exc))
