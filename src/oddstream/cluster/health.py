"""A worker's own health endpoint: ``GET /healthz`` and ``GET /readyz``.

Served (``oddstream worker --health-port P``, ``ODDSTREAM_WORKER_HEALTH_PORT``) by uvicorn
in the worker's own event loop, as the API's side servers are. That is the liveness
check: a worker whose loop is stuck (a blocking call, the process stopped) answers
nothing, so a probe with a timeout (say 2 s) fails and its process manager restarts it —
the one fault that keeps its locks (PostgreSQL still sees its connection). No thread
answers for a dead loop.

Readiness also needs the loop to have been responsive *recently*: a loop that blocks for
seconds at a time still answers in between. :class:`LoopMonitor` wakes every
:data:`TICK_SECONDS` and notes how late it woke; a lateness over
:data:`LOOP_LAG_LIMIT` makes ``/readyz`` answer 503 for :data:`LOOP_LAG_HOLD` seconds
after it (and at once while a tick is overdue by that much).

``/readyz`` answers 200 when NATS is connected, the lock connection is alive and the
loop responsive; otherwise 503 with ``Retry-After: 1`` and the reasons. ``/healthz``
answers 200 with what the worker holds (see :func:`report`) whenever it answers at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any, Protocol

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..api.server import server_config
from ..config import Settings
from ..consumers import RunnerStatus
from ..eventstore import EventStore

log = logging.getLogger(__name__)

#: how often the loop monitor wakes
TICK_SECONDS = 0.25
#: a wake-up later than this means the loop was blocked (not responsive)
LOOP_LAG_LIMIT = 1.0
#: how long after such a block ``/readyz`` still answers 503
LOOP_LAG_HOLD = 5.0
#: the longest ``/healthz`` waits for the store's head position (for the consumers' lag)
_HEAD_SECONDS = 2.0
#: the longest stopping waits for requests in progress (more than :data:`_HEAD_SECONDS`,
#: so a ``/healthz`` reading the head still gets its answer); then their connections are
#: cut
_STOP_SECONDS = 3.0


class HealthPortError(OSError):
    """The health port cannot be listened on (in use, a bad address)."""


class LoopMonitor:
    """Measures how late the event loop runs a task that sleeps :data:`TICK_SECONDS`."""

    def __init__(
        self,
        *,
        tick: float = TICK_SECONDS,
        limit: float = LOOP_LAG_LIMIT,
        hold: float = LOOP_LAG_HOLD,
    ) -> None:
        self.tick = tick
        self.limit = limit
        self.hold = hold
        #: the lateness of the last wake-up, in seconds
        self.lag = 0.0
        #: the largest lateness seen since start
        self.max_lag = 0.0
        self._due = 0.0
        self._blocked_at = float("-inf")
        self._blocked_for = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._due = time.monotonic() + self.tick
        self._task = asyncio.create_task(self._run(), name="loop-monitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(max(0.0, self._due - time.monotonic()))
            now = time.monotonic()
            self._note(now - self._due, now)
            self._due = now + self.tick

    def _note(self, lag: float, now: float) -> None:
        self.lag = max(0.0, lag)
        self.max_lag = max(self.max_lag, self.lag)
        if self.lag > self.limit:
            self._blocked_at = now
            self._blocked_for = self.lag

    def problem(self) -> str | None:
        """Why the loop does not count as responsive now, or ``None``."""
        now = time.monotonic()
        if self._task is None:
            return "the event loop monitor is not running"
        # a tick still overdue: the loop has not run it yet (checked here because a
        # request may be handled before the late tick in the same turn of the loop)
        overdue = now - self._due
        if overdue > self.limit:
            return f"the event loop was blocked for {overdue:.1f} s"
        if now - self._blocked_at < self.hold:
            ago = now - self._blocked_at
            return f"the event loop was blocked for {self._blocked_for:.1f} s ({ago:.1f} s ago)"
        return None


class Watched(Protocol):
    """What the health endpoint reads of a worker (:class:`~.worker.Worker`; tests give
    a stand-in)."""

    name: str
    answered: int
    state: str
    store: EventStore

    def partitions(self) -> list[int]: ...
    def consumer_statuses(self) -> list[RunnerStatus]: ...
    def bus_state(self) -> str: ...
    def lock_connection_alive(self) -> bool: ...
    def members(self) -> int: ...
    def velocity_counts(self) -> dict[str, tuple[int, int]]: ...


async def report(worker: Watched, monitor: LoopMonitor, started: float) -> dict[str, Any]:
    """What ``/healthz`` shows: the worker's ``name``; ``nats`` (``connected``,
    ``reconnecting``, ``closed``, or ``not_started``); ``lock_connection`` (alive or
    not) and ``workers`` (the members its last look counted); ``partitions`` (the
    count and the sorted list of those it serves); ``consumers`` (each run-once
    consumer it runs, with its runner's state, position and lag behind the log's head);
    ``commands_answered``; ``velocity_events`` (per tier, the market events it
    published on the velocity bus and those it dropped); ``uptime_seconds``;
    ``loop_lag_seconds`` (the last and the largest); ``problems`` (what keeps
    ``/readyz`` from 200, empty when ready)."""
    partitions = worker.partitions()
    consumers = worker.consumer_statuses()
    head: int | None = None
    head_error: str | None = None
    if consumers:
        try:
            async with asyncio.timeout(_HEAD_SECONDS):
                head = await worker.store.head_position()
        except Exception as exc:  # the store away: the rest is still worth showing
            head_error = str(exc) or type(exc).__name__
    answer: dict[str, Any] = {
        "name": worker.name,
        "nats": worker.bus_state(),
        "lock_connection": worker.lock_connection_alive(),
        "workers": worker.members(),
        "partitions": {"count": len(partitions), "owned": partitions},
        "consumers": {
            status.name: {
                "state": status.state.value,
                "position": status.position,
                "lag": None if head is None else head - status.position,
                "caught_up": status.caught_up,
                "rebuilding": status.rebuilding,
                "failures": status.failures,
                "last_error": status.last_error,
            }
            for status in consumers
        },
        "commands_answered": worker.answered,
        "velocity_events": {
            tier: {"published": published, "dropped": dropped}
            for tier, (published, dropped) in worker.velocity_counts().items()
        },
        "uptime_seconds": round(time.monotonic() - started, 3),
        "loop_lag_seconds": {"last": round(monitor.lag, 4), "max": round(monitor.max_lag, 4)},
    }
    if head_error is not None:
        answer["store_error"] = head_error
    answer["problems"] = problems(answer, monitor.problem(), state=worker.state)
    return answer


def problems(seen: dict[str, Any], loop_problem: str | None, *, state: str) -> list[str]:
    """Why a worker is not ready, from what :func:`report` saw (empty: ready). ``state``
    is the worker's lifecycle: ``starting``, ``running`` or ``stopping``."""
    found = []
    if state != "running":
        found.append(f"the worker is {state}")
    if seen["nats"] != "connected":
        found.append(f"NATS {seen['nats']}")
    if not seen["lock_connection"]:
        found.append("the lock connection is down (this worker owns nothing)")
    if loop_problem is not None:
        found.append(loop_problem)
    return found


