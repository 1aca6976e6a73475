"""The wallet writer alone, without HTTP: many wallets with one command waiting each.

    .venv/bin/python bench/writer.py [--seconds 5] [--compare OTHER_SRC --runs 3]

64 clients on one event loop, each with a wallet of its own, execute credits and debits
one after the other (the next when the previous is answered), as bench/wallet.py's
connections do through HTTP, on an SQLite store opened as ``oddstream serve`` opens it
(``synchronous=FULL``, commits on a thread of their own). Cases: without request ids,
and with a new request id each. Reported: commands/s and the process's CPU time per
command (user + system, every thread, so the commit thread's SQLite work too).

Each measurement runs in a child process importing ``oddstream`` from the ``src`` given,
so ``--compare OTHER_SRC`` (another checkout, e.g. an older commit in a worktree) runs
both sides in turn, each first in alternate runs, and reports medians and ratios
(this / other). Results go to ``bench/results/writer.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "writer.json"
WALLETS = 64
CASES = ("no-ids", "ids")


async def measure(seconds: float, with_ids: bool) -> dict[str, Any]:
    """One run, in this process: commands/s and CPU µs per command."""
    from oddstream.domain.wallet import Credit, Debit
    from oddstream.eventstore.sqlite import SqliteEventStore
    from oddstream.runtime.wallet_writer import WalletWriter

    with tempfile.TemporaryDirectory() as tmp:
        store = await SqliteEventStore.open(
            Path(tmp) / "bench.db", synchronous="FULL", commit_thread=True
        )
        wallets = WalletWriter(store)
        for n in range(WALLETS):
            await wallets.execute(Credit(wallet_id=f"w{n}", amount_cents=10**9))
        done = 0
        deadline = time.monotonic() + seconds

        async def client(n: int) -> None:
            nonlocal done
            wallet, i = f"w{n}", 0
            while time.monotonic() < deadline:
                i += 1
                kind = Credit if i % 2 else Debit
                await wallets.execute(
                    kind(wallet_id=wallet, amount_cents=150),
                    request_id=f"r-{n}-{i}" if with_ids else None,
                )
                done += 1

        cpu, start = time.process_time(), time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(WALLETS)))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        await store.close()
    return {
        "commands": done,
        "commands_per_s": round(done / elapsed, 1),
        "cpu_us_per_command": round(cpu / done * 1e6, 1),
    }


def run_child(src: Path, case: str, seconds: float) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{Path(__file__).parent}"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", case, "--seconds", str(seconds)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--compare", type=Path, metavar="OTHER_SRC")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(measure(args.seconds, args.child == "ids"))))
        return

    from rich.console import Console
    from rich.table import Table

    from common import checkout, machine, write_results

    console = Console()
    sides = {"this": ROOT / "src"}
    if args.compare is not None:
        sides["other"] = args.compare.resolve()
    runs = args.runs if args.compare is not None else 1
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {
        case: {side: [] for side in sides} for case in CASES
    }
    for run in range(runs):
        order = list(sides) if run % 2 == 0 else list(reversed(sides))
        for case in CASES:
            for side in order:
                console.print(f"[dim]run {run + 1}/{runs}: {case}, {side} ...[/]")
                raw[case][side].append(run_child(sides[side], case, args.seconds))

    table = Table(title=f"wallet writer, {WALLETS} wallets, one command waiting each")
    for column in ("case", "", *sides, *(["this / other"] if len(sides) > 1 else [])):
        table.add_column(column)
    medians: dict[str, Any] = {}
    for case in CASES:
        medians[case] = {}
        for key, label in (("commands_per_s", "commands/s"), ("cpu_us_per_command", "CPU µs")):
            values = {s: statistics.median(r[key] for r in raw[case][s]) for s in sides}
            row = [case, label, *(f"{v:,.1f}" for v in values.values())]
            if len(sides) > 1:
                values["ratio"] = round(values["this"] / values["other"], 3)
                row.append(f"{values['ratio']:.2f}")
            medians[case][key] = values
            table.add_row(*row)
    console.print(table)
    write_results(
        RESULTS,
        {
            "benchmark": "writer",
            "ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(load_average_at_end=os.getloadavg()),
            "sides": {
                side: {"src": str(src), "commit": checkout(src)} for side, src in sides.items()
            },
            "runs": runs,
            "seconds": args.seconds,
            "medians": medians,
            "results": raw,
        },
    )
    console.print(f"results written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
