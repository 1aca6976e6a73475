"""Reading the log in pages: the cost of the page byte budget (``ODDSTREAM_PAGE_MAX_BYTES``)
for small events, and the memory it saves for large ones, against another checkout.

Logs are built once per backend (an SQLite file; a PostgreSQL schema, dropped after):

- ``small``: ``--events`` events of ~130 bytes (a bet's shape), 1,000 an append;
- ``large``: 200 events of 1,000,000 bytes of data each (the store takes up to 1 MiB);
- ``medium``: 4 KB and 64 KB events (``--budgets`` only), where the budget cuts pages.

Each measurement runs in a child process with ``PYTHONPATH`` set to one checkout's
``src``, this one's and ``--against``'s taking turns (``--repeat`` each), on a store
opened fresh (so SQLite reads the database, not the writer's in-memory tail):

- ``follow``: a ``ConsumerRunner`` (``batch_size`` ``--batch``, a consumer that only
  counts) from 0 until it handled the head: events per second;
- ``scan``: ``scan_all`` with ``batch_size`` ``--batch``: events per second;
- ``memory``: ``follow`` of the ``large`` log, with the peak of Python's allocations
  (tracemalloc) and of the resident set (``VmHWM`` minus the RSS before the read) —
  RSS counts libpq's buffers too.

``--budgets 1,4,8,16`` (MiB) times ``follow`` of the ``medium`` logs with this
checkout only, at each budget: what chose the default. Results: ``bench/results/pages.json``.

    python bench/pages.py --against /path/to/other/src [--against /a/third/src]
        [--events 200000] [--repeat 3]
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
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if "--child" not in sys.argv:  # a child imports the checkout on its PYTHONPATH
    sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

PG_URL = os.environ.get("ODDSTREAM_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
RESULTS = ROOT / "bench" / "results" / "pages.json"


# --------------------------------------------------------------------------- child side
def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement in this process (the checkout on ``PYTHONPATH``)."""
    import tracemalloc

    from oddstream.consumers import Batch, Consumer, ConsumerRunner, MemoryCheckpoint
    from oddstream.eventstore import open_store

    options: dict[str, Any] = {}
    if spec.get("budget"):
        options["page_max_bytes"] = spec["budget"]
    if spec["url"].startswith("postgresql"):
        options["schema"] = spec["schema"]
    store = await open_store(spec["url"], **options)
    head = await store.head_position()

    class Count(Consumer):
        name = "bench-pages"

        def __init__(self) -> None:
            self.events = 0

        async def handle(self, batch: Batch) -> None:
            self.events += len(batch.events)

    try:
        rss_before = _rss_kib("VmRSS")
        if spec["mode"] == "memory":
            tracemalloc.start()
        began = time.perf_counter()
        if spec["mode"] == "scan":
            events = 0
            async for _ in store.scan_all(batch_size=spec["batch"]):
                events += 1
        else:
            consumer = Count()
            runner = ConsumerRunner(store, consumer, MemoryCheckpoint(), batch_size=spec["batch"])
            await runner.start()
            await runner.wait_for(head, 600)
            await runner.stop()
            events = consumer.events
        seconds = time.perf_counter() - began
        peak = tracemalloc.get_traced_memory()[1] if spec["mode"] == "memory" else 0
        if spec["mode"] == "memory":
            tracemalloc.stop()
        rss_peak = _rss_kib("VmHWM")
    finally:
        await store.close()
    return {
        "events": events,
        "seconds": seconds,
        "rate": events / seconds,
        "traced_peak_mib": peak / 2**20,
        "rss_growth_mib": (rss_peak - rss_before) / 1024,
    }


