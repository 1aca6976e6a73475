"""Fixtures of the velocity tests that run services mode (the app as ``oddstream api``
builds it, a worker as ``oddstream worker`` does)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator

import pytest
import redis

from conftest import need_service
from oddstream.config import Settings

NATS_URL = os.environ.get("ODDSTREAM_TEST_NATS_URL", "nats://127.0.0.1:4222")


@pytest.fixture
def nats_url() -> str:
    """The local NATS server's URL (the test is skipped, or failed, as
    :func:`need_service` says, when it cannot be reached)."""
    host, _, port = NATS_URL.removeprefix("nats://").partition(":")
    try:
        with socket.create_connection((host, int(port or 4222)), timeout=3):
            pass
    except OSError as exc:
        need_service("NATS", str(exc))
    return NATS_URL


#: the admin key of the deployments these tests start
ADMIN_KEY = "velocity-services-admin-key-0123456789"


@pytest.fixture
def services_settings(
    monkeypatch: pytest.MonkeyPatch, pg_url: str, pg_schema: str, redis_url: str, nats_url: str
) -> Iterator[Callable[..., Settings]]:
    """Settings of a services deployment of the test's own (its schema, a Redis prefix
    of that name, NATS subjects under it), read from the environment as ``oddstream api``
    and ``oddstream worker`` read them: call it with more variables (``None`` unsets
    one). The deployment's Redis keys are deleted afterwards."""
    prefix = f"{pg_schema}:"
    base: dict[str, str | None] = {
        "ODDSTREAM_STORE_URL": pg_url,
        "ODDSTREAM_PG_SCHEMA": pg_schema,
        "ODDSTREAM_NATS_URL": nats_url,
        "ODDSTREAM_REDIS_URL": redis_url,
        "ODDSTREAM_REDIS_PREFIX": prefix,
        "ODDSTREAM_ADMIN_KEY": ADMIN_KEY,
        # refused in "api"
        "ODDSTREAM_QUOTE_TABLES_URL": None,
        "ODDSTREAM_KAFKA_COMPAT": None,
    }

    def settings(**extra: str | None) -> Settings:
        for name, value in {**base, **extra}.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        return Settings()

    yield settings
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
    finally:
        client.close()
