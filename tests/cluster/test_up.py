"""``oddstream up``: one command brings up a local services deployment, prints its URLs,
and Ctrl-C stops everything it started."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .conftest import Cluster, free_port


def free_pair() -> int:
    """A free port whose next one is free too (``up`` takes consecutive ports)."""
    for _ in range(100):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports")


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_up_serves_and_ctrl_c_stops_everything(cluster: Cluster, tmp_path: Path) -> None:
    port = free_pair()
    second = port + 1
    env = {k: v for k, v in cluster.env.items() if k != "ODDSTREAM_CUSTOMER_KEYS"}
    env.pop("ODDSTREAM_ADMIN_KEY")  # up makes the keys and prints them
    log = tmp_path / "up.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "oddstream.cli", "up", "--api", "2", "--workers", "1",
         "--port", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while "Ctrl-C stops everything" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        text = log.read_text()
        assert f"http://127.0.0.1:{port}" in text
        assert f"http://127.0.0.1:{second}" in text
        admin = re.search(r"admin key: (\S+)", text)
        assert admin is not None
        children = children_of(proc.pid)
        assert len(children) == 3  # two API processes and a worker
        for url in (f"http://127.0.0.1:{port}", f"http://127.0.0.1:{second}"):
            assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        # the worker's health port, printed with its URLs
        health = re.search(r"worker-0 health: (http://127\.0\.0\.1:\d+)/healthz", text)
        assert health is not None, text
        assert httpx.get(f"{health[1]}/readyz", timeout=5).status_code == 200
        assert httpx.get(f"{health[1]}/healthz", timeout=5).json()["name"] == "worker-0"
        # the demo runs on the first: its races show on the second too
        deadline = time.monotonic() + 30
        while not httpx.get(f"http://127.0.0.1:{second}/races", timeout=5).json()["races"]:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=40) == 0
        assert not [pid for pid in children if running(pid)]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # it stops its children on the way out
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize("bad", [["--api", "0"], ["--workers", "99"]])
def test_up_refuses_bad_counts(bad: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "oddstream.cli", "up", *bad],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "Invalid value" in out.stderr


def start_up(cluster: Cluster, tmp_path: Path) -> tuple[subprocess.Popen[bytes], list[int]]:
    """``oddstream up`` with one API process and one worker, once it serves; its
    children."""
    log = tmp_path / "up.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "oddstream.cli", "up", "--api", "1", "--workers", "1",
         "--port", str(free_port()), "--no-demo"],
        env=cluster.env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while "Ctrl-C stops everything" not in log.read_text(errors="replace"):
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    children = children_of(proc.pid)
    assert len(children) == 2
    return proc, children


def gone(pids: list[int], timeout: float) -> list[int]:
    """The processes of ``pids`` still running after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(running(pid) for pid in pids):
        time.sleep(0.1)
    return [pid for pid in pids if running(pid)]


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGKILL])
def test_up_ended_by_a_hangup_or_killed_leaves_no_process_behind(
    cluster: Cluster, tmp_path: Path, sig: signal.Signals
) -> None:
    """The terminal closed (SIGHUP) or ``up`` killed: its API processes and workers run
    in sessions of their own (so that Ctrl-C reaches ``up`` alone, which stops them in
    order), so nothing else would stop them — they would hold their ports and
    partitions with nobody to stop them."""
    proc, children = start_up(cluster, tmp_path)
    try:
        proc.send_signal(sig)
        proc.wait(timeout=40)
        left = gone(children, 30)
        assert left == [], f"still running after up ended: {left}"
    finally:
        for pid in children:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_up_stops_everything_and_fails_when_a_process_dies(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A process that dies (here the worker, SIGKILLed) stops the rest, and ``up``
    exits non-zero naming it (it exited 0, so a process manager would not restart the
    deployment)."""
    proc, children = start_up(cluster, tmp_path)
    try:
        worker = next(
            pid for pid in children if b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
        )
        os.kill(worker, signal.SIGKILL)
        assert proc.wait(timeout=60) == 1
        left = gone(children, 30)
        assert left == [], f"still running after up ended: {left}"
        text = (tmp_path / "up.log").read_text(errors="replace")
        assert "worker-0 killed by SIGKILL (exit code -9)" in text
        assert "unexpectedly" in text
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid in children:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_process_exit_reads_as_its_status() -> None:
    from oddstream.cluster.supervisor import ProcessDied, exit_status

    assert exit_status(3) == "exited with 3"
    assert exit_status(-9) == "killed by SIGKILL (exit code -9)"
    assert exit_status(-200) == "killed by signal 200 (exit code -200)"
    assert str(ProcessDied("api-1", 0)) == "api-1 exited with 0 unexpectedly: the rest were stopped"


@pytest.mark.parametrize(
    "nats_url",
    [
        "nats://oddstream:s3cret-pass@127.0.0.1:4222",
        "nats://s3cret-token@127.0.0.1:4222",  # NATS's token form: the token is the user
        "nats://a:s3cret-pass@h1:4222,nats://a:s3cret-pass@h2:4222",
    ],
)
def test_up_prints_no_nats_secret(nats_url: str) -> None:
    """``up`` prints where its engines are: never the NATS password or token."""
    from oddstream.cluster.supervisor import Deployment
    from oddstream.config import Settings, redact_url

    assert "s3cret" not in redact_url(nats_url)  # what a settings error repeats too

    deployment = Deployment(
        Settings(nats_url=nats_url, admin_key="k" * 24),
        apis=1,
        workers=1,
        port=8000,
        demo=False,
        local_store="postgresql://127.0.0.1:5432/postgres",
        local_nats="nats://127.0.0.1:4222",
        local_redis="redis://127.0.0.1:6379/0",
    )
    assert "s3cret" not in deployment.summary
    assert "h2:4222" in deployment.summary or "h1" not in nats_url


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"ODDSTREAM_STORE_URL": "sqlite:///{tmp}/events.db"}, "PostgreSQL"),
        ({"ODDSTREAM_NATS_URL": None}, "ODDSTREAM_NATS_URL"),
        ({"ODDSTREAM_REDIS_URL": None}, "ODDSTREAM_REDIS_URL"),
    ],
)
def test_an_api_process_refuses_settings_it_cannot_serve_with(
    cluster: Cluster, tmp_path: Path, change: dict[str, str | None], named: str
) -> None:
    """An API process of services mode reads the workers' log: with an SQLite store it
    would serve boards and reads of a log of its own (empty) while its commands went to
    the workers' — it started, and served that. Refused, like a missing NATS or Redis,
    at once with the setting named (not a traceback from the app's startup)."""
    env = dict(cluster.env)
    for key, value in change.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value.format(tmp=tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "oddstream.cli", "api", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0, out.stdout[-2000:]
    assert named in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr


@pytest.mark.parametrize("signalled_first", [True, False])
async def test_up_stopped_as_a_process_exits_is_a_requested_stop(
    monkeypatch: pytest.MonkeyPatch, signalled_first: bool
) -> None:
    """A stop asked for (a signal to ``up``) and a process exiting at the same moment (a
    process manager signals every process of the deployment at once, systemd's
    KillMode=control-group) is the stop that was asked for, not a process dying by
    itself: ``up`` returns (exit 0), whichever the event loop saw first."""
    import asyncio

    from oddstream.cluster.supervisor import Deployment, _Process
    from oddstream.config import Settings

    deployment = Deployment(
        Settings(),
        apis=1,
        workers=1,
        port=free_pair(),
        demo=False,
        local_store="postgresql://127.0.0.1/none",
        local_nats="nats://127.0.0.1:1",
        local_redis="redis://127.0.0.1:1",
    )
    loop = asyncio.get_running_loop()

    async def spawn(process: _Process) -> None:
        process.done = loop.create_future()

    async def ready(stop: asyncio.Event) -> None:
        worker = deployment.workers[0].done
        assert worker is not None
        # both land before run() looks: the signal's handler and the worker's exit
        if signalled_first:
            loop.call_soon(stop.set)
            loop.call_soon(worker.set_result, -signal.SIGTERM)
        else:
            loop.call_soon(worker.set_result, -signal.SIGTERM)
            loop.call_soon(stop.set)

    monkeypatch.setattr(deployment, "_spawn", spawn)
    monkeypatch.setattr(deployment, "_ready", ready)
    said: list[str] = []
    async with asyncio.timeout(10):
        await deployment.run(said.append)
    assert not any("unexpectedly" in line or "killed by" in line for line in said), said


def test_up_gives_workers_health_urls_on_an_ipv6_host() -> None:
    """A worker's health URL on an IPv6 address has it in brackets (and its port was
    picked on that address, not on an IPv4 one)."""
    from oddstream.cluster.supervisor import Deployment
    from oddstream.config import Settings

    deployment = Deployment(
        Settings(worker_health_host="::1", admin_key="k" * 24),
        apis=1,
        workers=2,
        port=8000,
        demo=False,
        local_store="postgresql://127.0.0.1:5432/postgres",
        local_nats="nats://127.0.0.1:4222",
        local_redis="redis://127.0.0.1:6379/0",
    )
    for worker in deployment.workers:
        assert worker.url is not None
        assert re.fullmatch(r"http://\[::1\]:\d+", worker.url), worker.url
        assert httpx.URL(worker.url).host == "::1"


def test_up_refuses_a_worker_health_host_it_cannot_listen_on() -> None:
    """A health host that does not resolve ends ``up`` with the error, before it starts
    anything (it was a traceback)."""
    env = {**os.environ, "ODDSTREAM_WORKER_HEALTH_HOST": "no-such-host.invalid"}
    out = subprocess.run(
        [sys.executable, "-m", "oddstream.cli", "up", "--api", "1", "--workers", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert "no-such-host.invalid" in out.stdout
