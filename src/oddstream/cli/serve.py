"""``oddstream serve``: the HTTP service."""

from __future__ import annotations

import typer

from ..runtime.tuning import tune_gc
from .common import StoreOption, _fail, _settings, app, console


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Listen address [env ODDSTREAM_HOST]"),
    port: int | None = typer.Option(None, help="Listen port [env ODDSTREAM_PORT]"),
    store: str | None = StoreOption,
    demo: bool = typer.Option(False, "--demo", help="Run demo races with simulated bettors"),
    kafka_compat: bool = typer.Option(
        False,
        "--kafka-compat",
        help="Switch the Kafka integration on [env ODDSTREAM_KAFKA_COMPAT]: the Schema"
        " Registry (also on 8081) and REST Proxy (also on 8082), the tote_win_bets bridge"
        " and its odds topic; callers without a key may then register and produce, unless"
        " ODDSTREAM_KAFKA_ANONYMOUS_PRODUCERS=0",
    ),
) -> None:
    """Run the HTTP service on the configured event store."""
    import uvicorn

    from ..api.app import create_app, serve_app
    from ..api.auth import KeyConfigError
    from ..api.server import server_config
    from ..demo import demo_quote_tables_url
    from ..logs import configure
    from ..sinks.config import redact_jdbc_url

    settings = _settings(
        host=host, port=port, store_url=store, kafka_compat=True if kafka_compat else None
    )
    if demo and settings.quote_tables_url is None:
        # the demo shows the analysts' quote tables too, beside its store
        settings = settings.with_overrides(
            quote_tables_url=demo_quote_tables_url(settings.store_url)
        )
    console.print(
        f"oddstream serving on [bold]http://{settings.host}:{settings.port}[/] "
        f"(store: {settings.store_url})"
    )
    if demo and settings.quote_tables_url:
        console.print(
            f"quote tables (sample quotes posted): {redact_jdbc_url(settings.quote_tables_url)}"
        )
    configure()
    tune_gc()
    try:
        app_ = create_app(settings, demo=demo)
    except KeyConfigError as exc:
        _fail(f"API keys: {exc}")
    config = server_config(
        serve_app(app_, settings), settings, host=settings.host, port=settings.port
    )
    uvicorn.Server(config).run()
