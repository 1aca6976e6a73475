"""Fixtures of the velocity tests that run services mode (the app as ``oddstream api``
builds it, a worker as ``oddstream worker`` does)."""

from __future__ import annotations

import os
import socket

import pytest

from conftest import need_service

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
