"""Benchmark the fixed-odds service: commands, and GraphQL subscribers under fan-out.

Cases (the server is ``oddstream serve``, embedded SQLite store, synchronous=FULL, in a
fresh temporary directory; the load comes from other processes on loopback):

  updates) price updates (``PATCH /odds/{id}``, ``UpdateOdds``, each with its own
     RequestID, round-robin over 64 markets) from 64 connections (``wrk -t1 -c64``):
     updates/s, p50, p99;
  graphql) 200 GraphQL subscribers of ``getInstantOdds`` (real WebSocket clients
     speaking ``graphql-transport-ws``, split over two processes) while updates arrive at
     100/s through the command API: the delay from an update accepted (its command's
     answer read by the updater) to its push read by a subscriber, for every update at
     every subscriber; every update must reach every subscriber; target p99 ≤ 150 ms;
  fanout) the same at rising update rates until p99 passes 250 ms or a push is missed:
     the highest fan-out in frames per second (pushes read by all subscribers per
     second) sustained with p99 ≤ 250 ms. Run twice, interleaved step by step: every
     subscriber with the same document (``shared``: a push executed and encoded once,
     ``api/graphql_fanout.py``), and every subscriber with a document of its own (the
     same query with a comment of its own, ``per_subscriber``: executed and encoded once
     per subscriber, as Strawberry alone does);
  velocity) not run here: the velocity tiers' figures are read from
     ``bench/results/velocity.json`` (``bench/velocity.py``) when that file exists.

Run ``.venv/bin/python bench/odds.py [--quick]``; results go to
``bench/results/odds.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import websockets
from rich.console import Console
from rich.table import Table

import common
from common import machine, write_results
from oddstream.loadgen import HttpClient, build_request, parse_target

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "odds.json"
VELOCITY = ROOT / "bench" / "results" / "velocity.json"
ADMIN = "bench-admin-key-0123456789"  # API keys are at least 16 characters
PROVIDER = "bench"
MARKETS = 64
SUBSCRIBERS = 200
SUBSCRIBER_PROCESSES = 2
RATE = 100
UPDATER_CONNECTIONS = 16
TARGETS = {"graphql_p99_ms": 150, "fanout_p99_ms": 250}
DOCUMENT = (
    "subscription Bench { getInstantOdds(current: true) "
    "{ external_id game_id moneyline { home away draw } updated_at position } }"
)
POSITION = re.compile(r'"position":(\d+)')
#: whether the subscribers offer permessage-deflate (browsers and the websockets library
#: do by default; --compression 0 for a run without it)
COMPRESSION = os.environ.get("BENCH_ODDS_COMPRESSION", "1") == "1"

console = Console()


# --------------------------------------------------------------------------- markets


def _command(kind: str, request_id: str, game: str, home: float) -> dict[str, Any]:
    return {
        "RequestID": request_id,
        "Provider": PROVIDER,
        "Command": kind,
        "Domain": "Odds",
        "Payload": {"GameID": game, "MoneyLine": {"Home": home, "Away": 2.2, "Draw": 3.4}},
    }


def create_markets(url: str, count: int) -> list[tuple[str, str]]:
    """``count`` markets (``NewOdds`` with the admin key): (external id, game) each."""
    markets = []
    with httpx.Client(base_url=url, headers={"X-API-Key": ADMIN}, timeout=30) as client:
        for k in range(count):
            game = f"bench-g{k}"
            answer = client.post("/odds", json=_command("NewOdds", f"new-{k}", game, 1.91))
            answer.raise_for_status()
            markets.append((answer.json()["ExternalID"], game))
    return markets


# --------------------------------------------------------------------------- updates


def case_updates(url: str, markets: list[tuple[str, str]], seconds: float, workdir: Path) -> Any:
    """``wrk -t1 -c64``: UpdateOdds round-robin over the markets, a RequestID each (home
    prices from 2.00 to 4.99: every update valid)."""
    run = uuid.uuid4().hex[:8]
    targets = ",".join(f'{{"{m}","{g}"}}' for m, g in markets)
    script = workdir / "update.lua"
    script.write_text(
        'wrk.method = "PATCH"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["X-API-Key"] = "{ADMIN}"\n'
        f"local markets = {{{targets}}}\n"
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        "  local m = markets[(n % #markets) + 1]\n"
        '  local body = string.format(\'{"RequestID":"w-%s-%d","Provider":"%s",'
        '"Command":"UpdateOdds","Payload":{"GameID":"%s","MoneyLine":'
        '{"Home":%d.%02d,"Away":2.2,"Draw":3.4}}}\', '
        f'"{run}", n, "{PROVIDER}", m[2], 2 + (n % 3), n % 100)\n'
        '  return wrk.format(nil, "/odds/" .. m[1], nil, body)\n'
        "end\n"
    )
    result = common.run_wrk(script, url, seconds)
    if "req_per_s" in result:
        result["updates_per_s"] = result.pop("req_per_s")
    return result


# --------------------------------------------------------------------------- subscribers


async def _subscriber(
    ws_url: str, document: str, initial: int, ready: asyncio.Event, stop: float, log: Any
) -> None:
    positions, times = log
    async with websockets.connect(
        ws_url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        max_size=None,
        compression="deflate" if COMPRESSION else None,
    ) as socket:
        await socket.send('{"type":"connection_init","payload":{}}')
        await socket.recv()  # connection_ack
        payload = {"query": document}
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        seen = 0
        # one deadline for the whole stream, not a timer per message (bench/api.py)
        try:
            async with asyncio.timeout(max(0.1, stop - time.time())):
                async for message in socket:
                    now = time.time()
                    found = POSITION.search(message)  # type: ignore[arg-type]
                    if found is None:
                        raise RuntimeError(f"not a push: {message!r:.200}")
                    seen += 1
                    if seen <= initial:  # the markets' current records come first
                        if seen == initial:
                            ready.set()
                        continue
                    positions.append(int(found.group(1)))
                    times.append(now)
        except TimeoutError:
            pass


async def _subscribers(
    url: str, count: int, shared: bool, tag: str, seconds: float, ready_file: str, out: str
) -> None:
    """``count`` subscribers; ``ready_file`` is written once each has the markets'
    current records (so is subscribed), then they listen ``seconds`` more."""
    ws_url = url.replace("http://", "ws://") + "/api/graphql"
    logs = [(array("q"), array("d")) for _ in range(count)]
    readies = [asyncio.Event() for _ in range(count)]
    stop = time.time() + 60 + seconds  # moved to ready + seconds below
    tasks = []
    for i in range(count):
        document = DOCUMENT if shared else f"{DOCUMENT} # subscriber {tag}-{i}"
        tasks.append(
            asyncio.create_task(_subscriber(ws_url, document, MARKETS, readies[i], stop, logs[i]))
        )
        if i % 25 == 24:
            await asyncio.sleep(0.05)  # don't open them all in one burst
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=60)
    await asyncio.to_thread(Path(ready_file).write_text, "ready")
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.to_thread(Path(out).write_text, json.dumps([[list(p), list(t)] for p, t in logs]))


# --------------------------------------------------------------------------- updater


async def _update(url: str, markets: list[tuple[str, str]], rate: float, seconds: float) -> Any:
    """UpdateOdds at ``rate`` per second for ``seconds`` over the markets, from
    :data:`UPDATER_CONNECTIONS` connections (the project's load client); returns
    (position, answer read at) of each accepted update, and the refused count."""
    target = parse_target(url)
    run = uuid.uuid4().hex[:8]
    #: (position, when the command was sent, when its answer was read)
    accepted: list[tuple[int, float, float]] = []
    refused = 0
    interval = UPDATER_CONNECTIONS / rate
    start = time.time() + 0.2
    stop = start + seconds

    async def worker(k: int) -> None:
        nonlocal refused
        client = HttpClient(target.host, target.port, b"", keep_body=True)
        n = k
        next_at = start + k * interval / UPDATER_CONNECTIONS
        while next_at < stop:
            delay = next_at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            market, game = markets[n % len(markets)]
            # rounded: 1.5 + 0.07 is 1.5699999999999998, which the API refuses (bad_odds)
            body = _command("UpdateOdds", f"u-{run}-{n}", game, round(1.5 + (n % 50) / 100, 2))
            client.request = build_request(
                "PATCH",
                parse_target(f"{url}/odds/{market}"),
                [("X-API-Key", ADMIN)],
                json.dumps(body).encode(),
            )
            sent = time.time()
            status = await client.fetch()
            answered = time.time()
            if status == 200:
                accepted.append((json.loads(client.last_body)["Position"], sent, answered))
            else:
                refused += 1
            n += UPDATER_CONNECTIONS
            next_at += interval
        client.close()

    await asyncio.gather(*(worker(k) for k in range(UPDATER_CONNECTIONS)))
    return accepted, refused


def fanout(
    server: int,
    url: str,
    markets: list[tuple[str, str]],
    rate: float,
    seconds: float,
    shared: bool,
    workdir: Path,
) -> dict[str, Any]:
    """:data:`SUBSCRIBERS` subscribers over :data:`SUBSCRIBER_PROCESSES` processes,
    updates at ``rate``/s for ``seconds``: delays from accepted to received, for every
    update at every subscriber."""
    me = [sys.executable, __file__]
    tag = uuid.uuid4().hex[:6]
    each = SUBSCRIBERS // SUBSCRIBER_PROCESSES
    procs, files = [], []
    for p in range(SUBSCRIBER_PROCESSES):
        ready, out = workdir / f"ready-{tag}-{p}", workdir / f"subs-{tag}-{p}.json"
        files.append((ready, out))
        # they listen a few seconds past the last update: a push arriving after they
        # left would count as missed, not as late
        command = [
            *me, "--role", "subscribers", "--url", url, "--count", str(each),
            "--shared", "1" if shared else "0", "--tag", f"{tag}{p}",
            "--seconds", str(seconds + 4), "--ready", str(ready), "--out", str(out),
        ]  # fmt: skip
        procs.append(subprocess.Popen(command))
    deadline = time.monotonic() + 90
    while not all(ready.exists() for ready, _ in files):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            for proc in procs:
                proc.kill()
            return {"error": "the subscribers did not all subscribe"}
        time.sleep(0.05)
    load_before = os.getloadavg()
    cpu_before = common.cpu_seconds(server)
    accepted, refused = asyncio.run(_update(url, markets, rate, seconds))
    server_cpu = common.cpu_seconds(server) - cpu_before
    subscribers_cpu = 0.0
    for proc in procs:
        _, status, usage = os.wait4(proc.pid, 0)  # its CPU time, which Popen.wait drops
        proc.returncode = os.waitstatus_to_exitcode(status)
        subscribers_cpu += usage.ru_utime + usage.ru_stime
    if any(proc.returncode for proc in procs):
        return {"error": "a subscriber process failed"}
    logs = [log for _, out in files for log in json.loads(out.read_text())]
    delays: list[float] = []
    #: from the command's send: an upper bound (a push can arrive before the answer is
    #: read, which the accepted-to-received delay counts as 0)
    from_send: list[float] = []
    missed = 0
    frames = 0
    for positions, times in logs:
        got = dict(zip(positions, times, strict=True))
        frames += len(positions)
        for position, sent_at, accepted_at in accepted:
            at = got.get(position)
            if at is None:
                missed += 1
            else:
                delays.append(max(0.0, at - accepted_at))
                from_send.append(at - sent_at)
    delays.sort()
    from_send.sort()

    def pct(q: float, values: list[float] | None = None) -> float | None:
        values = delays if values is None else values
        if not values:
            return None
        return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 2)

    return {
        "document": "shared" if shared else "per_subscriber",
        "subscribers": len(logs),
        "rate_asked": rate,
        "updates_accepted": len(accepted),
        "updates_refused": refused,
        "updates_per_s": round(len(accepted) / seconds, 1),
        "frames_per_s": round(frames / seconds, 1),
        "pairs": len(delays),
        "missed_pairs": missed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "p99_from_send_ms": pct(0.99, from_send),
        "max_ms": round(delays[-1] * 1000, 2) if delays else None,
        # the server's CPU while the updates were sent (commands, read model, pushes)
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_us_per_frame": round(server_cpu / frames * 1e6, 1) if frames else None,
        "subscribers_cpu_s": round(subscribers_cpu, 2),
        "compression": COMPRESSION,
        "loadavg_1m": round(load_before[0], 2),
    }


def _sustained(run: dict[str, Any]) -> bool:
    p99 = run.get("p99_ms")
    return p99 is not None and p99 <= TARGETS["fanout_p99_ms"] and run["missed_pairs"] == 0


def sweep(
    server: int,
    url: str,
    markets: list[tuple[str, str]],
    rates: list[float],
    seconds: float,
    workdir: Path,
) -> dict[str, Any]:
    """Both documents at each rate in turn (the order alternating), until neither is
    sustained; the highest frames/s each sustained."""
    steps: list[dict[str, Any]] = []
    going = {True: True, False: True}
    for i, rate in enumerate(rates):
        for shared in (True, False) if i % 2 == 0 else (False, True):
            if not going[shared]:
                continue
            run = fanout(server, url, markets, rate, seconds, shared, workdir)
            steps.append(run)
            going[shared] = _sustained(run)
            console.print(
                f"  [dim]{run.get('document')} {rate:>6.0f}/s: {run.get('frames_per_s')}"
                f" frames/s, p99 {run.get('p99_ms')} ms, missed {run.get('missed_pairs')},"
                f" server {run.get('server_cpu_us_per_frame')} µs CPU/frame[/]"
            )
        if not any(going.values()):
            break
    best = {}
    for name in ("shared", "per_subscriber"):
        ok = [s["frames_per_s"] for s in steps if s.get("document") == name and _sustained(s)]
        best[name] = max(ok) if ok else None
    ratio = (
        round(best["shared"] / best["per_subscriber"], 2)
        if best["shared"] and best["per_subscriber"]
        else None
    )
    # the server's CPU per frame, per-subscriber over shared, at each rate both ran
    cpu = {}
    for step in steps:
        if step.get("document") == "shared":
            other = next(
                (
                    s
                    for s in steps
                    if s.get("document") == "per_subscriber"
                    and s["rate_asked"] == step["rate_asked"]
                ),
                None,
            )
            if other and step["server_cpu_us_per_frame"] and other["server_cpu_us_per_frame"]:
                cpu[str(step["rate_asked"])] = round(
                    other["server_cpu_us_per_frame"] / step["server_cpu_us_per_frame"], 2
                )
    return {
        "max_frames_per_s": best,
        "shared_over_per_subscriber": ratio,
        "cpu_per_frame_per_subscriber_over_shared": cpu,
        "steps": steps,
    }


# --------------------------------------------------------------------------- velocity


def velocity() -> tuple[dict[str, Any] | None, str]:
    """The velocity tiers' figures from ``bench/results/velocity.json``, if it exists."""
    if not VELOCITY.exists():
        return None, f"not measured: {VELOCITY.relative_to(ROOT)} is absent (bench/velocity.py)"
    doc = json.loads(VELOCITY.read_text())
    found = doc.get("velocity")
    if not isinstance(found, dict):
        return None, f"{VELOCITY.relative_to(ROOT)} has no 'velocity' key"
    return found, f"read from {VELOCITY.relative_to(ROOT)} (run {doc.get('when', '?')})"


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--rates", default="5,10,25,50,100,150,200,300,400", help="the fan-out sweep's updates/s"
    )
    parser.add_argument("--role", choices=["subscribers"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=100, help=argparse.SUPPRESS)
    parser.add_argument("--shared", default="1", help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10, help=argparse.SUPPRESS)
    parser.add_argument("--ready", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "subscribers":
        asyncio.run(
            _subscribers(
                args.url,
                args.count,
                args.shared == "1",
                args.tag,
                args.seconds,
                args.ready,
                args.out,
            )
        )
        return

    seconds = 4 if args.quick else 10
    rates = [float(r) for r in args.rates.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="oddstream-bench-odds-"))
    proc, url = common.start_server(workdir, {"ODDSTREAM_ADMIN_KEY": ADMIN})
    loadavg = {"start": os.getloadavg()[0]}
    try:
        markets = create_markets(url, MARKETS)
        console.print("[dim]updates) UpdateOdds from 64 connections ...[/]")
        updates = case_updates(url, markets, seconds, workdir)
        console.print(f"[dim]graphql) {SUBSCRIBERS} subscribers, {RATE} updates/s ...[/]")
        graphql = fanout(proc.pid, url, markets, RATE, seconds, True, workdir)
        console.print("[dim]fanout) rising rates, shared and per-subscriber documents ...[/]")
        fan = sweep(proc.pid, url, markets, rates, max(4.0, seconds / 2), workdir)
    finally:
        loadavg["end"] = os.getloadavg()[0]
        common.stop_server(proc)
        shutil.rmtree(workdir, ignore_errors=True)
    found, said = velocity()

    table = Table(title="fixed-odds service (load from separate processes, loopback)")
    for column in ("case", "figure", "p50 ms", "p99 ms", "target"):
        table.add_column(column)
    table.add_row(
        "updates) UpdateOdds, 64 conns",
        f"{updates.get('updates_per_s', 0):,.0f} updates/s",
        str(updates.get("p50_ms")),
        str(updates.get("p99_ms")),
        "",
    )
    table.add_row(
        f"graphql) {graphql.get('subscribers')} subscribers",
        f"{graphql.get('updates_per_s')} updates/s, missed {graphql.get('missed_pairs')}",
        str(graphql.get("p50_ms")),
        str(graphql.get("p99_ms")),
        f"p99 ≤ {TARGETS['graphql_p99_ms']} ms, none missed",
    )
    for name in ("shared", "per_subscriber"):
        table.add_row(
            f"fanout) {name} document",
            f"{fan['max_frames_per_s'][name]} frames/s",
            "",
            "",
            f"max with p99 ≤ {TARGETS['fanout_p99_ms']} ms",
        )
    console.print(table)
    console.print(f"max frames/s, shared / per-subscriber: {fan['shared_over_per_subscriber']}")
    console.print(
        "server CPU per frame, per-subscriber / shared, by updates/s: "
        f"{fan['cpu_per_frame_per_subscriber_over_shared']}"
    )
    console.print(f"velocity: {said}")
    updates.pop("raw", None)
    write_results(
        RESULTS,
        {
            "updates_per_s": updates.get("updates_per_s"),
            "graphql": {
                "subscribers": graphql.get("subscribers"),
                "updates_per_s": graphql.get("updates_per_s"),
                "p99_ms": graphql.get("p99_ms"),
                "p99_from_send_ms": graphql.get("p99_from_send_ms"),
                "max_frames_per_s": fan["max_frames_per_s"]["shared"],
            },
            "velocity": found,
            "velocity_source": said,
            "details": {
                "updates": updates,
                "graphql": graphql,
                "fanout": fan,
            },
            "targets": TARGETS,
            "quick": args.quick,
            "store": "sqlite, synchronous=FULL",
            "loadavg_1m": loadavg,
            "commit": common.checkout(ROOT),
            "machine": machine(),
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    console.print(f"results in {RESULTS}")


if __name__ == "__main__":
    main()
