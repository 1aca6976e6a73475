"""Services mode: how soon a price update reaches the API process's odds view, woken by
the velocity bus's high tier, against an odds view following the same log without it.

One process runs a worker (``oddstream worker``'s :class:`~oddstream.cluster.worker.Worker`)
and an API app (``create_app(role="api")``) on the local PostgreSQL, NATS and Redis, in
a schema, Redis prefix and NATS subjects of its own (dropped after), and beside them a
*control* odds view on a store of its own (as another API process's, pacing and all):
what every API process did before the wake-up. ``--markets`` markets are created, then
``--updates`` high-velocity ``UpdateOdds`` go through the API from ``--concurrency``
senders, each pausing ``--interval-ms`` after each answer (commits come faster than the
pace: the followers are under load, reading at their pace). A (woken) and B (control)
are measured on the very same updates in one run: the time from the event's
``recorded_at`` (stamped by PostgreSQL as the worker's transaction wrote it, on this
machine's clock) to each view applying it (its ``on_market_changed``); the command's
own round trip is given too. Followers' reads
(pages taken) are counted for both.

    .venv/bin/python bench/velocity_wake.py [--updates 300] [--pace-ms 10,100]
        [--interval-ms 3] [--concurrency 4] [--markets 10]

Prints a table and writes ``bench/results/velocity_wake.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import psycopg
import redis

from common import ROOT, machine, write_results
from oddstream.api.app import create_app
from oddstream.cluster.worker import Worker
from oddstream.config import Settings
from oddstream.eventstore.postgres import PostgresEventStore
from oddstream.projections.odds_view import OddsRecord, OddsView

PG_URL = os.environ.get("ODDSTREAM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
NATS_URL = os.environ.get("ODDSTREAM_TEST_NATS_URL", "nats://127.0.0.1:4222")
REDIS_URL = os.environ.get("ODDSTREAM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ADMIN_KEY = "velocity-wake-bench-key-0123456789"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(_pct(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
    }


class _Pages:
    """Counts a view's batches (each one read of the log or more joined)."""

    def __init__(self, view: OddsView) -> None:
        self.batches = 0
        handle = view.handle

        async def counted(batch: Any) -> None:
            self.batches += 1
            await handle(batch)

        view.handle = counted  # type: ignore[method-assign]


