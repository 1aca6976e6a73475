"""The ``oddstream`` command."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console

from .config import Settings
from .eventstore import open_store

app = typer.Typer(help="oddstream: an event-sourced betting platform.", no_args_is_help=True)
console = Console()


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Listen address [env ODDSTREAM_HOST]"),
    port: int | None = typer.Option(None, help="Listen port [env ODDSTREAM_PORT]"),
    store: str | None = typer.Option(None, help="Event store URL [env ODDSTREAM_STORE_URL]"),
    demo: bool = typer.Option(False, "--demo", help="Generate demo traffic"),
) -> None:
    """Run the HTTP service on the configured event store."""
    import uvicorn

    from .api.app import create_app

    settings = Settings().with_overrides(host=host, port=port, store_url=store)
    console.print(
        f"oddstream serving on [bold]http://{settings.host}:{settings.port}[/] "
        f"(store: {settings.store_url})"
    )
    from .logs import configure

    configure()
    uvicorn.run(
        create_app(settings, demo=demo),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
    )


@app.command()
def info(
    store: str | None = typer.Option(None, help="Event store URL [env ODDSTREAM_STORE_URL]"),
) -> None:
    """Open the store and print its backend and head position."""
    settings = Settings().with_overrides(store_url=store)

    async def run() -> None:
        s = await open_store(settings.store_url, **settings.store_options())
        try:
            console.print(f"backend: {s.backend}\nhead position: {await s.head_position()}")
        finally:
            await s.close()

    asyncio.run(run())


if __name__ == "__main__":
    app()
