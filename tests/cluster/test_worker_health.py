"""A worker's health port: ``/healthz`` shows what it holds, ``/readyz`` answers 200 when
NATS, the lock connection and its event loop are fine and 503 with the reason when not;
a stopped worker answers nothing (a probe's timeout is the liveness check)."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from typing import Any

import httpx

from oddstream.cluster.health import HealthServer, LoopMonitor, Watched, health_app
from oddstream.cluster.worker import Worker
from oddstream.config import Settings
from oddstream.consumers import RunnerState, RunnerStatus

from .conftest import Cluster, free_port


def _until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _get(url: str, timeout: float = 5.0) -> httpx.Response:
    return httpx.get(url, timeout=timeout)


def test_health_shows_holdings_and_a_stopped_worker_does_not_answer(cluster: Cluster) -> None:
    a = cluster.worker("wa", health=True)
    _until(lambda: _get(f"{a.url}/readyz").status_code == 200, 15, "wa not ready")
    seen = _get(f"{a.url}/healthz").json()
    assert seen["name"] == "wa"
    assert seen["nats"] == "connected"
    assert seen["lock_connection"] is True
    assert seen["partitions"] == {"count": 16, "owned": list(range(16))}
    assert set(seen["consumers"]) == {
        "process-wallet-cashier",
        "process-wallet-market-cashier",
        "wallet-read-model",
    }
    for consumer in seen["consumers"].values():
        assert consumer["state"] in ("live", "catching_up")
        assert isinstance(consumer["lag"], int)
        assert consumer["lag"] >= 0
    assert seen["commands_answered"] == 0
    assert seen["velocity_events"] == {
        tier: {"published": 0, "dropped": 0} for tier in ("high", "medium", "low")
    }
    assert seen["uptime_seconds"] > 0
    assert seen["problems"] == []

    # a second worker: the partitions and the consumers are shared out between them
    b = cluster.worker("wb", health=True)

    def split() -> tuple[dict[str, Any], dict[str, Any]] | None:
        pa, pb = _get(f"{a.url}/healthz").json(), _get(f"{b.url}/healthz").json()
        if pa["partitions"]["count"] == pb["partitions"]["count"] == 8:
            return pa, pb
        return None

    pa, pb = _until(split, 30, "the partitions were not shared out")
    assert sorted(pa["partitions"]["owned"] + pb["partitions"]["owned"]) == list(range(16))
    assert pa["workers"] == pb["workers"] == 2

    # a stopped process (as a stuck loop) keeps its locks and answers nothing: a probe
    # with a timeout fails; once it runs again, /readyz says the loop was blocked
    a.popen.send_signal(signal.SIGSTOP)
    try:
        try:
            _get(f"{a.url}/healthz", timeout=1.5)
            raise AssertionError("a stopped worker answered")
        except httpx.TimeoutException:
            pass
    finally:
        a.popen.send_signal(signal.SIGCONT)
    late = _get(f"{a.url}/readyz")
    assert late.status_code == 503
    assert "event loop was blocked" in late.json()["reason"]
    assert late.headers["retry-after"] == "1"
    _until(lambda: _get(f"{a.url}/readyz").status_code == 200, 15, "wa not ready again")


class _Store:
    async def head_position(self) -> int:
        return 120


class _FakeWorker:
    """A worker as the health endpoint sees it, in a chosen state."""

    def __init__(self, *, bus: str = "connected", locks: bool = True) -> None:
        self.name = "fake"
        self.answered = 7
        self.state = "running"
        self.store = _Store()
        self.bus = bus
        self.locks = locks

    def partitions(self) -> list[int]:
        return [3, 5]

    def consumer_statuses(self) -> list[RunnerStatus]:
        return [RunnerStatus("cashier", RunnerState.LIVE, 100, True, False, 0, 0, 0, None)]

    def bus_state(self) -> str:
        return self.bus

    def lock_connection_alive(self) -> bool:
        return self.locks

    def members(self) -> int:
        return 2

    def velocity_counts(self) -> dict[str, tuple[int, int]]:
        return {"high": (4, 1)}


async def _ask(worker: Watched, path: str) -> httpx.Response:
    monitor = LoopMonitor()
    monitor.start()
    try:
        app = health_app(worker, monitor)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://w") as client:
            return await client.get(path)
    finally:
        await monitor.stop()


async def test_readyz_is_503_with_the_reason_when_nats_or_the_locks_are_away() -> None:
    ok = await _ask(_FakeWorker(), "/readyz")
    assert ok.status_code == 200
    assert ok.json() == {"ready": True, "name": "fake"}
    away = await _ask(_FakeWorker(bus="reconnecting", locks=False), "/readyz")
    assert away.status_code == 503
    assert away.headers["retry-after"] == "1"
    reason = away.json()["reason"]
    assert "NATS reconnecting" in reason
    assert "lock connection is down" in reason
    seen = (await _ask(_FakeWorker(bus="closed"), "/healthz")).json()
    assert seen["partitions"] == {"count": 2, "owned": [3, 5]}
    assert seen["consumers"]["cashier"]["lag"] == 20
    assert seen["commands_answered"] == 7
    assert seen["velocity_events"] == {"high": {"published": 4, "dropped": 1}}
    assert seen["problems"] == ["NATS closed"]


async def test_the_loop_monitor_sees_a_blocked_loop_then_forgets_it() -> None:
    monitor = LoopMonitor(tick=0.02, limit=0.2, hold=0.5)
    monitor.start()
    try:
        await asyncio.sleep(0.1)
        assert monitor.problem() is None
        time.sleep(0.4)  # noqa: ASYNC251 - blocks the loop, as a stuck worker's code would
        # before the late tick has run: it is overdue
        problem = monitor.problem()
        assert problem is not None
        assert "blocked" in problem
        await asyncio.sleep(0.05)
        assert monitor.max_lag >= 0.3
        problem = monitor.problem()
        assert problem is not None
        assert "ago" in problem
        await asyncio.sleep(0.6)
        assert monitor.problem() is None
    finally:
        await monitor.stop()


class _BigWorker(_FakeWorker):
    """A worker whose ``/healthz`` is large (about 100 kB), so unread answers fill the
    socket's buffers quickly."""

    def partitions(self) -> list[int]:
        return list(range(20_000))


