"""Services mode against the embedded server, on one machine: throughput, latency and CPU.

Configurations, each a fresh deployment per measurement (a new PostgreSQL schema, Redis
key prefix and so NATS subjects of its own, new processes):

- ``embedded``: ``oddstream serve``, PostgreSQL store, wallet read model in Redis;
- ``services-1+1``: one ``oddstream api`` and one ``oddstream worker``;
- ``services-2+2``: two of each; the load is spread over both API ports;
- ``embedded-sqlite`` (an extra line): ``oddstream serve`` on SQLite (synchronous=FULL),
  wallet read model in Redis.

Measurements, one deployment each:

- ``bets``: cash single-bet POSTs on 8 races in 8 partitions, ``wrk -t2 -c64``
  (connections split evenly over the API ports), after a warm-up: bets/s;
- ``credits``: admin ``POST /wallet/{id}/credit`` over 2,000 wallets, the same way;
- ``light``: bets at 20/s from one keep-alive connection per API port, one at a time:
  p50/p90/p99 latency. The bus's added latency is p50(services) - p50(embedded).

CPU: utime+stime (``/proc/<pid>/stat``) of every process the configuration uses —
the oddstream processes, every ``postgres`` process (with the postmaster's reaped
children, so backends that exit are counted), ``nats-server``, ``redis-server`` —
before and after each timed run, divided by the events the run appended. PostgreSQL,
NATS and Redis are shared with whatever else runs on the machine; the PostgreSQL part
is also reported for this deployment's own backends (found by their client ports) and
the server's background writers only. The load generator's CPU is reported, not
counted. ``--case ready`` fills a schema with >= 1,000,000 events and times a new API
process until ``/readyz`` answers 200.

Run ``.venv/bin/python bench/scale.py [--quick] [--only embedded,services-1+1]
[--measure bets,credits,light] [--case ready]``; results go to
``bench/results/scale.json``. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from psycopg import sql
from rich.console import Console
from rich.table import Table

from common import free_port, machine, package_version, write_results
from oddstream.cluster.partitions import race_partition

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "scale.json"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
ADMIN = "scale-admin-key-0123456789"
PARTITIONS = 64
RACES = 8
WALLETS = 2000
CONNECTIONS = 64
LIGHT_RATE = 20.0
CONFIGS = ("embedded", "services-1+1", "services-2+2")
EXTRA_CONFIGS = ("embedded-sqlite",)
MEASURES = ("bets", "credits", "light")
TARGETS = {"added_p50_ms": 3.0, "cpu_ratio": 2.5}
RACE = {
    "meeting": "Scale Park",
    "venue": "Scale Park",
    "post_time": "2026-11-21T15:00:00Z",
    "runners": [{"number": n, "name": f"Runner {n}"} for n in range(1, 13)],
    "pools": [
        {"pool": p, "takeout_bps": 1500}
        for p in ("WIN", "PLACE", "SHOW", "EXACTA", "QUINELLA", "TRIFECTA")
    ],
}
CLK = os.sysconf("SC_CLK_TCK")
PG_PORT_HEX = f"{5432:04X}"

console = Console(width=None if sys.stdout.isatty() else 130)


# --------------------------------------------------------------------------- CPU


def _stat(pid: int) -> tuple[int, int] | None:
    """(utime+stime, cutime+cstime) of ``pid`` in clock ticks, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2 :].split()
    return int(rest[11]) + int(rest[12]), int(rest[13]) + int(rest[14])


def _pids_named(name: str) -> list[tuple[int, int]]:
    """(pid, ppid) of every process whose ``comm`` is ``name``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != name:
                continue
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        found.append((int(entry.name), ppid))
    return found


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    return inodes


def _pg_client_ports(pids: list[int]) -> set[int]:
    """Local ports of the TCP connections to port 5432 held by ``pids``."""
    inodes: set[str] = set()
    for pid in pids:
        inodes |= _socket_inodes(pid)
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[2].endswith(":" + PG_PORT_HEX) and cols[9] in inodes:
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


@dataclass
class CpuSample:
    """Clock ticks of every process that counts, at one moment."""

    ours: dict[int, int]
    postgres: dict[int, int]  # utime+stime; the postmaster's with its reaped children
    postmaster: int | None
    postmaster_self: int  # the postmaster's own time, without its children's
    own_backends: set[int]
    aux: set[int]
    nats: dict[int, int]
    redis: dict[int, int]
    at: float


#: the PostgreSQL server's own writers (their titles), counted with a deployment's backends
_AUX_TITLES = ("checkpointer", "background writer", "walwriter")


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class CpuMeter:
    """Samples the CPU of a deployment's processes and the shared engines."""

    def __init__(self, pg_url: str) -> None:
        self._pg_url = pg_url

    def close(self) -> None:
        """Nothing held between samples (other work may restart the shared engines)."""

    def _backends(self, ours: list[int]) -> set[int]:
        ports = _pg_client_ports(ours)
        if not ports:
            return set()
        try:
            with psycopg.connect(self._pg_url, autocommit=True, connect_timeout=5) as conn:
                rows = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%s) "
                    "AND client_addr IN ('127.0.0.1', '::1')",
                    (sorted(ports),),
                ).fetchall()
        except psycopg.Error:
            return set()
        return {int(r[0]) for r in rows}

    def sample(self, ours: list[int]) -> CpuSample:
        postgres: dict[int, int] = {}
        postmaster = None
        postmaster_self = 0
        aux = set()
        pg = _pids_named("postgres")
        pg_pids = {pid for pid, _ in pg}
        for pid, ppid in pg:
            stat = _stat(pid)
            if stat is None:
                continue
            if ppid not in pg_pids:  # the postmaster: its exited children count too
                postmaster = pid
                postmaster_self = stat[0]
                postgres[pid] = stat[0] + stat[1]
            else:
                postgres[pid] = stat[0]
                if any(title in _title(pid) for title in _AUX_TITLES):
                    aux.add(pid)
        own = self._backends(ours)

        def ticks(pids: list[int]) -> dict[int, int]:
            out = {}
            for pid in pids:
                stat = _stat(pid)
                if stat is not None:
                    out[pid] = stat[0]
            return out

        return CpuSample(
            ours=ticks(ours),
            postgres=postgres,
            postmaster=postmaster,
            postmaster_self=postmaster_self,
            own_backends=own,
            aux=aux,
            nats=ticks([p for p, _ in _pids_named("nats-server")]),
            redis=ticks([p for p, _ in _pids_named("redis-server")]),
            at=time.monotonic(),
        )

    @staticmethod
    def restarted(before: CpuSample, after: CpuSample) -> list[str]:
        """The shared engines that were restarted between two samples (by other work on
        the machine): their CPU cannot be compared."""
        found = []
        if before.postmaster != after.postmaster:
            found.append("PostgreSQL")
        if set(before.nats) != set(after.nats):
            found.append("NATS")
        if set(before.redis) != set(after.redis):
            found.append("Redis")
        return found

    @staticmethod
    def delta(before: CpuSample, after: CpuSample) -> dict[str, float]:
        """CPU seconds per part between two samples."""

        def total(a: dict[int, int], b: dict[int, int]) -> float:
            return (sum(b.values()) - sum(a.values())) / CLK

        own_pids = before.own_backends | after.own_backends | before.aux | after.aux
        own = after.postmaster_self - before.postmaster_self
        for pid in own_pids:
            if pid in after.postgres:
                own += after.postgres[pid] - before.postgres.get(pid, 0)
        parts = {
            "oddstream": total(before.ours, after.ours),
            "postgres_all": total(before.postgres, after.postgres),
            "postgres_own": own / CLK,
            "nats": total(before.nats, after.nats),
            "redis": total(before.redis, after.redis),
            "wall": after.at - before.at,
        }
        return {k: round(v, 3) for k, v in parts.items()}