# --------------------------------------------------------------------------- parent side
async def build(url: str, schema: str | None, kind: str, events: int) -> int:
    from oddstream.eventstore import ANY, NewEvent, StreamAppend, open_store

    options: dict[str, Any] = {"schema": schema} if schema else {}
    store = await open_store(url, **options)
    try:
        if kind == "small":
            for start in range(0, events, 1000):
                batch = [
                    NewEvent(
                        "tote.BetPlaced",
                        {
                            "bet": f"b-{start + i}",
                            "runner": i % 12,
                            "stake": 500 + i,
                            "pool": "WIN",
                        },
                    )
                    for i in range(min(1000, events - start))
                ]
                await store.append(f"race-{start // 1000 % 50}", batch, ANY)
        elif kind == "large":
            for i in range(200):
                await store.append(
                    f"topic-big{i % 4}", [NewEvent("kafka.Record", {"v": "x" * 1_000_000})], ANY
                )
        else:
            size = int(kind.removeprefix("medium"))
            per = max(1, 4_000_000 // size)
            total = 0
            while total < events:
                parts = [
                    StreamAppend(f"topic-m{j}", [NewEvent("kafka.Record", {"v": "y" * size})])
                    for j in range(min(per, events - total))
                ]
                await store.append_many(parts)
                total += len(parts)
        return await store.head_position()
    finally:
        await store.close()


def run_child(src: Path, spec: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument(
        "--against",
        type=Path,
        action="append",
        default=[],
        help="another checkout's src (repeatable: each is timed in turn, interleaved)",
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--budgets", default="", help="MiB, comma-separated: this checkout only")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(json.loads(args.child)))))
        return
    from common import checkout, machine, write_results

    sides = {"this": ROOT / "src"}
    for n, against in enumerate(args.against):
        sides["other" if n == 0 else f"other{n + 1}"] = against.resolve()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            kinds = ["small", "large"] + (["medium4000", "medium64000"] if args.budgets else [])
            logs: dict[str, dict[str, Any]] = {}
            for kind in kinds:
                if backend == "sqlite":
                    url, schema = f"sqlite:///{tmp}/{kind}.db", None
                else:
                    url, schema = PG_URL, f"bench_pages_{uuid.uuid4().hex[:8]}"
                count = args.events if kind != "medium64000" else args.events // 10
                head = asyncio.run(build(url, schema, kind, count))
                logs[kind] = {"url": url, "schema": schema, "head": head}
            try:
                cases = [("follow", "small"), ("scan", "small"), ("memory", "large")]
                for mode, kind in cases:
                    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
                    for _ in range(args.repeat):
                        for side, src in sides.items():  # interleaved
                            spec = {**logs[kind], "mode": mode, "batch": args.batch}
                            runs[side].append(run_child(src, spec))
                    summary = {
                        side: {
                            "rate": statistics.median(r["rate"] for r in got),
                            "traced_peak_mib": max(r["traced_peak_mib"] for r in got),
                            "rss_growth_mib": max(r["rss_growth_mib"] for r in got),
                            "rates": [round(r["rate"]) for r in got],
                        }
                        for side, got in runs.items()
                    }
                    for side in list(summary):
                        if side.startswith("other"):
                            ratio = summary["this"]["rate"] / summary[side]["rate"]
                            summary[f"rate_ratio{side[5:]}"] = ratio
                    results[f"{backend}/{mode}/{kind}"] = summary
                    print(f"{backend} {mode} {kind}: {json.dumps(summary)}", flush=True)
                for budget in [int(b) for b in args.budgets.split(",") if b]:
                    for kind in ("medium4000", "medium64000"):
                        got = [
                            run_child(
                                sides["this"],
                                {
                                    **logs[kind],
                                    "mode": "follow",
                                    "batch": args.batch,
                                    "budget": budget << 20,
                                },
                            )
                            for _ in range(args.repeat)
                        ]
                        rate = statistics.median(r["rate"] for r in got)
                        results[f"{backend}/budget/{kind}/{budget}MiB"] = {"rate": rate}
                        print(
                            f"{backend} budget {budget} MiB {kind}: {rate:,.0f} events/s",
                            flush=True,
                        )
            finally:
                for log in logs.values():
                    if log["schema"]:
                        drop_schema(log["schema"])
    if not args.no_write:
        write_results(
            RESULTS,
            {
                "machine": machine(),
                "args": {k: str(v) for k, v in vars(args).items() if k != "child"},
                "sides": {
                    side: {"src": str(src), "commit": checkout(src)} for side, src in sides.items()
                },
                "results": results,
            },
        )


if __name__ == "__main__":
    main()
