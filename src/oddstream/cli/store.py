"""The commands that open the event store themselves: ``info``, ``print``, ``replay``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ..eventstore import open_store
from .common import StoreOption, _settings, app, console


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
    from ..integrations.kafka.rest_proxy import print_line, records_of, topic_stream

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
    from ..projections.tote_view import ToteView
    from ..projections.wallets import open_wallet_read_model

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
