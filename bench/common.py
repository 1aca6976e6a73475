"""What the benchmarks share: the machine they ran on and how results are written."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


def package_version(name: str) -> str | None:
    """The installed version of ``name``, or None."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def machine(**extra: Any) -> dict[str, Any]:
    """Cores, Python and platform, plus any ``extra`` facts (versions of the peers…)."""
    return {
        "nproc": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        **extra,
    }


def write_results(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` as JSON, atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)


ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    workdir: Path, env: dict[str, str], *, demo: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    """``oddstream serve`` (``--demo`` too if asked) on a free port with ``env`` added
    (its store and logs in ``workdir``); returns the process and its URL once /healthz
    answers."""
    import httpx

    port = free_port()
    full_env = {
        **os.environ,
        "ODDSTREAM_STORE_URL": f"sqlite:///{workdir}/bench.db",
        "ODDSTREAM_PORT": str(port),
        **env,
    }
    log = (workdir / "server.log").open("ab")
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "oddstream"), "serve", *(["--demo"] if demo else [])],
        env=full_env,
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the server did not start; see {workdir / 'server.log'}")


def start_services(
    workdir: Path, env: dict[str, str], *, apis: int, workers: int
) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    """A services deployment (``oddstream worker`` × ``workers``, then ``oddstream api``
    × ``apis`` on free ports) with ``env`` added — its store, NATS and Redis settings;
    returns the processes (workers first) and the API processes' URLs once each answers
    /readyz."""
    import httpx

    binary = str(ROOT / ".venv" / "bin" / "oddstream")
    full_env = {**os.environ, **env}
    procs: list[subprocess.Popen[bytes]] = []
    log = (workdir / "services.log").open("ab")
    for i in range(workers):
        procs.append(
            subprocess.Popen(
                [binary, "worker", "--name", f"w{i}"], env=full_env, stdout=log, stderr=log
            )
        )
    urls = []
    for _ in range(apis):
        port = free_port()
        procs.append(
            subprocess.Popen(
                [binary, "api", "--port", str(port)], env=full_env, stdout=log, stderr=log
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    for url in urls:
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                for proc in procs:
                    proc.kill()
                raise RuntimeError(f"services did not start; see {workdir / 'services.log'}")
            time.sleep(0.1)
    return procs, urls


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server started by :func:`start_server` (SIGINT, then SIGKILL after 20 s)."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def run_wrk(script: Path, url: str, seconds: float) -> dict[str, Any]:
    """``wrk -t1 -c64`` with a Lua request script against ``url``: req/s, p50, p99 (ms)
    and non-2xx count parsed from its output (which is kept as ``raw``)."""
    binary = shutil.which("wrk")
    if binary is None:
        return {"error": "wrk is not installed (make bench-tools, or apt-get install wrk)"}
    out = subprocess.run(
        [binary, "-t1", "-c64", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, Any] = {"tool": "wrk -t1 -c64", "seconds": seconds, "raw": out}
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result["req_per_s"] = float(rate.group(1)) if rate else None
    for label, key in (("50%", "p50_ms"), ("99%", "p99_ms")):
        match = re.search(rf"{re.escape(label)}\s+([\d.]+)(us|ms|s)", out)
        if match:
            value, unit = float(match.group(1)), match.group(2)
            result[key] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    done = re.search(r"(\d+) requests in", out)
    result["requests"] = int(done.group(1)) if done else None
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(errors.group(1)) if errors else 0
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used so far, from
    ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def checkout(src: Path) -> str:
    """The commit of the git checkout holding ``src`` (``+dirty`` if its tracked files
    differ from it), or ``"unknown"``."""
    try:
        head = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")
