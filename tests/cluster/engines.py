"""Stopping and starting the machine's engines for fault tests, each bounded in time,
with the commands that started them (the machine's notes); a test that stops one starts
it again in a ``finally``."""

from __future__ import annotations

import os
import socket
import subprocess
import time

NATS_START = [
    "start-stop-daemon", "--start", "--oknodo", "--background",
    "--exec", "/usr/sbin/nats-server", "--",
    "-a", "127.0.0.1", "-p", "4222", "-js", "-sd", "/var/lib/nats-server",
    "-l", "/var/log/nats-server.log",
]  # fmt: skip
NATS_STOP = [
    "start-stop-daemon", "--stop", "--oknodo", "--retry", "TERM/10/KILL/5",
    "--exec", "/usr/sbin/nats-server",
]  # fmt: skip


def _cluster() -> str:
    return sorted(os.listdir("/etc/postgresql"))[-1]


def _wait_port(port: int, up: bool, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} still {'down' if up else 'up'} after {timeout} s")


def stop_nats() -> None:
    subprocess.run(NATS_STOP, check=True, timeout=30)
    _wait_port(4222, up=False, timeout=15)


def start_nats() -> None:
    subprocess.run(NATS_START, check=True, timeout=30)
    _wait_port(4222, up=True, timeout=30)


def stop_postgres() -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", _cluster(), "main", "stop", "-m", "fast"],
        check=True,
        timeout=60,
    )


def start_postgres() -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", _cluster(), "main", "start"],
        check=False,  # "already running" is fine
        timeout=60,
    )
    _wait_port(5432, up=True, timeout=60)
