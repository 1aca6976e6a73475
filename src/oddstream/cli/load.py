"""``oddstream load``: an HTTP load generator's command line (docs/load.md)."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from .common import _fail, app, console


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

    from .. import loadgen

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
