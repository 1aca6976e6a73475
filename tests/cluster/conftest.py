"""Services mode under test: real worker and API processes on the local PostgreSQL,
NATS and Redis, each deployment in a schema, a Redis prefix and NATS subjects of its own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis

from conftest import need_service
from oddstream.domain.fixedodds import CreateMarket, MarketLimits, MoneyLine, Odds
from oddstream.domain.tote.events import PoolConfig, Runner
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.race import ScheduleRace
from oddstream.eventstore.postgres import PostgresEventStore
from oddstream.runtime.market_writer import MarketRequest

NATS_URL = os.environ.get("ODDSTREAM_TEST_NATS_URL", "nats://127.0.0.1:4222")
ADMIN_KEY = "cluster-admin-key-0123456789"
CUSTOMER_KEYS = {"alice": "alice-key-0123456789", "bob": "bob-key-9f3Kq7Zr2LxW"}
ADMIN = {"X-API-Key": ADMIN_KEY}


def customer(wallet: str) -> dict[str, str]:
    return {"X-API-Key": CUSTOMER_KEYS[wallet]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def nats_url() -> str:
    host, _, port = NATS_URL.removeprefix("nats://").partition(":")
    try:
        with socket.create_connection((host, int(port or 4222)), timeout=3) as sock:
            if not sock.recv(1024).startswith(b"INFO"):
                need_service("NATS", "no INFO greeting")
    except OSError as exc:
        need_service("NATS", str(exc))
    return NATS_URL


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Cluster:
    """Start and stop the processes of one deployment."""

    env: dict[str, str]
    tmp: Path
    redis_prefix: str
    procs: list[Proc] = field(default_factory=list)

    def _spawn(self, name: str, args: list[str]) -> Proc:
        log = self.tmp / f"{name}.log"
        popen = subprocess.Popen(
            [sys.executable, "-m", "oddstream.cli", *args],
            env=self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def worker(self, name: str, *, wait: bool = True, health: bool = False) -> Proc:
        """A worker process; ``health``: with a health port (its URL in ``url``)."""
        args = ["worker", "--name", name]
        port = 0
        if health:
            port = free_port()
            args += ["--health-port", str(port)]
        proc = self._spawn(name, args)
        if port:
            proc.url = f"http://127.0.0.1:{port}"
        if wait:
            self._await(proc, lambda: f"{name} ready" in proc.output())
        return proc

    def api(self, *, wait: bool = True) -> Proc:
        port = free_port()
        proc = self._spawn(f"api-{port}", ["api", "--port", str(port)])
        proc.url = f"http://127.0.0.1:{port}"
        if wait:
            self.wait_ready(proc)
        return proc

    def wait_ready(self, proc: Proc, timeout: float = 60.0) -> float:
        """Seconds until ``proc`` answered /readyz 200."""
        start = time.monotonic()

        def ready() -> bool:
            try:
                return httpx.get(f"{proc.url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        self._await(proc, ready, timeout)
        return time.monotonic() - start

    def _await(self, proc: Proc, done, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not done():
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{proc.name} not ready:\n{proc.output()[-3000:]}")
            time.sleep(0.05)

    def kill(self, proc: Proc, sig: int = signal.SIGKILL) -> None:
        proc.popen.send_signal(sig)
        proc.popen.wait(timeout=30)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.alive():
                proc.popen.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()


@pytest.fixture
def cluster(
    pg_url: str, pg_schema: str, redis_url: str, nats_url: str, tmp_path: Path
) -> Iterator[Cluster]:
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    env = {
        **os.environ,
        "ODDSTREAM_STORE_URL": pg_url,
        "ODDSTREAM_PG_SCHEMA": pg_schema,
        "ODDSTREAM_NATS_URL": nats_url,
        "ODDSTREAM_REDIS_URL": redis_url,
        "ODDSTREAM_REDIS_PREFIX": prefix,
        "ODDSTREAM_PARTITIONS": "16",
        "ODDSTREAM_REBALANCE_SECONDS": "0.2",
        "ODDSTREAM_COMMAND_DEADLINE_SECONDS": "6",
        "ODDSTREAM_ADMIN_KEY": ADMIN_KEY,
        "ODDSTREAM_CUSTOMER_KEYS": ",".join(f"{k}={w}" for w, k in CUSTOMER_KEYS.items()),
        "ODDSTREAM_PUSH_COALESCE_MS": "20",
        "ODDSTREAM_READ_WAIT_SECONDS": "5",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
    }
    env.pop("ODDSTREAM_KAFKA_COMPAT", None)
    deployment = Cluster(env, tmp_path, prefix)
    try:
        yield deployment
    finally:
        deployment.stop()
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
async def stores(pg_url: str, pg_schema: str):  # type: ignore[no-untyped-def]
    """Two processes' stores on one database: the old owner's and the new owner's."""
    old = await PostgresEventStore.open(pg_url, schema=pg_schema)
    new = await PostgresEventStore.open(pg_url, schema=pg_schema)
    try:
        yield old, new
    finally:
        await old.close()
        await new.close()


def new_market_m1() -> MarketRequest:
    """Market ``m1`` of provider ``acme`` (home 2, away 1.8), as a ``NewOdds`` request."""
    line = MoneyLine(home=Odds.from_decimal("2"), away=Odds.from_decimal("1.8"))
    limits = MarketLimits(max_stake_cents=10_000, max_liability_cents=1_000_000)
    create = CreateMarket(
        market_id="m1", game_id="g1", provider="acme", money_line=line, limits=limits
    )
    return MarketRequest(action="NewOdds", command=create)


def race_r1() -> ScheduleRace:
    """Race ``r1``: two runners, a WIN pool at 15% takeout."""
    return ScheduleRace(
        race_id="r1",
        meeting="M",
        venue="V",
        post_time="2026-11-29T15:00:00Z",
        runners=(Runner(1, "One"), Runner(2, "Two")),
        pools=(PoolConfig(pool=PoolType.WIN, takeout_bps=1500),),
    )
