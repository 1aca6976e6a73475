"""Benchmark the wallet API, with the load coming from another process on loopback (wrk).

Cases (64 concurrent connections each, one wallet per connection's key):
  reads-redis   GET /wallet/{id}/balance served from the Redis read model
  reads-sqlite  GET /wallet/{id}/balance served from the SQLite read model
  writes        POST /wallet/{id}/credit and /debit alternating, durable
                (SQLite store, synchronous=FULL: each answer is after the fsync)
  writes-ids    the same, each request with a request id of its own: what recognising
                retries costs (a fingerprint and the id stored with every event; the
                wallets were loaded when new, so the answers of all their ids are in
                memory and none is looked up in the store's request index)

The server is ``oddstream serve`` itself in a fresh temporary directory; for the Redis
case it runs with ``ODDSTREAM_REDIS_URL`` set (a key prefix of its own, deleted after).
The wallet POC's figure, 250–350 balance reads/s, is the reference the targets are set
against: reads ≥ 6,000 req/s (20×), writes ≥ 3,000 req/s.

Run ``.venv/bin/python bench/wallet.py [--quick]``; results go to
``bench/results/wallet.json``. Each case also reports the server's CPU time per request
(user + system, all its threads, from ``/proc`` around the wrk run).

``--compare OTHER_SRC`` runs the write cases against this checkout's ``src`` and another
one's (an older commit in a worktree), ``--runs`` times each, interleaved (each side first
in turn), and reports medians and ratios (this / other); results go to
``bench/results/wallet_compare.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

import common
from common import machine, write_results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "wallet.json"
COMPARE_RESULTS = ROOT / "bench" / "results" / "wallet_compare.json"
ADMIN = "bench-admin-key-0123456789"
WALLETS = 64
POC_READS_PER_S = (250, 350)
TARGETS = {"reads_per_s": 6000, "writes_per_s": 3000}
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

console = Console()


def customer_key(n: int) -> str:
    return f"bench-customer-{n:04d}-key"


def start_server(workdir: Path, extra_env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    keys = ",".join(f"{customer_key(n)}=w{n}" for n in range(WALLETS))
    env = {
        "ODDSTREAM_READ_MODEL_PATH": str(workdir / "read_models.db"),
        "ODDSTREAM_ADMIN_KEY": ADMIN,
        "ODDSTREAM_CUSTOMER_KEYS": keys,
        "ODDSTREAM_REDIS_URL": "",  # the SQLite read model unless the case asks for Redis
        **extra_env,
    }
    return common.start_server(workdir, env)


def fund(url: str) -> int:
    """Credit every bench wallet; the position of the last credit."""
    last = 0
    with httpx.Client(base_url=url, headers={"X-API-Key": ADMIN}, timeout=10) as client:
        for n in range(WALLETS):
            r = client.post(f"/wallet/w{n}/credit", json={"amount": 1_000_000})
            r.raise_for_status()
            last = r.json()["position"]
        # wait until the read model holds them all
        r = client.get(f"/wallet/w{WALLETS - 1}/balance?min_position={last}")
        r.raise_for_status()
    return last


def wrk(workdir: Path, url: str, lua: str, seconds: int) -> dict[str, Any]:
    """Run wrk (one thread, 64 connections) with a request script; parsed results."""
    script = workdir / f"{uuid.uuid4().hex}.lua"
    script.write_text(lua)
    return common.run_wrk(script, url, seconds)


# Each connection uses its own wallet and that wallet's customer key (wrk's setup()
# numbers the threads; with one thread, the connections share a counter).
_KEYS_LUA = "local keys = {" + ",".join(f'"{customer_key(n)}"' for n in range(WALLETS)) + "}\n"

READS_LUA = (
    _KEYS_LUA
    + """local n = 0
request = function()
  n = n + 1
  local w = n % 64
  return wrk.format("GET", "/wallet/w" .. w .. "/balance", {["X-API-Key"] = keys[w + 1]})
end
"""
)

WRITES_LUA = f"""local n = 0
request = function()
  n = n + 1
  local w = n % 64
  local op = (math.floor(n / 64) % 2 == 0) and "credit" or "debit"
  return wrk.format("POST", "/wallet/w" .. w .. "/" .. op,
    {{["X-API-Key"] = "{ADMIN}", ["Content-Type"] = "application/json"}}, '{{"amount": 1.5}}')
