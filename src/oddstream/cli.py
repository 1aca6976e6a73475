"""The ``oddstream`` command: serve, inspect races, bet, watch odds live, replay."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .config import Settings, SettingsError
from .eventstore import open_store
from .runtime.tuning import tune_gc

app = typer.Typer(help="oddstream: an event-sourced betting platform.", no_args_is_help=True)
console = Console()

UrlOption = typer.Option(
    "http://127.0.0.1:8000", "--url", envvar="ODDSTREAM_URL", help="The service's base URL"
)
StoreOption = typer.Option(None, help="Event store URL [env ODDSTREAM_STORE_URL]")


def _money(cents: int | None) -> str:
    return "" if cents is None else f"${cents / 100:,.2f}"


def _fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/] {message}")
    raise typer.Exit(1)


def _settings(**overrides: Any) -> Settings:
    """The settings from the environment with the command's options over them; a bad
    value ends the command with the message naming it (no traceback)."""
    try:
        return Settings().with_overrides(**overrides)
    except SettingsError as exc:
        _fail(f"bad settings:\n{escape(str(exc))}")


def _get(url: str, path: str) -> Any:
    try:
        response = httpx.get(f"{url}{path}", timeout=10)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach {url}: {exc}")
    if response.status_code >= 400:
        _fail(response.json().get("message", response.text))
    return response.json()


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

    from .api.app import create_app, serve_app
    from .api.auth import KeyConfigError
    from .api.server import server_config
    from .logs import configure

    settings = _settings(
        host=host, port=port, store_url=store, kafka_compat=True if kafka_compat else None
    )
    console.print(
        f"oddstream serving on [bold]http://{settings.host}:{settings.port}[/] "
        f"(store: {settings.store_url})"
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


@app.command()
def info(store: str | None = StoreOption) -> None:
    """Open the store and print its backend and head position."""
    settings = _settings(store_url=store)

    async def run() -> None:
        s = await open_store(settings.store_url, **settings.store_options())
        try:
            console.print(f"backend: {s.backend}\nhead position: {await s.head_position()}")
        finally:
            await s.close()

    asyncio.run(run())


@app.command()
def races(url: str = UrlOption) -> None:
    """List races with their status and pool totals."""
    data = _get(url, "/races")
    table = Table(title=f"races (position {data['position']})")
    for column in ("race", "meeting", "post time", "status", "runners", "bets", "pools"):
        table.add_column(column)
    for race in data["races"]:
        pools = ", ".join(f"{p['pool']} {_money(p['gross_cents'])}" for p in race["pools"])
        table.add_row(
            race["race_id"],
            race["meeting"],
            race["post_time"],
            race["status"],
            str(len(race["runners"])),
            str(race["bets"]),
            pools,
        )
    console.print(table)


@app.command()
def bet(
    race: str = typer.Option(..., help="Race id"),
    runner: list[int] = typer.Option(..., help="Runner number (repeat for exotics)"),  # noqa: B008
    stake: str = typer.Option(..., help="Stake in dollars, e.g. 5 or 2.50"),
    pool: str = typer.Option("WIN", help="WIN, PLACE, SHOW, EXACTA, QUINELLA, TRIFECTA"),
    request_id: str | None = typer.Option(None, help="Makes a retry safe"),
    url: str = UrlOption,
) -> None:
    """Place a bet."""
    try:
        cents = Decimal(stake) * 100
    except InvalidOperation:
        _fail(f"stake {stake!r} is not an amount")
    if cents != cents.to_integral_value():
        _fail("stakes are whole cents")
    body = {
        "pool": pool.upper(),
        "selection": runner,
        "stake_cents": int(cents),
        "request_id": request_id,
    }
    try:
        response = httpx.post(f"{url}/races/{race}/bets", json=body, timeout=10)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach {url}: {exc}")
    answer = response.json()
    if response.status_code >= 400:
        _fail(f"{answer.get('error')}: {answer.get('message')}")
    console.print(f"bet {answer['bet_id']} placed at position {answer['position']}")


def _board_table(race: str, position: int, board: dict[str, Any]) -> Table:
    table = Table(title=f"{race} — {board['status']} — position {position}")
    for column in ("#", "runner", "win pool", "approx $", "odds", "place pays", "show pays"):
        table.add_column(column, justify="right" if column != "runner" else "left")
    for r in board["runners"]:
        name = f"[strike]{r['name']}[/]" if r["scratched"] else r["name"]
        table.add_row(
            str(r["number"]),
            name,
            _money(r["win_stakes_cents"]),
            _money(r["win_dividend_cents"]),
            r["ladder"] or "",
            _range(r["place_pays"]),
            _range(r["show_pays"]),
        )
    totals = "  ".join(f"{p['pool']} {_money(p['gross_cents'])}" for p in board["pools"])
    table.caption = totals
    return table


def _range(pays: list[int] | None) -> str:
    return "" if not pays else f"{_money(pays[0])}–{_money(pays[1])}"


@app.command()
def watch(race: str = typer.Option(..., help="Race id"), url: str = UrlOption) -> None:
    """A live odds table (like ``SELECT … WHERE race_id = R EMIT CHANGES``)."""

    def stream() -> None:
        last: str | None = None
        with Live(console=console, auto_refresh=False) as live:
            while True:
                headers = {"Last-Event-ID": last} if last else {}
                try:
                    with httpx.stream(
                        "GET",
                        f"{url}/races/{race}/odds/stream",
                        headers=headers,
                        timeout=httpx.Timeout(10, read=60),
                    ) as response:
                        if response.status_code >= 400:
                            _fail(json.loads(response.read()).get("message", "refused"))
                        event: dict[str, str] = {}
                        for line in response.iter_lines():
                            if line.startswith("id: "):
                                event["id"] = line[4:]
                            elif line.startswith("data: "):
                                event["data"] = line[6:]
                            elif not line and "data" in event:
                                message = json.loads(event["data"])
                                last = event.get("id", last)
                                live.update(
                                    _board_table(race, message["position"], message["board"]),
                                    refresh=True,
                                )
                                event = {}
                except httpx.HTTPError as exc:
                    console.print(f"[yellow]reconnecting: {exc}[/]")
                    time.sleep(1)

    with contextlib.suppress(KeyboardInterrupt):
        stream()


@app.command("print")
def print_topic(
    topic: str = typer.Argument(..., help="Topic name, e.g. tote_win_bet_race_runners_odds"),
    from_beginning: bool = typer.Option(False, "--from-beginning", help="Start at offset 0"),
    limit: int | None = typer.Option(None, help="Stop after this many records"),
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object per record (topic, offset, key, value…)"
    ),
    store: str | None = StoreOption,
) -> None:
    """Print a topic's records as they arrive, one line each, as ksqlDB ``PRINT`` does
    (``rowtime: …, key: …, value: …, partition: 0``), or as JSON with ``--json``."""
    from .integrations.kafka.rest_proxy import print_line, records_of, topic_stream

    settings = _settings(store_url=store)

    async def run() -> None:
        s = await open_store(settings.store_url, **settings.store_options())
        try:
            stream = topic_stream(topic)
            start = 0 if from_beginning else await s.stream_version(stream)
            printed = 0
            async for event in s.subscribe_stream(stream, after_version=start):
                for record in records_of(topic, event):  # a batch event holds many
                    if as_json:
                        line = json.dumps(record.to_json(), separators=(",", ":"))
                    else:
                        line = print_line(record)
                    sys.stdout.write(line + "\n")
                    sys.stdout.flush()
                    printed += 1
                    if limit is not None and printed >= limit:
                        return
        finally:
            await s.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@app.command()
def replay(store: str | None = StoreOption) -> None:
    """Rebuild every projection from the log, with progress and the rate reached: the
    tote view (races, boards, bets) and the wallet read model (SQLite, or Redis when
    ODDSTREAM_REDIS_URL is set)."""
    from .projections.tote_view import ToteView
    from .projections.wallets import open_wallet_read_model

    settings = _settings(store_url=store)

    async def rebuild(name: str, total: int, run: Any) -> tuple[int, float]:
        with Progress(
            TextColumn(f"{name:<8}"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,} events"),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(name, total=total)
            started = time.perf_counter()
            applied = await run(
                lambda done, total: progress.update(task, completed=done, total=total)
            )
            return applied, time.perf_counter() - started

    def report(name: str, applied: int, elapsed: float, what: str) -> None:
        rate = applied / elapsed if elapsed > 0 else 0.0
        console.print(
            f"{name}: replayed {applied:,} events in {elapsed:.2f}s ({rate:,.0f} events/s){what}"
        )

    async def run() -> None:
        s = await open_store(settings.store_url, **settings.store_options())
        try:
            head = await s.head_position()
            view = ToteView(s)
            applied, elapsed = await rebuild("races", head, view.rebuild)
            report("races", applied, elapsed, f": {len(view.races())} races")
            wallets = open_wallet_read_model(settings, s)
            try:
                applied, elapsed = await rebuild("wallets", head, wallets.rebuild)
            finally:
                await wallets.stop()
            report("wallets", applied, elapsed, "")
        finally:
            await s.close()

    asyncio.run(run())


def _load_progress_line(p: Any) -> Any:
    from rich.text import Text

    width = 12
    done = int(width * min(p.elapsed / p.duration, 1.0)) if p.duration else width
    return Text.assemble(
        ("━" * done, "cyan"),
        ("━" * (width - done), "grey23"),
        f" {p.elapsed:4.1f}s/{p.duration:g}s  ",
        (f"{p.rate:,.0f} req/s", "bold"),
        f"  p99 {p.p99_ms:,.2f} ms  {p.requests:,} responses  ",
        (f"{p.errors:,} errors", "red" if p.errors else ""),
        no_wrap=True,
        overflow="ellipsis",
    )


def _load_summary(result: Any) -> Table:
    from rich.markup import escape

    data = result.to_json()
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row(
        "requests",
        f"{data['requests']:,} in {data['elapsed_s']:.2f}s, "
        f"[bold]{data['requests_per_s']:,.1f} req/s[/]",
    )
    statuses = "  ".join(f"{code}: {n:,}" for code, n in data["statuses"].items())
    table.add_row("statuses", statuses or "none")
    errors = "  ".join(f"{escape(kind)}: {n:,}" for kind, n in data["errors"].items())
    table.add_row("errors", f"[red]{errors}[/]" if errors else "0")
    latency = data["latency_ms"]
    points = ("p50", "p90", "p99", "p99.9", "max")
    shown = "  ".join(f"{k} {latency[k]:,.3f}" for k in points) + " ms"
    table.add_row("latency", shown if data["requests"] else "no responses")
    table.add_row("connections", f"{data['connects']:,} opened")
    return table


@app.command()
def load(
    url: str = typer.Argument(..., metavar="URL", help="The http:// URL to load"),
    workers: int = typer.Option(
        64, "--workers", "-c", min=1, help="Concurrent keep-alive connections"
    ),
    duration: str = typer.Option("10s", "--duration", "-d", help="e.g. 10s, 1m, 500ms, 5"),
    method: str = typer.Option("GET", "--method", "-X", help="HTTP method"),
    body: str | None = typer.Option(
        None, "--body", help="Request body, or @file to send a file's bytes"
    ),
    header: list[str] = typer.Option(  # noqa: B008
        [], "--header", "-H", help="'Name: value' (repeatable)"
    ),
    timeout: str = typer.Option("5s", "--timeout", help="Per request (and per connect)"),
    processes: int = typer.Option(
        1, "--processes", "-p", min=1, help="Split the workers across processes"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object"),
) -> None:
    """Load an HTTP endpoint: req/s, statuses, errors and latency percentiles."""
    from pathlib import Path

    from . import loadgen

    def bad(message: str, hint: str) -> typer.BadParameter:
        return typer.BadParameter(message, param_hint=hint)

    try:
        loadgen.parse_target(url)
    except ValueError as exc:
        raise bad(str(exc), "URL") from None
    try:
        seconds = loadgen.parse_duration(duration)
    except ValueError as exc:
        raise bad(str(exc), "--duration") from None
    try:
        timeout_s = loadgen.parse_duration(timeout)
    except ValueError as exc:
        raise bad(str(exc), "--timeout") from None
    try:
        headers = tuple(loadgen.parse_header(h) for h in header)
    except ValueError as exc:
        raise bad(str(exc), "--header") from None
    payload: bytes | None = None
    if body is not None and body.startswith("@"):
        try:
            payload = Path(body[1:]).read_bytes()
        except OSError as exc:
            raise bad(f"cannot read {body[1:]!r}: {exc.strerror}", "--body") from None
    elif body is not None:
        payload = body.encode()
    try:
        config = loadgen.LoadConfig(
            url=url,
            workers=workers,
            duration=seconds,
            method=method,
            headers=headers,
            body=payload,
            timeout=timeout_s,
            processes=processes,
        )
    except ValueError as exc:
        raise bad(str(exc), "--method/--header") from None

    out = Console(stderr=True) if as_json else console
    if not as_json:
        used = len(config.split())
        console.print(
            f"loading [bold]{config.method.upper()} {url}[/] with {workers} workers "
            f"in {used} process{'es' if used > 1 else ''} for {seconds:g}s"
        )
    try:
        if out.is_terminal:
            with Live("starting…", console=out, auto_refresh=False, transient=as_json) as live:
                result = loadgen.run_load(
                    config, lambda p: live.update(_load_progress_line(p), refresh=True)
                )
        else:
            result = loadgen.run_load(config)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except RuntimeError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    else:
        console.print(_load_summary(result))


if __name__ == "__main__":
    app()