# --------------------------------------------------------------------------- deployments


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Deployment:
    """The processes of one configuration, on storage of its own."""

    config: str
    workdir: Path
    env: dict[str, str]
    schema: str | None
    prefix: str
    procs: list[Proc] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [p.url for p in self.procs if p.url is not None]

    @property
    def pids(self) -> list[int]:
        return [p.popen.pid for p in self.procs]

    @property
    def uses(self) -> tuple[str, ...]:
        """The engines this configuration uses (their CPU counts)."""
        if self.config == "embedded-sqlite":
            return ("oddstream", "redis")
        if self.config == "embedded":
            return ("oddstream", "postgres", "redis")
        return ("oddstream", "postgres", "nats", "redis")

    def spawn(self, name: str, args: list[str], url: str | None = None) -> Proc:
        log = self.workdir / f"{name}.log"
        popen = subprocess.Popen(
            [sys.executable, "-m", "oddstream.cli", *args],
            env=self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of the bench reaches the processes via stop()
        )
        proc = Proc(name, popen, log, url)
        self.procs.append(proc)
        return proc

    def wait(self, proc: Proc, done: Any, what: str, timeout: float = 90.0) -> float:
        start = time.monotonic()
        while not done():
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited:\n{proc.output()[-3000:]}")
            if time.monotonic() - start > timeout:
                raise RuntimeError(f"{proc.name}: {what} not reached:\n{proc.output()[-3000:]}")
            time.sleep(0.05)
        return time.monotonic() - start

    def wait_ready(self, proc: Proc, timeout: float = 90.0) -> float:
        """Seconds until ``proc`` answers /readyz 200."""

        def ready() -> bool:
            try:
                return httpx.get(f"{proc.url}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        return self.wait(proc, ready, "/readyz 200", timeout)

    def partitions_settled(self, workers: list[Proc]) -> bool:
        """Every partition owned, shared evenly among ``workers`` (from their logs)."""
        counts = []
        for proc in workers:
            text = proc.output()
            owns = len(re.findall(rf"{proc.name} owns partition \d+", text))
            gave = len(re.findall(rf"{proc.name} gave up partition \d+", text))
            counts.append(owns - gave)
        return sum(counts) == PARTITIONS and max(counts) - min(counts) <= 1

    def stop(self) -> None:
        """SIGTERM the API processes, then the workers; SIGKILL what is left after 20 s.
        Only the processes this deployment started."""
        apis = [p for p in self.procs if p.url is not None]
        others = [p for p in self.procs if p.url is None]
        for group in (apis, others):
            for proc in group:
                if proc.popen.poll() is None:
                    proc.popen.send_signal(signal.SIGTERM)
            for proc in group:
                try:
                    proc.popen.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.popen.kill()
                    proc.popen.wait()


@dataclass
class Engines:
    pg_url: str
    nats_url: str
    redis_url: str


def deploy(config: str, engines: Engines, workdir: Path) -> Deployment:
    """Start ``config`` on a fresh schema and Redis prefix; returns once every API
    process answers /readyz and (services) every partition has an owner."""
    tag = uuid.uuid4().hex[:10]
    schema = None if config == "embedded-sqlite" else f"scale_{tag}"
    prefix = f"scale{tag}:"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "ODDSTREAM_REDIS_URL": engines.redis_url,
        "ODDSTREAM_REDIS_PREFIX": prefix,
        "ODDSTREAM_ADMIN_KEY": ADMIN,
        "ODDSTREAM_PARTITIONS": str(PARTITIONS),
    }
    for name in ("ODDSTREAM_KAFKA_COMPAT", "ODDSTREAM_CUSTOMER_KEYS", "ODDSTREAM_SNAPSHOT_SECONDS"):
        env.pop(name, None)
    if schema is None:
        env["ODDSTREAM_STORE_URL"] = f"sqlite:///{workdir}/scale.db"
    else:
        env["ODDSTREAM_STORE_URL"] = engines.pg_url
        env["ODDSTREAM_PG_SCHEMA"] = schema
    if config.startswith("services"):
        env["ODDSTREAM_NATS_URL"] = engines.nats_url
    dep = Deployment(config, workdir, env, schema, prefix)
    try:
        if config.startswith("embedded"):
            port = free_port()
            proc = dep.spawn(
                "serve", ["serve", "--port", str(port)], url=f"http://127.0.0.1:{port}"
            )
            dep.wait_ready(proc)
            return dep
        apis, workers = (int(n) for n in config.removeprefix("services-").split("+"))
        started = []
        for i in range(workers):
            name = f"w{i}"
            proc = dep.spawn(name, ["worker", "--name", name])
            dep.wait(proc, lambda p=proc, n=name: f"{n} ready" in p.output(), "ready")
            started.append(proc)
        dep.wait(started[-1], lambda: dep.partitions_settled(started), "partitions shared", 60)
        for _ in range(apis):
            port = free_port()
            proc = dep.spawn(
                f"api-{port}", ["api", "--port", str(port)], url=f"http://127.0.0.1:{port}"
            )
            dep.wait_ready(proc)
        return dep
    except BaseException:
        dep.stop()
        cleanup(dep, engines)
        raise


