"""``oddstream up``: a local services deployment of API and worker processes.

Each process is ``python -m oddstream.cli`` ``worker`` or ``api`` with the same
environment: the store (PostgreSQL), NATS and Redis of the environment, else the local
ones; the same keys (made here unless configured, and printed). The first API process
runs the demo when asked. Ctrl-C (or SIGTERM, or SIGHUP) stops the API processes, then
the workers, each given time to finish, then killed, and ``up`` exits 0. A process that
exits by itself (a crash, killed) stops the rest the same way and ``up`` exits non-zero,
naming it and its exit status, so that a process manager restarts the deployment. If
``up`` itself is killed, each process stops by itself (:func:`follow_supervisor`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..config import Settings, redact_url
from ..demo import DEMO_WALLETS
from ..eventstore.factory import is_postgres_url

#: how long a process has to stop on SIGTERM before it is killed
STOP_SECONDS = 15.0
#: how long the processes have to answer /readyz after they start
READY_SECONDS = 90.0
#: tells a process started by ``oddstream up`` the supervisor's pid (see
#: :func:`follow_supervisor`)
SUPERVISOR_PID = "ODDSTREAM_SUPERVISOR_PID"
#: prctl(2)'s option asking for a signal when the parent ends (Linux)
_PR_SET_PDEATHSIG = 1


def follow_supervisor() -> None:
    """In a process ``oddstream up`` started: stop (SIGTERM to itself, as Ctrl-C's stop
    would send) when ``up`` ends without stopping it — killed, or a crash. Its processes
    run in sessions of their own, so nothing else would: they would keep their ports
    and partitions. Linux asks the kernel (``PR_SET_PDEATHSIG``); elsewhere a thread
    looks at the parent every second. Nothing outside ``oddstream up``."""
    expected = os.environ.get(SUPERVISOR_PID)
    if not expected or not expected.isdigit():
        return
    parent = int(expected)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
            if os.getppid() != parent:  # ended before the request took effect
                os.kill(os.getpid(), signal.SIGTERM)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="follow-supervisor", daemon=True).start()


def free_port(host: str) -> int:
    """A port free on ``host`` now (the system's pick; another process may take it
    before the one it is meant for binds it, which then fails to start). ``host`` is
    resolved as the process meant for it resolves it (an IPv6 address too);
    :class:`OSError` if it cannot be listened on."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as sock:
            sock.bind(address)
            return int(sock.getsockname()[1])
    except OSError as exc:
        raise OSError(f"cannot listen on {host}: {exc}") from None


def http_url(host: str, port: int) -> str:
    """``http://host:port``, an IPv6 address in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def exit_status(code: int) -> str:
    """A child's exit as a person reads it: ``exited with 3``, ``killed by SIGKILL``."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name} (exit code {code})"
        return f"killed by signal {-code} (exit code {code})"
    return f"exited with {code}"


class ProcessDied(RuntimeError):
    """A process of the deployment exited by itself (not stopped by ``up``)."""

    def __init__(self, name: str, code: int) -> None:
        self.name = name
        self.code = code
        super().__init__(f"{name} {exit_status(code)} unexpectedly: the rest were stopped")


@dataclass
class _Process:
    name: str
    argv: list[str]
    proc: asyncio.subprocess.Process | None = None
    url: str | None = None
    done: asyncio.Future[Any] | None = field(default=None, repr=False)


