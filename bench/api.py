"""Benchmark the HTTP service, with the load coming from other processes on loopback.

Cases
  a) single-bet POSTs from 64 concurrent connections (``wrk``): req/s, p50, p99;
  c) live push fan-out: 500 SSE subscribers on one race while bets arrive at 2,000/s:
     for sampled bets, the delay from "bet accepted" (the bettor got its 201) to "a board
     containing it received" (the first board whose position covers the bet's), at
     every subscriber; p50/p99 over all pairs.
  d) as c across processes: services mode (PostgreSQL, NATS, Redis; one worker, two API
     processes), the bets through API process A, the subscribers on B;
  b) REST Proxy: batches of 1,000 Avro records to ``tote_win_bets`` (the POC's topic),
     4 concurrent producers; each answer comes after the records are stored and turned
     into bets (durable): bets/s.

The server is ``oddstream serve`` itself (embedded SQLite store, synchronous=FULL) in a
fresh temporary directory. ``--quick`` shortens every phase.

Run ``.venv/bin/python bench/api.py [--quick] [--case b]``; results go to
``bench/results/api.json`` (a run of some cases keeps the others' last figures; each case
says when it ran).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from rich.console import Console
from rich.table import Table

import common
from common import machine, write_results

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("ODDSTREAM_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
NATS_URL = "nats://127.0.0.1:4222"
REDIS_URL = "redis://127.0.0.1:6379/0"
RESULTS = ROOT / "bench" / "results" / "api.json"
ADMIN = "bench-admin-key-0123456789"  # API keys are at least 16 characters
RACE = {
    "race_id": "bench",
    "meeting": "Bench Park R1",
    "venue": "Bench Park",
    "post_time": "2026-11-21T15:00:00Z",
    "runners": [{"number": n, "name": f"Runner {n}"} for n in range(1, 13)],
    "pools": [
        {"pool": p, "takeout_bps": 1500}
        for p in ("WIN", "PLACE", "SHOW", "EXACTA", "QUINELLA", "TRIFECTA")
    ],
}
TARGETS = {"a_req_per_s": 4000, "a_p99_ms": 25, "b_bets_per_s": 50_000, "c_p99_ms": 150}

console = Console()


# --------------------------------------------------------------------------- server


def start_server(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        "ODDSTREAM_ADMIN_KEY": ADMIN,
        # case b goes through the REST Proxy: the Kafka integration is on (its own ports
        # are not used here, only kept free of clashes)
        "ODDSTREAM_KAFKA_COMPAT": "1",
        "ODDSTREAM_SCHEMA_REGISTRY_PORT": str(common.free_port()),
        "ODDSTREAM_REST_PROXY_PORT": str(common.free_port()),
    }
    return common.start_server(workdir, env)


def open_race(url: str, race_id: str) -> None:
    headers = {"X-API-Key": ADMIN}
    httpx.post(
        f"{url}/races", json={**RACE, "race_id": race_id}, headers=headers
    ).raise_for_status()
    httpx.post(f"{url}/races/{race_id}/open", headers=headers).raise_for_status()


# --------------------------------------------------------------------------- case a


def case_a(url: str, seconds: int, workdir: Path) -> dict[str, Any]:
    open_race(url, "bench-a")
    script = workdir / "bet.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        '  local body = string.format(\'{"selection":[%d],"stake_cents":%d}\', '
        "(n % 12) + 1, 200 + (n % 10) * 100)\n"
        "  return wrk.format(nil, nil, nil, body)\n"
        "end\n"
    )
    return common.run_wrk(script, f"{url}/races/bench-a/bets", seconds)


# --------------------------------------------------------------------------- case b


def case_b(url: str, seconds: float, batch: int = 1000, producers: int = 4) -> dict[str, Any]:
    rng = random.Random(3)
    bodies = []
    for k in range(8):
        records = [
            {
                "value": {
                    "RUNNER_ID": {"int": rng.randint(1, 12)},
                    "RACE_ID": {"int": 100 + k % 4},
                    "AMOUNT": {"double": float(rng.randint(1, 50))},
                }
            }
            for _ in range(batch)
        ]
        bodies.append(json.dumps({"value_schema_id": 1, "records": records}).encode())
    headers = {
        "Content-Type": "application/vnd.kafka.avro.v2+json",
        "Accept": "application/vnd.kafka.v2+json",
        "X-API-Key": ADMIN,  # producing takes a producer (or the admin) key
    }

    async def run() -> tuple[int, int, float]:
        accepted = refused = 0
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            await client.post("/topics/tote_win_bets", content=bodies[0], headers=headers)
            stop = time.perf_counter() + seconds
            started = time.perf_counter()

            async def producer(k: int) -> None:
                nonlocal accepted, refused
                i = k
                while time.perf_counter() < stop:
                    r = await client.post(
                        "/topics/tote_win_bets", content=bodies[i % len(bodies)], headers=headers
                    )
                    r.raise_for_status()
                    for o in r.json()["offsets"]:
                        if o["error_code"] is None:
                            accepted += 1
                        else:
                            refused += 1
                    i += producers

            await asyncio.gather(*(producer(k) for k in range(producers)))
            return accepted, refused, time.perf_counter() - started

    accepted, refused, elapsed = asyncio.run(run())
    return {
        "batch": batch,
        "producers": producers,
        "bets_accepted": accepted,
        "refused": refused,
        "seconds": round(elapsed, 2),
        "bets_per_s": round(accepted / elapsed, 1),
    }


# --------------------------------------------------------------------------- case c


async def _subscriber(
    host: str, port: int, path: str, out: list[tuple[int, float]], stop: float
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    # One deadline for the whole stream, not a wait_for per line: at 500 streams × 10
    # boards/s × 4 lines that was 20,000 timers a second in this process, which then
    # lagged behind its sockets and added its own delay to what it measured.
    try:
        async with asyncio.timeout(max(0.1, stop - time.time())):
            while True:
                line = await reader.readline()
                if not line:
                    break
                if line.startswith(b"id: "):
                    out.append((int(line[4:]), time.time()))
    except TimeoutError:
        pass
    finally:
        writer.close()


async def _subscribers(url: str, race_id: str, count: int, seconds: float, path_out: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    stop = time.time() + seconds
    logs: list[list[tuple[int, float]]] = [[] for _ in range(count)]
    tasks = []
    for i in range(count):
        tasks.append(
            asyncio.create_task(
                _subscriber(host, int(port), f"/races/{race_id}/odds/stream", logs[i], stop)
            )
        )
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # don't open 500 connections in one burst
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.to_thread(Path(path_out).write_text, json.dumps(logs))


async def _bettor(url: str, race_id: str, rate: float, seconds: float, path_out: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    connections = 16
    accepted: list[tuple[int, float]] = []
    interval = connections / rate
    start = time.time() + 0.5
    stop = start + seconds
    rng = random.Random(7)

    async def worker(k: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        next_at = start + k * interval / connections
        while next_at < stop:
            delay = next_at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            body = json.dumps(
                {"selection": [rng.randint(1, 12)], "stake_cents": 100 * rng.randint(2, 20)}
            ).encode()
            writer.write(
                b"POST /races/%s/bets HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (race_id.encode(), len(body), body)
            )
            await writer.drain()
            status = await reader.readline()
            length = 0
            while True:
                header = await reader.readline()
                if header in (b"\r\n", b""):
                    break
                if header.lower().startswith(b"content-length:"):
                    length = int(header.split(b":")[1])
            payload = await reader.readexactly(length)
            got = time.time()
            if b" 201 " in status:
                accepted.append((json.loads(payload)["position"], got))
            next_at += interval
        writer.close()

    await asyncio.gather(*(worker(k) for k in range(connections)))
    await asyncio.to_thread(Path(path_out).write_text, json.dumps(accepted))


def case_c(
    url: str,
    subscribers: int,
    rate: float,
    seconds: float,
    workdir: Path,
    subs_url: str | None = None,
) -> dict[str, Any]:
    """Bets through ``url``; the subscribers on ``subs_url`` (another API process, in
    services mode), else on ``url`` too."""
    open_race(url, "bench-c")
    subs_file, bets_file = workdir / "subs.json", workdir / "bets.json"
    me = [sys.executable, __file__]
    subs = subprocess.Popen(
        # they stay a few seconds past the last bet: a bet's board arriving after they
        # left would count as missed, not as late
        [*me, "--role", "subscribers", "--url", subs_url or url, "--count", str(subscribers),
         "--seconds", str(seconds + 6), "--out", str(subs_file)]
    )  # fmt: skip
    time.sleep(2.0)  # let the subscribers connect
    bets = subprocess.run(
        [*me, "--role", "bettor", "--url", url, "--rate", str(rate), "--seconds", str(seconds),
         "--out", str(bets_file)],
        check=True,
    )  # fmt: skip
    subs.wait(timeout=seconds + 30)
    if bets.returncode or subs.returncode:
        return {"error": "a load process failed"}
    logs = [sorted((p, t) for p, t in log) for log in json.loads(subs_file.read_text())]
    accepted = json.loads(bets_file.read_text())
    connected = sum(1 for log in logs if log)
    sample = accepted[:: max(1, len(accepted) // 400)]
    delays: list[float] = []
    missed = 0
    for position, accepted_at in sample:
        for log in logs:
            if not log:
                continue
            i = bisect.bisect_left(log, (position, 0.0))
            if i == len(log):
                missed += 1
                continue
            delays.append(max(0.0, log[i][1] - accepted_at))
    delays.sort()

    def pct(q: float) -> float | None:
        return (
            round(delays[min(len(delays) - 1, int(q * len(delays)))] * 1000, 2) if delays else None
        )

    elapsed = seconds
    return {
        "subscribers": subscribers,
        "subscribers_receiving": connected,
        "bets_accepted": len(accepted),
        "bets_per_s": round(len(accepted) / elapsed, 1),
        "pairs": len(delays),
        "missed_pairs": missed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(delays[-1] * 1000, 2) if delays else None,
    }


def case_d(seconds: float, workdir: Path) -> dict[str, Any]:
    """Case c across processes: services mode (PostgreSQL log, NATS, Redis; one worker
    and two API processes), bets through API process A, the 500 subscribers on B."""
    schema = f"bench_sse_{uuid.uuid4().hex[:8]}"
    env = {
        "ODDSTREAM_STORE_URL": PG_URL,
        "ODDSTREAM_PG_SCHEMA": schema,
        "ODDSTREAM_NATS_URL": NATS_URL,
        "ODDSTREAM_REDIS_URL": REDIS_URL,
        "ODDSTREAM_REDIS_PREFIX": f"{schema}:",
        "ODDSTREAM_ADMIN_KEY": ADMIN,
    }
    procs, urls = common.start_services(workdir, env, apis=2, workers=1)
    try:
        result = case_c(urls[0], 500, 2000, seconds, workdir, subs_url=urls[1])
    finally:
        for proc in reversed(procs):
            common.stop_server(proc)
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return {**result, "deployment": "1 worker + 2 API processes; bets on A, subscribers on B"}


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="a,b,c,d", help="cases to run, e.g. a,b")
    parser.add_argument("--case", choices=["a", "b", "c", "d"], help="run just this case")
    parser.add_argument("--role", choices=["subscribers", "bettor"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=500, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=2000, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "subscribers":
        asyncio.run(_subscribers(args.url, "bench-c", args.count, args.seconds, args.out))
        return
    if args.role == "bettor":
        asyncio.run(_bettor(args.url, "bench-c", args.rate, args.seconds, args.out))
        return

    cases = {args.case} if args.case else set(args.only.split(","))
    seconds = 4 if args.quick else 10
    workdir = Path(tempfile.mkdtemp(prefix="oddstream-bench-api-"))
    proc, url = start_server(workdir)
    results: dict[str, Any] = {}
    try:
        if "a" in cases:
            console.print("[dim]a) single-bet POSTs, 64 connections ...[/]")
            results["a"] = case_a(url, seconds, workdir)
        if "b" in cases:
            console.print("[dim]b) REST Proxy, batches of 1,000 Avro records ...[/]")
            results["b"] = case_b(url, seconds)
        if "c" in cases:
            console.print("[dim]c) SSE fan-out: 500 subscribers, 2,000 bets/s ...[/]")
            results["c"] = case_c(url, 500, 2000, seconds, workdir)
        if "d" in cases:
            console.print("[dim]d) SSE fan-out across processes (services mode) ...[/]")
            results["d"] = case_d(seconds, workdir)
    finally:
        common.stop_server(proc)
        shutil.rmtree(workdir, ignore_errors=True)

    table = Table(title="oddstream HTTP service (load from separate processes, loopback)")
    for column in ("case", "throughput", "p50 ms", "p99 ms", "target"):
        table.add_column(column)
    if "a" in results:
        a = results["a"]
        table.add_row(
            "a) single-bet POST, 64 conns",
            f"{a.get('req_per_s', 0):,.0f} req/s",
            str(a.get("p50_ms")),
            str(a.get("p99_ms")),
            f"≥ {TARGETS['a_req_per_s']:,} req/s, p99 < {TARGETS['a_p99_ms']} ms",
        )
    if "b" in results:
        b = results["b"]
        table.add_row(
            "b) REST Proxy, 1,000-record batches",
            f"{b.get('bets_per_s', 0):,.0f} bets/s",
            "",
            "",
            f"≥ {TARGETS['b_bets_per_s']:,} durable bets/s",
        )
    if "c" in results:
        c = results["c"]
        table.add_row(
            f"c) SSE fan-out to {c.get('subscribers_receiving')} subscribers",
            f"{c.get('bets_per_s', 0):,.0f} bets/s",
            str(c.get("p50_ms")),
            str(c.get("p99_ms")),
            f"p99 < {TARGETS['c_p99_ms']} ms (accepted → board received)",
        )
    if "d" in results:
        d = results["d"]
        table.add_row(
            f"d) as c, across processes: bets on A, {d.get('subscribers_receiving')} on B",
            f"{d.get('bets_per_s', 0):,.0f} bets/s",
            str(d.get("p50_ms")),
            str(d.get("p99_ms")),
            f"p99 < {TARGETS['c_p99_ms']} ms",
        )
    console.print(table)
    results.pop("raw", None)
    if "a" in results:
        results["a"].pop("raw", None)
    for case in results.values():
        case["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    if cases != {"a", "b", "c", "d"} and RESULTS.exists():
        # a partial run keeps the other cases' last figures
        results = {**json.loads(RESULTS.read_text()).get("cases", {}), **results}
    write_results(
        RESULTS,
        {
            "cases": results,
            "targets": TARGETS,
            "quick": args.quick,
            "store": "sqlite, synchronous=FULL",
            "machine": machine(),
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    console.print(f"results in {RESULTS}")


if __name__ == "__main__":
    main()