def cleanup(dep: Deployment, engines: Engines) -> None:
    """Drop the deployment's schema and Redis keys."""
    if dep.schema is not None:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(engines.pg_url, autocommit=True) as conn,
        ):
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(dep.schema))
            )
    client = redis.Redis.from_url(engines.redis_url)
    with contextlib.suppress(redis.RedisError):
        keys = list(client.scan_iter(match=f"{dep.prefix}*", count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i : i + 1000])
    client.close()


def race_ids(count: int) -> list[str]:
    """``count`` race ids in distinct partitions."""
    seen: set[int] = set()
    ids = []
    n = 0
    while len(ids) < count:
        race_id = f"scale-{n}"
        part = race_partition(race_id, PARTITIONS)
        if part not in seen:
            seen.add(part)
            ids.append(race_id)
        n += 1
    return ids


def open_races(url: str, ids: list[str]) -> None:
    headers = {"X-API-Key": ADMIN}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for race_id in ids:
            for answer in (
                client.post("/races", json={**RACE, "race_id": race_id}),
                client.post(f"/races/{race_id}/open"),
            ):
                if answer.status_code >= 300:
                    raise RuntimeError(
                        f"{answer.request.method} {answer.request.url.path}: "
                        f"{answer.status_code} {answer.text[:300]}"
                    )


def open_wallets(url: str) -> None:
    """Credit every wallet of the credits case once (opens it), 32 at a time."""

    async def run() -> None:
        limit = asyncio.Semaphore(32)
        async with httpx.AsyncClient(
            base_url=url, headers={"X-API-Key": ADMIN}, timeout=30
        ) as client:

            async def one(i: int) -> None:
                async with limit:
                    answer = await client.post(
                        f"/wallet/scale-w{i}/credit", json={"amount_cents": 100}
                    )
                    answer.raise_for_status()

            await asyncio.gather(*(one(i) for i in range(WALLETS)))

    asyncio.run(run())


def head_position(dep: Deployment, engines: Engines) -> int | None:
    """The log's last position (PostgreSQL configurations), else None."""
    if dep.schema is None:
        return None
    with psycopg.connect(engines.pg_url, autocommit=True) as conn:
        row = conn.execute(
            sql.SQL("SELECT coalesce(max(position), 0) FROM {}.events").format(
                sql.Identifier(dep.schema)
            )
        ).fetchone()
    return int(row[0]) if row else 0


def events_after(dep: Deployment, engines: Engines, position: int) -> dict[str, int]:
    """Events appended after ``position``, by type."""
    assert dep.schema is not None
    with psycopg.connect(engines.pg_url, autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT type, count(*) FROM {}.events WHERE position > %s GROUP BY type"
            ).format(sql.Identifier(dep.schema)),
            (position,),
        ).fetchall()
    return {str(t): int(c) for t, c in rows}


# --------------------------------------------------------------------------- load


_LUA_COMMON = """
local ports = {%(ports)s}
local counter = 0
local threads = {}
function setup(thread)
  local port = ports[(counter %% #ports) + 1]
  thread.addr = wrk.lookup("127.0.0.1", tostring(port))[1]
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  n = 0
  statuses = {}
  wrk.headers["Content-Type"] = "application/json"
%(headers)s
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 300 and sample == nil then sample = status .. " " .. body end
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do total[k] = (total[k] or 0) + v end
    local e = t:get("sample")
    if e then io.write("SAMPLE " .. string.gsub(e, "\\n", " ") .. "\\n") end
  end
  for k, v in pairs(total) do io.write(string.format("STATUS %%d %%d\\n", k, v)) end
end
"""

_LUA_BETS = """
local races = {%(races)s}
function request()
  n = n + 1
  local race = races[((n + tid) %% #races) + 1]
  local body = string.format('{"selection":[%%d],"stake_cents":%%d}', (n %% 12) + 1,
    200 + (n %% 10) * 100)
  return wrk.format("POST", "/races/" .. race .. "/bets", nil, body)
end
"""