end
"""


WRITES_IDS_LUA = WRITES_LUA.replace(
    "'{\"amount\": 1.5}'", '\'{"amount": 1.5, "request_id": "r\' .. n .. \'"}\''
)
assert WRITES_IDS_LUA != WRITES_LUA


def run_case(name: str, env: dict[str, str], lua: str, seconds: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"oddstream-bench-wallet-{name}-"))
    proc, url = start_server(workdir, env)
    try:
        fund(url)
        cpu = common.cpu_seconds(proc.pid)
        result = wrk(workdir, url, lua, seconds)
        cpu = common.cpu_seconds(proc.pid) - cpu
        if result.get("requests"):
            result["server_cpu_us_per_req"] = round(cpu / result["requests"] * 1e6, 1)
        with httpx.Client(base_url=url, headers={"X-API-Key": ADMIN}) as client:
            result["sample"] = client.get("/wallet/w0/balance").json()
    finally:
        common.stop_server(proc)
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def clear_redis(prefix: str) -> None:
    try:
        import redis
    except ImportError:
        return
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


WRITE_CASES = {
    "writes": ("credit/debit, durable", WRITES_LUA),
    "writes-ids": ("credit/debit with request ids, durable", WRITES_IDS_LUA),
}


def compare(other_src: Path, cases: list[str], runs: int, seconds: int) -> None:
    """The write cases against this checkout and ``other_src``, interleaved."""
    sides = {"this": ROOT / "src", "other": other_src.resolve()}
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {
        case: {side: [] for side in sides} for case in cases
    }
    for run in range(runs):
        order = list(sides) if run % 2 == 0 else list(reversed(sides))
        for case in cases:
            for side in order:
                console.print(f"[dim]run {run + 1}/{runs}: {case}, {side} ({sides[side]}) ...[/]")
                env = {"PYTHONPATH": str(sides[side])}
                result = run_case(case, env, WRITE_CASES[case][1], seconds)
                result.pop("raw", None)
                raw[case][side].append(result)

    def median(case: str, side: str, key: str) -> float:
        values = [r[key] for r in raw[case][side] if r.get(key) is not None]
        return statistics.median(values) if values else float("nan")

    table = Table(
        title=f"wallet writes: this checkout / {other_src} "
        f"(medians of {runs} interleaved runs, wrk 64 connections)"
    )
    for column in ("case", "", "this", "other", "this / other"):
        table.add_column(column)
    summary: dict[str, Any] = {}
    for case in cases:
        summary[case] = {}
        for key, label in (
            ("req_per_s", "req/s"),
            ("server_cpu_us_per_req", "server CPU µs/req"),
            ("p50_ms", "p50 ms"),
            ("p99_ms", "p99 ms"),
        ):
            this, other = median(case, "this", key), median(case, "other", key)
            ratio = this / other if other else float("nan")
            summary[case][key] = {"this": this, "other": other, "ratio": round(ratio, 3)}
            table.add_row(
                WRITE_CASES[case][0], label, f"{this:,.1f}", f"{other:,.1f}", f"{ratio:.2f}"
            )
    console.print(table)
    write_results(
        COMPARE_RESULTS,
        {
            "benchmark": "wallet-writes-compare",
            "ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(load_average_at_end=os.getloadavg()),
            "this": {"src": str(sides["this"]), "commit": common.checkout(sides["this"])},
            "other": {"src": str(sides["other"]), "commit": common.checkout(sides["other"])},
            "runs": runs,
            "seconds": seconds,
            "medians": summary,
            "results": raw,
        },
    )
    console.print(f"results written to {COMPARE_RESULTS.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="reads-redis,reads-sqlite,writes,writes-ids")
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="OTHER_SRC",
        help="run the write cases against this checkout's src and OTHER_SRC, interleaved",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per side with --compare")
    args = parser.parse_args()
    seconds = 4 if args.quick else 10
    cases = args.only.split(",")
    if args.compare is not None:
        compare(args.compare, [c for c in cases if c in WRITE_CASES], args.runs, seconds)
        return
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    results: dict[str, Any] = {}
    try:
        if "reads-redis" in cases:
            console.print("[dim]balance reads from Redis, 64 connections ...[/]")
            env = {"ODDSTREAM_REDIS_URL": REDIS_URL, "ODDSTREAM_REDIS_PREFIX": prefix}
            results["reads_redis"] = run_case("redis", env, READS_LUA, seconds)
        if "reads-sqlite" in cases:
            console.print("[dim]balance reads from SQLite, 64 connections ...[/]")
            results["reads_sqlite"] = run_case("sqlite", {}, READS_LUA, seconds)
        if "writes" in cases:
            console.print("[dim]credit/debit writes, durable, 64 connections ...[/]")
            results["writes"] = run_case("writes", {}, WRITES_LUA, seconds)
        if "writes-ids" in cases:
            console.print("[dim]credit/debit writes with request ids, durable ...[/]")
            results["writes_ids"] = run_case("writes-ids", {}, WRITES_IDS_LUA, seconds)
    finally:
        clear_redis(prefix)

    table = Table(title="wallet API (load: wrk, 64 connections, loopback; server: 1 process)")
    for column in ("case", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "target", "vs POC"):
        table.add_column(column)
    for key, label, target in (
        ("reads_redis", "balance reads, Redis read model", TARGETS["reads_per_s"]),
        ("reads_sqlite", "balance reads, SQLite read model", TARGETS["reads_per_s"]),
        ("writes", "credit/debit, durable", TARGETS["writes_per_s"]),
        ("writes_ids", "credit/debit with request ids, durable", TARGETS["writes_per_s"]),
    ):
        r = results.get(key)
        if r is None:
            continue
        rate = r.get("req_per_s") or 0
        table.add_row(
            label,
            f"{rate:,.0f}",
            str(r.get("p50_ms")),
            str(r.get("p99_ms")),
            str(r.get("server_cpu_us_per_req")),
            f"≥ {target:,} req/s {'(met)' if rate >= target else '(NOT met)'}",
            f"{rate / POC_READS_PER_S[1]:.0f}×" if key.startswith("reads") else "",
        )
    console.print(table)
    write_results(
        RESULTS,
        {
            "benchmark": "wallet",
            "ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(load_average_at_end=os.getloadavg()),
            "targets": TARGETS,
            "poc_reads_per_s": POC_READS_PER_S,
            "results": results,
        },
    )
    console.print(f"results written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