async def test_stopping_does_not_wait_for_a_client_that_reads_nothing() -> None:
    # a client that sends requests (pipelined) and never reads the answers: its
    # connection stays busy for good, and uvicorn's graceful shutdown waited for it
    # without end, so a worker given SIGTERM never exited
    port = free_port()
    server = HealthServer(_BigWorker(), Settings(), host="127.0.0.1", port=port)
    await server.start()
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(client, ("127.0.0.1", port))
        client.send(b"GET /healthz HTTP/1.1\r\nhost: w\r\n\r\n" * 200)
        await asyncio.sleep(1.0)  # the server answers until the buffers are full
        began = time.monotonic()
        async with asyncio.timeout(15):
            await server.stop()
        assert time.monotonic() - began < 8
    finally:
        client.close()
    # the port is free again: a restarted worker can have it
    again = HealthServer(_FakeWorker(), Settings(), host="127.0.0.1", port=port)
    await again.start()
    await again.stop()


async def test_a_worker_not_started_yet_answers_not_ready() -> None:
    # the health port is up before the worker connects to anything (docs/services.md)
    settings = Settings(
        store_url="postgresql://127.0.0.1:5432/test",
        nats_url="nats://127.0.0.1:4222",
        redis_url="redis://127.0.0.1:6379/0",
    )
    worker = Worker(settings, name="early")
    seen = (await _ask(worker, "/healthz")).json()
    assert seen["nats"] == "not_started"
    assert seen["lock_connection"] is False
    assert seen["partitions"] == {"count": 0, "owned": []}
    assert seen["consumers"] == {}
    assert "the worker is starting" in seen["problems"]
    ready = await _ask(worker, "/readyz")
    assert ready.status_code == 503
    assert "the worker is starting" in ready.json()["reason"]