_LUA_CREDITS = """
function request()
  n = n + 1
  local wallet = (n * 7 + tid * 1009) %% %(wallets)d
  return wrk.format("POST", "/wallet/scale-w" .. wallet .. "/credit", nil,
    '{"amount_cents":150}')
end
"""


def lua_script(kind: str, ports: list[int], races: list[str]) -> str:
    common = _LUA_COMMON % {
        "ports": ", ".join(str(p) for p in ports),
        "headers": f'  wrk.headers["X-API-Key"] = "{ADMIN}"' if kind == "credits" else "",
    }
    if kind == "bets":
        return common + _LUA_BETS % {"races": ", ".join(f'"{r}"' for r in races)}
    return common + _LUA_CREDITS % {"wallets": WALLETS}


def run_wrk(script: Path, url: str, seconds: float, threads: int) -> dict[str, Any]:
    """``wrk -t<threads> -c64`` with ``script``: requests/s, latency percentiles, the
    answers by status, socket errors, and wrk's own CPU seconds."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed (make bench-tools, or apt-get install wrk)")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(
        [binary, f"-t{threads}", f"-c{CONNECTIONS}", f"-d{round(seconds)}s", "--latency",
         "-s", str(script), url],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    out = done.stdout
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result: dict[str, Any] = {
        "tool": f"wrk -t{threads} -c{CONNECTIONS}",
        "seconds": seconds,
        "wall_s": round(elapsed, 2),
        "load_cpu_s": round(
            (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2
        ),
    }
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result["req_per_s"] = float(rate.group(1)) if rate else None
    for label, key in (("50%", "p50_ms"), ("90%", "p90_ms"), ("99%", "p99_ms")):
        match = re.search(rf"{re.escape(label)}\s+([\d.]+)(us|ms|s)\b", out)
        if match:
            value, unit = float(match.group(1)), match.group(2)
            result[key] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    statuses = {int(s): int(c) for s, c in re.findall(r"^STATUS (\d+) (\d+)$", out, re.M)}
    result["statuses"] = {str(k): v for k, v in sorted(statuses.items())}
    total = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    if total:
        value = float(total.group(2))
        span = {"ms": value / 1000, "s": value, "m": value * 60}[total.group(3)]
        result["requests"] = int(total.group(1))
        ok = sum(c for s, c in statuses.items() if 200 <= s < 300)
        result["ok"] = ok
        result["ok_per_s"] = round(ok / span, 1) if span else None
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True))
        if errors
        else {}
    )
    samples = re.findall(r"^SAMPLE (.*)$", out, re.M)
    if samples:
        result["error_samples"] = samples[:4]
    return result


def light_latency(urls: list[str], race_id: str, rate: float, seconds: float) -> dict[str, Any]:
    """Bets at ``rate``/s, one at a time, taking turns over ``urls`` (one keep-alive
    connection each): latency percentiles in ms."""
    conns = []
    for url in urls:
        host, port = url.removeprefix("http://").split(":")
        conns.append(http.client.HTTPConnection(host, int(port), timeout=10))
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    interval = 1 / rate
    next_at = time.perf_counter()
    stop = next_at + seconds
    i = 0
    while next_at < stop:
        pause = next_at - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        conn = conns[i % len(conns)]
        body = json.dumps({"selection": [i % 12 + 1], "stake_cents": 200}).encode()
        started = time.perf_counter()
        conn.request("POST", f"/races/{race_id}/bets", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        statuses[str(response.status)] = statuses.get(str(response.status), 0) + 1
        i += 1
        next_at += interval
    for conn in conns:
        conn.close()
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 3)

    return {
        "rate": rate,
        "seconds": seconds,
        "requests": len(latencies),
        "statuses": statuses,
        "p50_ms": round(statistics.median(latencies), 3),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1], 3),
    }


# --------------------------------------------------------------------------- one measurement


@dataclass
class Settings:
    seconds: float
    warmup: float
    light_seconds: float
    threads: int = 2


def measure(
    config: str, kind: str, engines: Engines, meter: CpuMeter, s: Settings
) -> dict[str, Any]:
    """One measurement of one configuration, on a deployment of its own."""
    workdir = Path(tempfile.mkdtemp(prefix=f"oddstream-scale-{config}-"))
    started = time.monotonic()
    dep = deploy(config, engines, workdir)
    result: dict[str, Any] = {
        "deploy_s": round(time.monotonic() - started, 2),
        "processes": [p.name for p in dep.procs],
    }
    try:
        ids = race_ids(RACES)
        open_races(dep.urls[0], ids)
        names = {p.popen.pid: p.name for p in dep.procs}
        main_type = "tote.BetPlaced" if kind in ("bets", "light") else "wallet.Credited"
        if kind == "credits":
            open_wallets(dep.urls[0])  # every wallet exists: the timed run is steady state
        if kind == "light":
            light_latency(dep.urls, ids[0], LIGHT_RATE, min(2.0, s.warmup))  # warm-up
            before = meter.sample(dep.pids)
            result["light"] = light_latency(dep.urls, ids[0], LIGHT_RATE, s.light_seconds)
            after = meter.sample(dep.pids)
            result["accepted"] = result["light"]["statuses"].get("201", 0)
        else:
            ports = [int(u.rsplit(":", 1)[1]) for u in dep.urls]
            script = workdir / f"{kind}.lua"
            script.write_text(lua_script(kind, ports, ids))
            warm = run_wrk(script, dep.urls[0], s.warmup, s.threads)
            result["warmup"] = {k: warm.get(k) for k in ("ok_per_s", "statuses")}
            time.sleep(0.5)  # the warm-up's last answers land before the clock starts
            position = head_position(dep, engines)
            before = meter.sample(dep.pids)
            run = run_wrk(script, dep.urls[0], s.seconds, s.threads)
            time.sleep(0.5)  # the answers in flight when wrk stopped, and their followers
            after = meter.sample(dep.pids)
            result["wrk"] = run
            result["accepted"] = run.get("ok", 0)
            if position is not None:
                appended = events_after(dep, engines, position)
                result["appended"] = appended
                result["accepted"] = appended.get(main_type, 0)
        result["cpu_s"] = CpuMeter.delta(before, after)
        result["cpu_s_by_process"] = {
            names[pid]: round((after.ours.get(pid, 0) - before.ours.get(pid, 0)) / CLK, 3)
            for pid in names
        }
        result["problems"] = problems_in(dep, result)
        restarted = CpuMeter.restarted(before, after)
        if restarted:
            result["engines_restarted"] = restarted
            result["problems"].append(
                f"{', '.join(restarted)} restarted during the run (by other work on the "
                "machine): its figures are not counted"
            )
    except BaseException:
        dep.stop()
        kept = Path(tempfile.gettempdir()) / f"oddstream-scale-failed-{config}-{kind}"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(workdir, kept)
        console.print(f"[red]{config} {kind}: logs kept in {kept}[/]")
        raise
    finally:
        dep.stop()
        result["exit_codes"] = {p.name: p.popen.returncode for p in dep.procs}
        result["log_errors"] = log_errors(dep)
        cleanup(dep, engines)
        shutil.rmtree(workdir, ignore_errors=True)
    if result.get("engines_restarted"):
        return result
    cpu = result["cpu_s"]
    counted = sum(cpu[k if k != "postgres" else "postgres_all"] for k in dep.uses)
    result["cpu_counted_s"] = round(counted, 3)
    result["uses"] = list(dep.uses)
    if result["accepted"]:
        result["cpu_us_per_event"] = round(counted / result["accepted"] * 1e6, 1)
        own = (
            counted - cpu["postgres_all"] + cpu["postgres_own"] if "postgres" in dep.uses else None
        )
        result["cpu_us_per_event_own_pg"] = (
            round(own / result["accepted"] * 1e6, 1) if own is not None else None
        )
    return result


def problems_in(dep: Deployment, result: dict[str, Any]) -> list[str]:
    """Anything other than a success in the answers, or a process that died."""
    problems = []
    for key in ("wrk", "light", "warmup"):
        statuses = result.get(key, {}).get("statuses", {})
        bad = {s: c for s, c in statuses.items() if not s.startswith("2")}
        if bad:
            problems.append(f"{key}: answers other than 2xx: {bad}")
    errors = result.get("wrk", {}).get("socket_errors", {})
    if any(errors.values()):
        problems.append(f"wrk socket errors: {errors}")
    for proc in dep.procs:
        if proc.popen.poll() is not None:
            problems.append(f"{proc.name} exited with {proc.popen.returncode} during the run")
    return problems


def log_errors(dep: Deployment) -> list[str]:
    """Error and warning lines in the processes' logs (the first few of each)."""
    found = []
    for proc in dep.procs:
        lines = [
            line
            for line in proc.output().splitlines()
            if ('"level": "error"' in line or '"level": "warning"' in line or "Traceback" in line)
            and '"path": "/readyz"' not in line  # 503 while starting: expected
        ]
        found += [f"{proc.name}: {line[:400]}" for line in lines[:5]]
        if len(lines) > 5:
            found.append(f"{proc.name}: … {len(lines) - 5} more")
    return found