async def case(pace_ms: float, args: argparse.Namespace) -> dict[str, Any]:
    """One run at ``pace_ms``: A and B on the same updates."""
    schema = f"bench_wake_{uuid.uuid4().hex[:10]}"
    prefix = f"{schema}:"
    env = {
        "ODDSTREAM_STORE_URL": PG_URL,
        "ODDSTREAM_PG_SCHEMA": schema,
        "ODDSTREAM_NATS_URL": NATS_URL,
        "ODDSTREAM_REDIS_URL": REDIS_URL,
        "ODDSTREAM_REDIS_PREFIX": prefix,
        "ODDSTREAM_ADMIN_KEY": ADMIN_KEY,
        "ODDSTREAM_FOLLOW_PACE_MS": str(pace_ms),
    }
    os.environ.update(env)
    for name in ("ODDSTREAM_QUOTE_TABLES_URL", "ODDSTREAM_KAFKA_COMPAT"):
        os.environ.pop(name, None)
    settings = Settings()
    app = create_app(settings, role="api")
    worker = Worker(settings, name="w0")
    control_store = await PostgresEventStore.open(PG_URL, schema=schema, follow_pace=pace_ms / 1000)
    control = OddsView(control_store)
    #: per view, per position: seconds from the event's ``recorded_at`` (the store's
    #: clock, this machine's) to the view applying it
    applied: dict[str, dict[int, float]] = {"woken": {}, "control": {}}

    def stamp(which: str) -> Any:
        def on(record: OddsRecord) -> None:
            late = time.time() - record.updated_at.timestamp()
            applied[which].setdefault(record.position, late)

        return on

    control.on_market_changed(stamp("control"))
    sent: dict[int, float] = {}
    round_trips: list[float] = []
    try:
        await worker.start()
        await control.start()
        async with app.router.lifespan_context(app):
            view = app.state.services.odds_view
            view.on_market_changed(stamp("woken"))
            pages = {"woken": _Pages(view), "control": _Pages(control)}
            transport = httpx.ASGITransport(app=app)
            headers = {"X-API-Key": ADMIN_KEY}
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                markets = []
                for m in range(args.markets):
                    answer = await client.post(
                        "/odds",
                        json={
                            "RequestID": f"new-{m}",
                            "Provider": "acme",
                            "Command": "NewOdds",
                            "EventVelocity": "high",
                            "Payload": {
                                "GameID": f"football:g{m}",
                                "MoneyLine": {"Home": 1.91, "Away": 2.1},
                            },
                        },
                        headers=headers,
                    )
                    assert answer.status_code == 201, answer.text
                    markets.append(answer.json()["ExternalID"])
                await asyncio.sleep(0.5)
                before = {k: p.batches for k, p in pages.items()}
                hints_before = view.runner.wake.wakes

                async def sender(k: int) -> None:
                    for i in range(k, args.updates, args.concurrency):
                        m = i % args.markets
                        began = time.perf_counter()
                        answer = await client.patch(
                            f"/odds/{markets[m]}",
                            json={
                                "RequestID": f"upd-{i}",
                                "Provider": "acme",
                                "Command": "UpdateOdds",
                                "EventVelocity": "high",
                                "Payload": {
                                    "GameID": f"football:g{m}",
                                    "MoneyLine": {
                                        "Home": round(1.5 + (i % 50) / 100, 2),
                                        "Away": 2.1,
                                    },
                                },
                            },
                            headers=headers,
                        )
                        assert answer.status_code == 200, answer.text
                        round_trips.append(time.perf_counter() - began)
                        sent[answer.json()["Position"]] = began
                        await asyncio.sleep(args.interval_ms / 1000)

                await asyncio.gather(*(sender(k) for k in range(args.concurrency)))
                last = max(sent)
                for _ in range(5000):
                    if all(last in applied[k] for k in applied):
                        break
                    await asyncio.sleep(0.002)
                reads = {k: p.batches - before[k] for k, p in pages.items()}
                wakes = view.runner.wake.wakes - hints_before
    finally:
        await control.stop()
        await control_store.close()
        await worker.stop()
        client_ = redis.Redis.from_url(REDIS_URL)
        for key in client_.scan_iter(match=f"{prefix}*"):
            client_.delete(key)
        client_.close()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    result: dict[str, Any] = {
        "pace_ms": pace_ms,
        "updates": len(sent),
        "interval_ms": args.interval_ms,
        "concurrency": args.concurrency,
        "command_round_trip": _summary(round_trips),
        "wakes": wakes,
    }
    for which in ("woken", "control"):
        latencies = [applied[which][p] for p in sent if p in applied[which]]
        result[which] = {
            **_summary(latencies),
            "applied": len(latencies),
            "batches": reads[which],
        }
    return result


async def main(args: argparse.Namespace) -> int:
    cases = []
    for pace in args.pace_ms:
        cases.append(await case(pace, args))
    header = (
        f"{'pace ms':>8} {'view':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'batches':>8} {'wakes':>6}"
    )
    print(header)
    for c in cases:
        for which in ("woken", "control"):
            r = c[which]
            wakes = c["wakes"] if which == "woken" else "-"
            print(
                f"{c['pace_ms']:>8g} {which:>8} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                f"{r['max_ms']:>8.2f} {r['batches']:>8} {wakes:>6}"
            )
        rt = c["command_round_trip"]
        print(f"{'':>8} {'command':>8} {rt['p50_ms']:>8.2f} {rt['p99_ms']:>8.2f}")
    write_results(
        Path(args.out),
        {
            "benchmark": "velocity_wake",
            "what": "latency from an UpdateOdds (high)'s commit (recorded_at) to the API "
            "process's odds view applying it (woken by the velocity bus) and to a view of the same "
            "log without the bus (control), same updates, one run",
            "cases": cases,
            "machine": machine(),
        },
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--markets", type=int, default=10)
    parser.add_argument("--interval-ms", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=4, help="senders at once")
    parser.add_argument(
        "--pace-ms",
        default="10,100",
        type=lambda s: [float(p) for p in s.split(",")],
        help="ODDSTREAM_FOLLOW_PACE_MS values, one run each (comma-separated)",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "velocity_wake.json"))
    arguments = parser.parse_args()
    if min(arguments.updates, arguments.markets, arguments.concurrency) < 1:
        parser.error("--updates, --markets and --concurrency are >= 1")
    if arguments.interval_ms < 0:
        parser.error("--interval-ms is >= 0")
    sys.exit(asyncio.run(main(arguments)))
