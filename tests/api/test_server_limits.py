"""The server as ``oddstream serve`` runs it (``api/server.py``), on a loopback port with
raw sockets: requests that do not arrive in time are answered 408 and closed, past the
connection cap requests are answered 503, and neither touches normal requests or live
streams."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from oddstream.api.app import create_app, serve_app
from oddstream.api.server import server_config

from .conftest import ADMIN_KEY, free_port, live_settings

TIMEOUT = 1.0
CAP = 40


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = live_settings(
        tmp_path_factory.mktemp("limits"),
        request_read_timeout_seconds=TIMEOUT,
        max_connections=CAP,
    )
    port = free_port()
    app = serve_app(create_app(settings), settings)
    server = uvicorn.Server(
        server_config(app, settings, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def _read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed (monotonic)."""
    sock.settimeout(limit)
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data, time.monotonic()
        data += chunk


def test_a_client_dribbling_its_headers_is_answered_408_and_closed(url: str) -> None:
    socks = [_connect(url) for _ in range(20)]
    started = time.monotonic()
    stop = threading.Event()

    def dribble() -> None:
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
        for i in range(len(request)):
            for sock in socks:
                with contextlib.suppress(OSError):  # closed by the server already
                    sock.send(request[i : i + 1])
            if stop.wait(0.05):
                return

    sender = threading.Thread(target=dribble, daemon=True)
    sender.start()
    try:
        for sock in socks:
            data, closed = _read_until_closed(sock, TIMEOUT + 5)
            assert data.startswith(b"HTTP/1.1 408 "), data
            assert closed - started < TIMEOUT + 2
    finally:
        stop.set()
        sender.join()
        for sock in socks:
            sock.close()


def test_a_silent_connection_is_closed(url: str) -> None:
    with _connect(url) as sock:
        started = time.monotonic()
        data, closed = _read_until_closed(sock, TIMEOUT + 5)
        assert data.startswith(b"HTTP/1.1 408 ")
        assert closed - started < TIMEOUT + 2


def test_a_body_that_does_not_arrive_is_answered_408(url: str) -> None:
    with _connect(url) as sock:
        sock.sendall(
            b"POST /races/r1/bets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"sel'
        )
        started = time.monotonic()
        data, closed = _read_until_closed(sock, TIMEOUT + 5)
        assert data.startswith(b"HTTP/1.1 408 "), data
        assert closed - started < TIMEOUT + 2


def test_keep_alive_requests_and_live_streams_outlast_the_timeout(url: str) -> None:
    admin = {"X-API-Key": ADMIN_KEY}
    race = {
        "race_id": "live",
        "meeting": "M",
        "venue": "V",
        "post_time": "T",
        "runners": [{"number": 1, "name": "A"}, {"number": 2, "name": "B"}],
        "pools": [{"pool": "WIN", "takeout_bps": 0, "profile": "tabcorp"}],
    }
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.post("/races", json=race, headers=admin).status_code == 201
        assert client.post("/races/live/open", headers=admin).status_code == 200
        with client.stream("GET", "/races/live/odds/stream") as stream:
            lines = stream.iter_lines()
            assert next(lines)  # the first board (or keep-alive)
            # longer than the read timeout, on purpose: the stream must survive it
            time.sleep(TIMEOUT * 1.5)
            r = client.post("/races/live/bets", json={"selection": [1], "stake_cents": 100})
            assert r.status_code == 201, r.text
            position = r.json()["position"]
            for line in lines:
                if line.startswith("id: ") and int(line[4:]) >= position:
                    break
        # a request sent in pieces, but in time, is answered
        with _connect(url) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            sock.sendall(b"Host: x\r\nConnection: close\r\n\r\n")
            data, _ = _read_until_closed(sock, 5)
            assert data.startswith(b"HTTP/1.1 200 "), data


def test_past_the_connection_cap_requests_are_answered_503(url: str) -> None:
    idle = [_connect(url) for _ in range(CAP)]
    try:
        with _connect(url) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data, _ = _read_until_closed(sock, 5)
            assert data.startswith(b"HTTP/1.1 503 "), data
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 5
    while httpx.get(f"{url}/healthz", timeout=5).status_code != 200:  # the slots free up
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_serve_runs_the_limited_server(monkeypatch, tmp_path: Path) -> None:
    """``oddstream serve`` hands uvicorn the configuration with the limits."""
    from typer.testing import CliRunner

    from oddstream import cli

    seen = {}

    def run(self: uvicorn.Server) -> None:
        seen["config"] = self.config

    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.setenv("ODDSTREAM_REQUEST_READ_TIMEOUT_SECONDS", "7")
    monkeypatch.setenv("ODDSTREAM_MAX_CONNECTIONS", "99")
    result = CliRunner().invoke(cli.app, ["serve", "--store", f"sqlite:///{tmp_path}/s.db"])
    assert result.exit_code == 0, result.output
    config = seen["config"]
    assert config.limit_concurrency == 99
    assert config.http.read_timeout == 7.0


async def test_websocket_upgrades_leave_nothing_watched() -> None:
    """An upgraded connection belongs to the WebSocket protocol: the HTTP protocol's
    connection_lost never runs, so the sweeper must forget it at the upgrade."""
    import asyncio

    import websockets
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    from oddstream.api import server as srv

    async def hello(websocket) -> None:
        await websocket.accept()
        await websocket.send_text("hi")
        await websocket.close()

    port = free_port()
    config = uvicorn.Config(
        Starlette(routes=[WebSocketRoute("/ws", hello)]),
        host="127.0.0.1",
        port=port,
        http=srv.read_timeout_protocol(30.0),
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
                await asyncio.sleep(0.02)
            for _ in range(20):
                async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
                    assert await ws.recv() == "hi"
        watched = srv._sweepers[asyncio.get_running_loop()]._watched
        assert not [p for p in watched if p.transport.is_closing()], len(watched)
    finally:
        server.should_exit = True
        await task


def test_a_client_still_sending_after_its_408_reads_the_408_not_a_reset(url: str) -> None:
    """Regression: the server closed a timed-out connection at once; bytes the client
    sent after that were answered with a reset, which destroyed the unread 408."""
    with _connect(url) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        # keep sending well past the deadline and the sweep, reading nothing meanwhile
        while time.monotonic() - started < TIMEOUT + 1.5:
            sock.send(b"a")
            time.sleep(0.01)
        data, _ = _read_until_closed(sock, TIMEOUT + 5)
        assert data.startswith(b"HTTP/1.1 408 "), data