# --------------------------------------------------------------------------- ready case


async def fill_log(pg_url: str, schema: str, events: int) -> dict[str, Any]:
    """``events`` events into a new schema, in bulk (bench/restart.py's log: races run
    to the end, open races, wallet moves), about 1,000 per transaction; an append cut
    by other work on the shared PostgreSQL is made again (same event ids: idempotent)."""
    from oddstream.eventstore import StoreUnavailable, StreamAppend
    from oddstream.eventstore.postgres import PostgresEventStore
    from restart import APPEND_EVENTS, LogPlan, LogStats, log_events

    stats = LogStats()
    plan = LogPlan(events=events, open_races=20, seed=20240611)
    store = await PostgresEventStore.open(pg_url, schema=schema)
    started = time.perf_counter()
    source = log_events(plan, stats)
    done = 0
    try:
        while done < events:
            parts: dict[str, list[Any]] = {}
            taken = 0
            for stream, event in source:
                parts.setdefault(stream, []).append(event)
                taken += 1
                if taken == APPEND_EVENTS or done + taken == events:
                    break
            if not taken:
                break
            for attempt in range(10):
                try:
                    await store.append_multi([StreamAppend(s, e) for s, e in parts.items()])
                    break
                except StoreUnavailable:
                    if attempt == 9:
                        raise
                    await asyncio.sleep(1.0)
            done += taken
    finally:
        await store.close()
    stats.events = done
    stats.seconds = time.perf_counter() - started
    return stats.as_json()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_ready_reasons(dep: Deployment, proc: Proc, timeout: float) -> list[str]:
    """Wait for /readyz 200; the reasons it gave meanwhile (numbers left out), in order."""
    seen: list[str] = []

    def ready() -> bool:
        try:
            answer = httpx.get(f"{proc.url}/readyz", timeout=2)
        except httpx.HTTPError:
            return False
        if answer.status_code == 200:
            return True
        with contextlib.suppress(ValueError, AttributeError):
            reason = re.sub(r"\d+", "N", str(answer.json().get("reason")))
            if not seen or seen[-1] != reason:
                seen.append(reason)
        return False

    dep.wait(proc, ready, "/readyz 200", timeout)
    return seen


