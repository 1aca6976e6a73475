"""Soak: the demo under load for a long while, with the server's resident memory sampled.

Runs ``oddstream serve --demo`` (SQLite store in a fresh temporary directory) with the
demo's bettors at ``--rate`` bets/s and short races (``--race-seconds``), so races are
scheduled, bet on, settled and let go many times over. Resident memory (VmRSS of the
server process) is sampled every few seconds. After ``--warmup`` the read model holds
its full complement of finished races and the writers their idle window, so from then on
memory must stay flat: ``growth_pct`` compares the last minute's mean to the mean of the
minute after warm-up. The tote read model snapshots itself every
``--snapshot-seconds`` (the server's ``ODDSTREAM_SNAPSHOT_SECONDS``; its default when not
given), so the figures include what periodic snapshots cost.

Run ``.venv/bin/python bench/soak.py`` (12 minutes by default; ``--quick`` for 3);
results go to ``bench/results/soak.json``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

import common
from common import machine, write_results
from oddstream.config import Settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "soak.json"
TARGET_GROWTH_PCT = 10.0
console = Console()


def rss_bytes(pid: int) -> int:
    """The process's resident set size."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def count_bets(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(
            conn.execute("SELECT count(*) FROM events WHERE type = 'tote.BetPlaced'").fetchone()[0]
        )


def window_mean(samples: list[tuple[float, int]], start: float, end: float) -> float:
    values = [rss for t, rss in samples if start <= t < end]
    return statistics.fmean(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=12.0)
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="minutes before memory must be flat"
    )
    parser.add_argument("--rate", type=float, default=250.0, help="demo bets per second")
    parser.add_argument("--race-seconds", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument(
        "--snapshot-seconds",
        type=float,
        default=None,
        help="ODDSTREAM_SNAPSHOT_SECONDS of the server (default: its own default)",
    )
    parser.add_argument("--quick", action="store_true", help="3 minutes, 1 of warm-up")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.warmup = 3.0, 1.0
    workdir = Path(tempfile.mkdtemp(prefix="oddstream-soak-"))
    env = {
        "ODDSTREAM_DEMO_BETS_PER_SECOND": str(args.rate),
        "ODDSTREAM_DEMO_RACE_SECONDS": str(args.race_seconds),
    }
    if args.snapshot_seconds is not None:
        env["ODDSTREAM_SNAPSHOT_SECONDS"] = str(args.snapshot_seconds)
    snapshot_seconds = (
        args.snapshot_seconds
        if args.snapshot_seconds is not None
        else float(
            os.environ.get("ODDSTREAM_SNAPSHOT_SECONDS")
            or Settings.model_fields["snapshot_seconds"].default
        )
    )
    proc, _url = common.start_server(workdir, env, demo=True)
    samples: list[tuple[float, int]] = []
    started = time.monotonic()
    total = args.minutes * 60
    try:
        with Live(console=console, refresh_per_second=2) as live:
            while (elapsed := time.monotonic() - started) < total:
                samples.append((round(elapsed, 1), rss_bytes(proc.pid)))
                live.update(
                    f"[dim]{elapsed / 60:5.1f} / {args.minutes:.0f} min  "
                    f"RSS {samples[-1][1] / 2**20:7.1f} MiB[/]"
                )
                time.sleep(args.every)
    finally:
        common.stop_server(proc)
    bets = count_bets(workdir / "bench.db")
    warm_start = args.warmup * 60
    warm = window_mean(samples, warm_start, warm_start + 60)
    final = window_mean(samples, total - 60, total + 1)
    growth = (final - warm) / warm * 100
    result: dict[str, Any] = {
        "benchmark": "soak",
        "ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "minutes": args.minutes,
            "warmup_minutes": args.warmup,
            "demo_bets_per_second": args.rate,
            "demo_race_seconds": args.race_seconds,
            "snapshot_seconds": snapshot_seconds,
        },
        "samples": [[t, rss] for t, rss in samples],
        "bets": bets,
        "bets_per_second": round(bets / total, 1),
        "warm_rss_bytes": round(warm),
        "final_rss_bytes": round(final),
        "growth_pct": round(growth, 2),
        "peak_after_warmup_bytes": max((rss for t, rss in samples if t >= warm_start), default=0),
        "target_growth_pct": TARGET_GROWTH_PCT,
    }
    table = Table(title="soak: the demo, resident memory of the server process")
    columns = ("minutes", "snapshots", "bets", "bets/s", "RSS after warm-up", "RSS at the end")
    for column in (*columns, "growth"):
        table.add_column(column)
    table.add_row(
        f"{args.minutes:.0f} ({args.warmup:.0f} warm-up)",
        f"every {snapshot_seconds:.0f} s" if snapshot_seconds else "at stop",
        f"{bets:,}",
        f"{bets / total:,.0f}",
        f"{warm / 2**20:.1f} MiB",
        f"{final / 2**20:.1f} MiB",
        f"{growth:+.1f}% ({'met' if abs(growth) <= TARGET_GROWTH_PCT else 'NOT met'}: "
        f"≤ {TARGET_GROWTH_PCT:.0f}%)",
    )
    console.print(table)
    write_results(RESULTS, result)
    console.print(f"results written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