class Deployment:
    """The processes of one local services deployment (see the module's docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        apis: int,
        workers: int,
        port: int,
        demo: bool,
        local_store: str,
        local_nats: str,
        local_redis: str,
    ) -> None:
        self.env = dict(os.environ)
        self.env[SUPERVISOR_PID] = str(os.getpid())
        store = settings.store_url if is_postgres_url(settings.store_url) else local_store
        self.env["ODDSTREAM_STORE_URL"] = store
        self.env["ODDSTREAM_NATS_URL"] = settings.nats_url or local_nats
        self.env["ODDSTREAM_REDIS_URL"] = settings.redis_url or local_redis
        self.keys: list[str] = []
        if not settings.admin_key:
            admin = secrets.token_urlsafe(18)
            self.env["ODDSTREAM_ADMIN_KEY"] = admin
            self.keys.append(f"admin key: {admin}")
        if demo and not settings.customer_keys:
            pairs = [(secrets.token_urlsafe(18), wallet) for wallet in DEMO_WALLETS]
            self.env["ODDSTREAM_CUSTOMER_KEYS"] = ",".join(f"{k}={w}" for k, w in pairs)
            self.keys += [f"customer key for wallet {w}: {k}" for k, w in pairs]
        python = [sys.executable, "-m", "oddstream.cli"]
        # each worker's /healthz and /readyz on a free port of its own
        health_host = settings.worker_health_host
        self.workers = []
        for i in range(workers):
            health = free_port(health_host)
            argv = [*python, "worker", "--name", f"worker-{i}", "--health-port", str(health)]
            self.workers.append(_Process(f"worker-{i}", argv, url=http_url(health_host, health)))
        self.apis = []
        for i in range(apis):
            argv = [*python, "api", "--port", str(port + i)]
            if demo and i == 0:
                argv.append("--demo")
            self.apis.append(_Process(f"api-{i}", argv, url=http_url(settings.host, port + i)))
        self.summary = (
            f"store {redact_url(store)}, NATS {redact_url(self.env['ODDSTREAM_NATS_URL'])}, "
            f"Redis {redact_url(self.env['ODDSTREAM_REDIS_URL'])}"
        )

    async def run(self, say: Callable[[str], object]) -> None:
        """Start everything, say where it is, and wait for Ctrl-C (returns once all is
        stopped). A process that exits by itself stops the rest, then raises
        :class:`ProcessDied` (``up`` then exits non-zero, for a process manager to
        restart the deployment); one that exits while starting raises RuntimeError."""
        counts = f"{len(self.apis)} API + {len(self.workers)} workers"
        say(f"oddstream services: {counts} on {self.summary}")
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        # SIGHUP: the terminal closed; the processes, in sessions of their own, would
        # not get it
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)
        try:
            for process in self.workers + self.apis:
                await self._spawn(process)
            await self._ready(stop)
            if stop.is_set():
                return
            for line in self.keys:
                say(line)
            for process in self.apis:
                say(f"{process.name}: {process.url}  (board: {process.url}/)")
            for process in self.workers:
                say(f"{process.name} health: {process.url}/healthz  {process.url}/readyz")
            say("Ctrl-C stops everything")
            watched: list[asyncio.Future[Any]] = [
                p.done for p in self.workers + self.apis if p.done is not None
            ]
            waiter = asyncio.ensure_future(stop.wait())
            watched.append(waiter)
            finished, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if stop.is_set():
                # a stop asked for, though a process exited meanwhile: a process manager
                # signals every process of the deployment at once (systemd's
                # KillMode=control-group), and the loop may see an exit with the signal
                return
            died = [
                (process.name, process.done.result())
                for process in self.workers + self.apis
                if process.done is not None and process.done in finished
            ]
            for name, code in died:
                say(f"{name} {exit_status(code)}: stopping the rest")
            if died:
                raise ProcessDied(*died[0])
        finally:
            say("stopping…")
            await self._stop(self.apis)
            await self._stop(self.workers)

    async def _spawn(self, process: _Process) -> None:
        process.proc = await asyncio.create_subprocess_exec(
            *process.argv, env=self.env, start_new_session=True
        )
        process.done = asyncio.ensure_future(process.proc.wait())

    async def _ready(self, stop: asyncio.Event) -> None:
        """Wait until every worker and API process answers /readyz (a process that
        exits first fails the start)."""
        deadline = asyncio.get_running_loop().time() + READY_SECONDS
        async with httpx.AsyncClient(timeout=2.0) as client:
            for process in self.workers + self.apis:
                while not stop.is_set():
                    for other in self.workers + self.apis:
                        if other.done is not None and other.done.done():
                            status = exit_status(other.done.result())
                            raise RuntimeError(f"{other.name} {status} while starting")
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"{process.url}/readyz")).status_code == 200:
                            break
                    if asyncio.get_running_loop().time() > deadline:
                        raise RuntimeError(f"{process.name} was not ready in {READY_SECONDS:.0f} s")
                    await asyncio.sleep(0.25)

    async def _stop(self, processes: list[_Process]) -> None:
        running = [p for p in processes if p.proc is not None and p.proc.returncode is None]
        for process in running:
            assert process.proc is not None
            with contextlib.suppress(ProcessLookupError):
                process.proc.send_signal(signal.SIGTERM)
        for process in running:
            assert process.proc is not None
            try:
                async with asyncio.timeout(STOP_SECONDS):
                    await process.proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.proc.kill()
                await process.proc.wait()