def case_ready(engines: Engines, events: int) -> dict[str, Any]:
    """A log of ``events`` events, one worker running; a new API process started:
    seconds until it answers /healthz and until /readyz answers 200, first with no
    snapshot in the store (its tote view replays the log), then three times with the
    snapshot the one before wrote when it stopped (medians)."""
    workdir = Path(tempfile.mkdtemp(prefix="oddstream-scale-ready-"))
    tag = uuid.uuid4().hex[:10]
    schema = f"scale_{tag}_ready"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "ODDSTREAM_STORE_URL": engines.pg_url,
        "ODDSTREAM_PG_SCHEMA": schema,
        "ODDSTREAM_NATS_URL": engines.nats_url,
        "ODDSTREAM_REDIS_URL": engines.redis_url,
        "ODDSTREAM_REDIS_PREFIX": f"scale{tag}:",
        "ODDSTREAM_ADMIN_KEY": ADMIN,
        "ODDSTREAM_PARTITIONS": str(PARTITIONS),
    }
    dep = Deployment("ready", workdir, env, schema, f"scale{tag}:")
    out: dict[str, Any] = {"events": events}
    try:
        console.print(f"[dim]ready: writing {events:,} events into {schema} …[/]")
        out["log"] = asyncio.run(fill_log(engines.pg_url, schema, events))
        out["events_in_log"] = head_position(dep, engines)
        console.print(f"[dim]ready: written in {out['log']['build_seconds']} s; a worker …[/]")
        worker = dep.spawn("w0", ["worker", "--name", "w0"])
        out["worker_ready_s"] = round(
            dep.wait(worker, lambda: "w0 ready" in worker.output(), "ready", 120), 2
        )
        # the first start replays the log (no snapshot yet); each stop writes one at the
        # head, which the next starts restore
        for n, label in enumerate(("replay", "snapshot", "snapshot", "snapshot")):
            port = free_port()
            proc = dep.spawn(
                f"api-{n}-{label}", ["api", "--port", str(port)], url=f"http://127.0.0.1:{port}"
            )
            started = time.monotonic()
            dep.wait(proc, lambda proc=proc: _answers(f"{proc.url}/healthz"), "/healthz", 120)
            up = time.monotonic() - started
            reasons = _wait_ready_reasons(dep, proc, timeout=600)
            ready = time.monotonic() - started
            out.setdefault(f"{label}_waited_for", []).append(reasons)
            out.setdefault(f"{label}_ready_s_all", []).append(round(ready, 2))
            out.setdefault(f"{label}_healthz_s_all", []).append(round(up, 2))
            console.print(
                f"[dim]ready: new API ({label}) answering in {up:.2f} s, ready in {ready:.2f} s[/]"
            )
            stopped = time.monotonic()
            proc.popen.send_signal(signal.SIGTERM)  # it writes its snapshot as it stops
            proc.popen.wait(timeout=120)
            out.setdefault(f"{label}_stop_s_all", []).append(round(time.monotonic() - stopped, 2))
            proc.url = None  # stopped
        for label in ("replay", "snapshot"):
            out[f"{label}_ready_s"] = _median(out[f"{label}_ready_s_all"])
            out[f"{label}_healthz_s"] = _median(out[f"{label}_healthz_s_all"])
        out["log_errors"] = log_errors(dep)
    finally:
        dep.stop()
        cleanup(dep, engines)
        shutil.rmtree(workdir, ignore_errors=True)
    return out


# --------------------------------------------------------------------------- output