def health_app(worker: Watched, monitor: LoopMonitor) -> Starlette:
    """The ASGI app of a worker's health port."""
    started = time.monotonic()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse(await report(worker, monitor, started))

    async def readyz(request: Request) -> JSONResponse:
        seen = {
            "nats": worker.bus_state(),
            "lock_connection": worker.lock_connection_alive(),
        }
        reasons = problems(seen, monitor.problem(), state=worker.state)
        if reasons:
            return JSONResponse(
                {"ready": False, "name": worker.name, "reason": "; ".join(reasons)},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        return JSONResponse({"ready": True, "name": worker.name})

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ]
    )


class _InLoopServer(uvicorn.Server):
    """A server run in the worker's loop: the worker owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (:class:`HealthPortError` if it cannot be)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise HealthPortError(f"cannot listen on {host}:{port}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise HealthPortError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


class HealthServer:
    """Serves :func:`health_app` on ``host:port`` from the running loop."""

    def __init__(self, worker: Watched, settings: Settings, *, host: str, port: int) -> None:
        self.monitor = LoopMonitor()
        self.host = host
        self.port = port
        config = server_config(
            health_app(worker, self.monitor),
            settings,
            host=host,
            port=port,
            lifespan="off",
            # uvicorn's graceful shutdown otherwise waits without end for a connection
            # whose answer cannot be written (a client that sends and never reads)
            timeout_graceful_shutdown=_STOP_SECONDS,
        )
        self._server = _InLoopServer(config)
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    async def start(self) -> None:
        """Bind the port (:class:`HealthPortError` if it cannot) and serve in the
        background."""
        self._socket = _bind(self.host, self.port)
        self.monitor.start()
        self._task = asyncio.create_task(
            self._server.serve(sockets=[self._socket]), name="worker-health"
        )
        while not self._server.started:
            if self._task.done():
                self._task.result()  # its error
                raise RuntimeError("the health server stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop serving and release the port, within about :data:`_STOP_SECONDS`: a
        connection still busy then (its client reads nothing) is cut."""
        self._server.should_exit = True
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(Exception):
                await task
        # uvicorn gave up on them, but left them open
        for connection in list(self._server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()
        if self._socket is not None:
            self._socket.close()
        await self.monitor.stop()
