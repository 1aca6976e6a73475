"""A real server on a free loopback port, for tests that need streaming or a browser."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from oddstream.api.app import create_app, serve_app
from oddstream.config import Settings

ADMIN_KEY = "test-admin-key-0123456789"
CUSTOMER_KEYS = {"alice": "alice-key-0123456789", "bob": "bob-key-9f3Kq7Zr2LxW"}


@dataclass
class LiveServer:
    url: str
    admin: dict[str, str]

    def customer(self, wallet: str) -> dict[str, str]:
        """The headers of the test customer key for ``wallet``."""
        return {"X-API-Key": CUSTOMER_KEYS[wallet]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_server(
    settings: Settings, demo: bool = False, kafka_compat: bool | None = None
) -> Iterator[LiveServer]:
    port = free_port()
    app = serve_app(create_app(settings, demo=demo, kafka_compat=kafka_compat), settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(url, {"X-API-Key": ADMIN_KEY})
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def live_settings(tmp_path: Path, **overrides: object) -> Settings:
    """The test service's settings: a store in ``tmp_path``, the test keys, short waits."""
    return Settings().with_overrides(
        **{
            "store_url": f"sqlite:///{tmp_path}/api.db",
            "admin_key": ADMIN_KEY,
            "customer_keys": ",".join(f"{key}={w}" for w, key in CUSTOMER_KEYS.items()),
            "read_model_path": str(tmp_path / "read_models.db"),
            "push_coalesce_ms": 20,
            "read_wait_seconds": 1.0,
            "max_body_bytes": 4 * 1024 * 1024,
            # with --kafka-compat Kafka Connect's API has a port of its own: never 8083 here
            "kafka_connect_port": free_port(),
            **overrides,
        }
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    yield from run_server(live_settings(tmp_path))