def _median(values: list[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return round(statistics.median(found), 3) if found else None


#: each figure of a configuration's line: the measurement it comes from and how
FIGURES: dict[str, tuple[str, Any]] = {
    "bets_per_s": ("bets", lambda m: m["wrk"].get("ok_per_s")),
    "credits_per_s": ("credits", lambda m: m["wrk"].get("ok_per_s")),
    "cpu_us_per_bet": ("bets", lambda m: m.get("cpu_us_per_event")),
    "p50_ms_light": ("light", lambda m: m["light"]["p50_ms"]),
    "p99_ms_light": ("light", lambda m: m["light"]["p99_ms"]),
    "cpu_us_per_bet_own_pg": ("bets", lambda m: m.get("cpu_us_per_event_own_pg")),
    "cpu_us_per_credit": ("credits", lambda m: m.get("cpu_us_per_event")),
    "bets_p50_ms": ("bets", lambda m: m["wrk"].get("p50_ms")),
    "bets_p99_ms": ("bets", lambda m: m["wrk"].get("p99_ms")),
    "credits_p99_ms": ("credits", lambda m: m["wrk"].get("p99_ms")),
    "load_generator_cpu_s_bets": ("bets", lambda m: m["wrk"].get("load_cpu_s")),
}


def _clean(m: dict[str, Any]) -> bool:
    """A run without problems, warnings in the logs or an engine restarted."""
    return not (m.get("problems") or m.get("log_errors") or m.get("engines_restarted"))


def _breakdown(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """CPU µs per bet by part (API processes, workers, the embedded server, PostgreSQL,
    NATS, Redis) in the run with the median CPU per bet."""
    runs = [m for m in runs if m.get("cpu_us_per_event") and m.get("accepted")]
    if not runs:
        return None
    runs.sort(key=lambda m: m["cpu_us_per_event"])
    run = runs[(len(runs) - 1) // 2]
    per = 1e6 / run["accepted"]
    parts: dict[str, float] = {}
    for name, seconds in run["cpu_s_by_process"].items():
        role = "api" if name.startswith("api") else "serve" if name == "serve" else "workers"
        parts[role] = parts.get(role, 0.0) + seconds
    for engine in ("postgres", "nats", "redis"):
        if engine in run["uses"]:
            parts[engine] = run["cpu_s"]["postgres_all" if engine == "postgres" else engine]
    return {
        "run_cpu_us_per_bet": run["cpu_us_per_event"],
        **{k: round(v * per, 1) for k, v in parts.items()},
    }


def summarise(measurements: dict[str, dict[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """One line per configuration: each figure the median over the repetitions, and
    every measurement."""
    lines = []
    for config, by_kind in measurements.items():
        line: dict[str, Any] = {"config": config}
        for figure, (kind, get) in FIGURES.items():
            # a run with a problem (another's work restarted or cut an engine) does not
            # count; its problems are listed
            valid = [m for m in by_kind.get(kind, []) if _clean(m)]
            line[figure] = _median([get(m) for m in valid])
            line[figure + "_all"] = [get(m) for m in valid]
        line["cpu_us_per_bet_by_part"] = _breakdown(
            [m for m in by_kind.get("bets", []) if _clean(m)]
        )
        line["runs_not_counted"] = {
            kind: sum(1 for m in runs if not _clean(m)) for kind, runs in by_kind.items()
        }
        line["measurements"] = by_kind
        lines.append(line)
    return lines


def ratio(a: float | None, b: float | None, digits: int = 2) -> float | None:
    return round(a / b, digits) if a is not None and b else None


def render(
    cases: list[dict[str, Any]], extra: list[dict[str, Any]], derived: dict[str, Any]
) -> None:
    table = Table(
        title="services mode vs embedded (one machine, load generator on the same cores; "
        "medians of the runs)"
    )
    cols = ("config", "bets/s", "credits/s", "CPU µs/bet", "(own PG)", "p50 ms light",
            "p99 ms light", "bets p99 ms", "CPU ÷ embedded")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col == "config" else "right")
    base = next((c for c in cases if c["config"] == "embedded"), None)

    def fmt(v: float | None, spec: str = ",.0f") -> str:
        return "-" if v is None else format(v, spec)

    for c in [*cases, *extra]:
        table.add_row(
            c["config"],
            fmt(c["bets_per_s"]),
            fmt(c["credits_per_s"]),
            fmt(c["cpu_us_per_bet"]),
            fmt(c["cpu_us_per_bet_own_pg"]),
            fmt(c["p50_ms_light"], ".2f"),
            fmt(c["p99_ms_light"], ".2f"),
            fmt(c["bets_p99_ms"], ".1f"),
            fmt(ratio(c["cpu_us_per_bet"], base["cpu_us_per_bet"] if base else None), ".2f"),
        )
    console.print(table)
    for key, value in derived.items():
        console.print(f"{key}: {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 s runs, 2 s warm-ups")
    parser.add_argument(
        "--only",
        default=",".join((*CONFIGS, *EXTRA_CONFIGS)),
        help="configurations (default all: " + ",".join((*CONFIGS, *EXTRA_CONFIGS)) + ")",
    )
    parser.add_argument("--measure", default=",".join(MEASURES), help="bets,credits,light")
    parser.add_argument(
        "--reps", type=int, default=1, help="runs of every measurement (figures: medians)"
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="runs of a measurement made again when one had a problem (not counted)",
    )
    parser.add_argument("--case", choices=["ready"], help="only the new-API readiness case")
    parser.add_argument("--seconds", type=float, help="timed seconds per run (default 12)")
    parser.add_argument(
        "--ready-events", type=int, default=1_000_000, help="events in the log (--case ready)"
    )
    parser.add_argument(
        "--pg-url", default=os.environ.get("ODDSTREAM_BENCH_PG_URL", DEFAULT_PG_URL)
    )
    parser.add_argument(
        "--nats-url", default=os.environ.get("ODDSTREAM_NATS_URL", "nats://127.0.0.1:4222")
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("ODDSTREAM_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    engines = Engines(args.pg_url, args.nats_url, args.redis_url)
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    load_start = list(os.getloadavg())
    begun = time.monotonic()

    if args.case == "ready":
        ready = case_ready(engines, 100_000 if args.quick else args.ready_events)
        doc = {**previous} if previous else {"cases": []}
        doc["ready"] = {**ready, "when": datetime.now(UTC).isoformat(timespec="seconds")}
        doc["new_api_ready_s"] = ready.get("snapshot_ready_s")
        doc["new_api_ready_replay_s"] = ready.get("replay_ready_s")
        doc["events_in_log"] = ready.get("events_in_log")
        write_results(args.out, doc)
        console.print(json.dumps({k: v for k, v in ready.items() if k != "log_errors"}, indent=2))
        for line in ready.get("log_errors", []):
            console.print(f"[yellow]log:[/] {line}")
        return 0

    configs = [c for c in args.only.split(",") if c]
    unknown = set(configs) - set(CONFIGS) - set(EXTRA_CONFIGS)
    kinds = [k for k in args.measure.split(",") if k]
    if unknown or set(kinds) - set(MEASURES):
        parser.error(f"unknown configuration or measurement: {unknown or kinds}")
    s = Settings(
        seconds=args.seconds or (5.0 if args.quick else 12.0),
        warmup=2.0 if args.quick else 3.0,
        light_seconds=5.0 if args.quick else 10.0,
    )
    meter = CpuMeter(engines.pg_url)
    measurements: dict[str, dict[str, list[dict[str, Any]]]] = {c: {} for c in configs}
    problems: list[str] = []
    try:
        # measurement by measurement, the configurations in turn: what is compared runs
        # close together in time
        for rep, kind, config in (
            (r, k, c) for r in range(args.reps) for k in kinds for c in configs
        ):
            for attempt in range(1 + args.retries):
                console.print(
                    f"[dim]{kind}: {config} (run {rep + 1}/{args.reps}"
                    + (f", again: {attempt + 1}" if attempt else "")
                    + ") …[/]"
                )
                try:
                    m = measure(config, kind, engines, meter, s)
                except Exception as exc:
                    problems.append(f"{config} {kind}: not run: {type(exc).__name__}: {exc}")
                    console.print(f"[red]{config} {kind} failed:[/] {exc}")
                    continue
                measurements[config].setdefault(kind, []).append(m)
                for p in m["problems"]:
                    problems.append(f"{config} {kind}: {p}")
                for line in m["log_errors"]:
                    problems.append(f"{config} {kind}: log: {line}")
                shown = m.get("wrk", m.get("light", {}))
                console.print(
                    f"  {shown.get('ok_per_s', '')} ok/s p50 {shown.get('p50_ms')} ms "
                    f"p99 {shown.get('p99_ms')} ms; CPU µs/event {m.get('cpu_us_per_event')} "
                    f"{m['cpu_s']}"
                )
                if _clean(m):
                    break
    finally:
        meter.close()

    lines = summarise(measurements)
    cases = [line for line in lines if line["config"] in CONFIGS]
    extra = [line for line in lines if line["config"] not in CONFIGS]
    by = {line["config"]: line for line in lines}
    emb = by.get("embedded", {})
    derived: dict[str, Any] = {}
    for name in ("services-1+1", "services-2+2"):
        other = by.get(name)
        if other and emb:
            p50s, p50e = other.get("p50_ms_light"), emb.get("p50_ms_light")
            derived[f"{name}: added p50 ms (target ≤ {TARGETS['added_p50_ms']})"] = (
                round(p50s - p50e, 3) if p50s is not None and p50e is not None else None
            )
            derived[f"{name}: CPU per bet ÷ embedded (target ≤ {TARGETS['cpu_ratio']})"] = ratio(
                other.get("cpu_us_per_bet"), emb.get("cpu_us_per_bet")
            )
            derived[f"{name}: CPU per bet ÷ embedded, own PostgreSQL backends only"] = ratio(
                other.get("cpu_us_per_bet_own_pg"), emb.get("cpu_us_per_bet_own_pg")
            )
            derived[f"{name}: bets/s ÷ embedded"] = ratio(
                other.get("bets_per_s"), emb.get("bets_per_s")
            )
    render(cases, extra, derived)
    for line in lines:
        console.print(f"{line['config']}: CPU µs per bet by part: {line['cpu_us_per_bet_by_part']}")
    for p in problems:
        console.print(f"[red]problem:[/red] {p}")

    doc = {
        "cases": [
            {
                k: line[k]
                for k in ("config", "bets_per_s", "credits_per_s", "cpu_us_per_bet", "p50_ms_light")
            }
            for line in cases
        ],
        "failover_s": previous.get("failover_s"),
        "new_api_ready_s": previous.get("new_api_ready_s"),
        "events_in_log": previous.get("events_in_log"),
        "derived": derived,
        "details": lines,
        "ready": previous.get("ready"),
        "new_api_ready_replay_s": previous.get("new_api_ready_replay_s"),
        "problems": problems,
        "settings": {
            "quick": args.quick,
            "seconds": s.seconds,
            "warmup_s": s.warmup,
            "light_seconds": s.light_seconds,
            "light_rate": LIGHT_RATE,
            "connections": CONNECTIONS,
            "wrk_threads": s.threads,
            "reps": args.reps,
            "retries": args.retries,
            "races": RACES,
            "wallets": WALLETS,
            "partitions": PARTITIONS,
        },
        "notes": [
            "One machine: the load generator (wrk, 2 threads) and every process share "
            f"{os.cpu_count()} cores; its CPU is reported (load_generator_cpu_s_*), not counted.",
            "embedded uses the PostgreSQL store and the Redis wallet read model, as services "
            "mode does; embedded-sqlite is the SQLite store (synchronous=FULL).",
            "cpu_us_per_bet: CPU of the oddstream processes + every postgres process (the "
            "postmaster with its reaped children) + nats-server (services only) + "
            "redis-server, over the events appended during the timed run. PostgreSQL, NATS "
            "and Redis are shared with other work on the machine; cpu_us_per_bet_own_pg "
            "counts only this deployment's PostgreSQL backends and the server's checkpointer,"
            " background writer and WAL writer.",
            *(
                [n for n in previous.get("notes", []) if n.startswith("failover_s")]
                or [
                    "failover_s is measured by the fault tests, not here (null unless "
                    "recorded in this file from them; kept across runs with its note)."
                ]
            ),
            "new_api_ready_s and events_in_log come from `--case ready` (kept from its last "
            "run; null if never run): a new API process with a snapshot in the store "
            "written by an earlier one (median of 3 starts); new_api_ready_replay_s with no "
            "snapshot (the whole log replayed).",
        ],
        "load_average": {"start": load_start, "end": list(os.getloadavg())},
        "seconds": round(time.monotonic() - begun, 1),
        "machine": machine(
            oddstream=package_version("oddstream"),
            wrk=_wrk_version(),
            postgres=_pg_version(engines.pg_url),
        ),
        "code": _git_head(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_results(args.out, doc)
    return 1 if problems else 0


def _git_head() -> str | None:
    """The commit the measured code is at (with ``-dirty`` if changed)."""
    done = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty", "--abbrev=12"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or None


def _wrk_version() -> str | None:
    binary = shutil.which("wrk")
    if binary is None:
        return None
    out = subprocess.run([binary, "-v"], capture_output=True, text=True).stdout
    return out.split("\n")[0].strip() or None


def _pg_version(url: str) -> str | None:
    with contextlib.suppress(psycopg.Error), psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else None
    return None


if __name__ == "__main__":
    sys.exit(main())
