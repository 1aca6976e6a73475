"""The commands that open the event store themselves: ``info``, ``print``, ``replay``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ..eventstore import open_store
from .common import StoreOption, _fail, _settings, app, console


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


#: What ``oddstream replay`` rebuilds in place, by stream category (``--only``).
READ_MODELS = {"race": "races", "wallet": "wallets", "market": "markets"}
#: What ``oddstream replay --to`` writes, by stream category: the odds tables.
TARGET_TABLES = {"market": "odds tables"}


def _progress(name: str) -> Progress:
    """The progress bar of a replay: the log positions covered, the events applied
    and their rate, the time left (the style of ``oddstream import quotes``)."""
    return Progress(
        TextColumn(f"{name:<8}"),
        BarColumn(),
        TextColumn("{task.fields[events]:,} events"),
        TextColumn("{task.fields[rate]:,.0f} events/s"),
        TimeRemainingColumn(),
        console=console,
    )


def _report(name: str, applied: int, elapsed: float, what: str) -> None:
    rate = applied / elapsed if elapsed > 0 else 0.0
    console.print(
        f"{name}: replayed {applied:,} events in {elapsed:.2f}s ({rate:,.0f} events/s){what}"
    )


def _check_only(only: str | None, known: dict[str, str], where: str) -> None:
    if only is not None and only not in known:
        names = ", ".join(f"{c} ({what})" for c, what in known.items())
        _fail(f"--only {escape(only[:60])!r}: {where} knows the categories {names}")


@app.command()
def replay(
    to: str | None = typer.Option(
        None,
        "--to",
        help="Write the odds tables into this database instead: sqlite:///local.db, "
        "postgresql://user@host/db, mysql://user@host/db (resumes where it stopped)",
    ),
    until: str | None = typer.Option(
        None, help="With --to: stop at this log position, or at this ISO time (UTC)"
    ),
    only: str | None = typer.Option(
        None, help="Only the projections of this stream category (race, wallet, market)"
    ),
    from_start: bool = typer.Option(
        False, "--from-start", help="With --to: empty the odds tables and replay from 0"
    ),
    table_prefix: str = typer.Option(
        "", "--table-prefix", help="With --to: a prefix for the tables' names"
    ),
    store: str | None = StoreOption,
) -> None:
    """Rebuild every projection from the log, with progress and the rate reached: the
    tote view (races, boards, bets), the wallet read model (SQLite, or Redis when
    ODDSTREAM_REDIS_URL is set) and the odds view. With --to, write the odds database
    (tables odds and odds_events) into another database instead: disaster recovery, or
    a copy to debug with, up to --until."""
    if to is None:
        for name, given in (
            ("--until", until is not None),
            ("--from-start", from_start),
            ("--table-prefix", bool(table_prefix)),
        ):
            if given:
                _fail(f"{name} goes with --to (the read models always follow the whole log)")
        _check_only(only, READ_MODELS, "replay")
        _replay_read_models(store, only)
    else:
        _check_only(only, TARGET_TABLES, "replay --to")
        _replay_into(store, to, until, from_start, table_prefix)


def _replay_read_models(store: str | None, only: str | None) -> None:
    from ..projections.odds_view import OddsView
    from ..projections.tote_view import ToteView
    from ..projections.wallets import open_wallet_read_model

    settings = _settings(store_url=store)

    async def rebuild(name: str, total: int, run: Any) -> tuple[int, float]:
        with _progress(name) as progress:
            task = progress.add_task(name, total=total, events=0, rate=0.0)
            started = time.perf_counter()

            def moved(done: int, total: int) -> None:
                elapsed = time.perf_counter() - started
                progress.update(
                    task,
                    completed=done,
                    total=total,
                    events=done,
                    rate=done / elapsed if elapsed > 0 else 0.0,
                )

            applied = await run(moved)
            return applied, time.perf_counter() - started

    async def run() -> None:
        s = await open_store(settings.store_url, **settings.store_options())
        try:
            head = await s.head_position()
            if only in (None, "race"):
                view = ToteView(s)
                applied, elapsed = await rebuild("races", head, view.rebuild)
                _report("races", applied, elapsed, f": {len(view.races())} races")
            if only in (None, "wallet"):
                wallets = open_wallet_read_model(settings, s)
                try:
                    applied, elapsed = await rebuild("wallets", head, wallets.rebuild)
                finally:
                    await wallets.stop()
                _report("wallets", applied, elapsed, "")
            if only in (None, "market"):
                odds = OddsView(s)
                applied, elapsed = await rebuild("markets", head, odds.rebuild)
                _report("markets", applied, elapsed, f": {len(odds)} markets held")
        finally:
            await s.close()

    asyncio.run(run())


def _replay_into(
    store: str | None, to: str, until: str | None, from_start: bool, table_prefix: str
) -> None:
    from ..sinks import SinkError
    from ..sinks.failures import describe
    from ..sinks.replay import OddsReplay, ReplayError, ReplayResult, Until, open_odds_sink

    settings = _settings(store_url=store)
    try:
        bound = Until.parse(until) if until is not None else None
        sink = open_odds_sink(to, table_prefix=table_prefix)
    except ReplayError as exc:
        _fail(escape(str(exc)))

    async def run() -> tuple[ReplayResult, float]:
        s = await open_store(settings.store_url, **settings.store_options())
        try:
            worker = OddsReplay(s, sink)
            with _progress("odds") as progress:
                task = progress.add_task("odds", total=None, events=0, rate=0.0)
                started = time.perf_counter()

                def moved(position: int, end: int, events: int) -> None:
                    elapsed = time.perf_counter() - started
                    progress.update(
                        task,
                        completed=position,
                        total=end,
                        events=events,
                        rate=events / elapsed if elapsed > 0 else 0.0,
                    )

                result = await worker.run(until=bound, from_start=from_start, progress=moved)
                return result, time.perf_counter() - started
        finally:
            await asyncio.to_thread(sink.close)
            await s.close()

    try:
        result, elapsed = asyncio.run(run())
    except ReplayError as exc:
        _fail(escape(str(exc)))
    except SinkError as exc:
        _fail(escape(describe(exc)))
    except Exception as exc:  # the target's driver: unreachable, refused, …
        if type(exc).__module__.split(".")[0] not in ("sqlite3", "psycopg", "pymysql"):
            raise
        _fail(f"the target database: {escape(describe(exc))}")
    resumed = f", resumed from position {result.start:,}" if result.start else ""
    _report(
        "odds",
        result.events,
        elapsed,
        f": {result.markets:,} markets, {result.rows:,} rows; the tables hold the log "
        f"up to position {result.position:,}{resumed}",
    )
