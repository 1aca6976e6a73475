"""Every request carries a correlation id and is counted on ``/metrics``: the lean
routes' (bets, wallet, the SSE stream) exactly as the framework's, and the ones the body
limit refuses (issue 10: the SSE stream had neither, and a 413 had no correlation id)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import LiveServer
from .test_tote_api import open_race

STREAM = "/races/{race_id}/odds/stream"


@pytest.fixture
async def client(server: LiveServer):
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
        yield c


async def _count(client: httpx.AsyncClient, method: str, route: str, status: int) -> float:
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        if family.name == "oddstream_http_requests":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels == {
                    "method": method,
                    "route": route,
                    "status": str(status),
                }:
                    return sample.value
    return 0.0


async def _until_counted(
    client: httpx.AsyncClient, method: str, route: str, status: int, times: int
) -> None:
    """Wait (10 s at most) until ``/metrics`` counts ``times`` such requests: a request
    is counted when it ends, which for a stream is when the server sees the client go."""
    deadline = asyncio.get_running_loop().time() + 10
    while (seen := await _count(client, method, route, status)) < times:
        assert asyncio.get_running_loop().time() < deadline, (method, route, status, seen)
        await asyncio.sleep(0.02)
    assert seen == times


async def _first_frame(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """Open the SSE stream of race r1, read its first frame, hang up; its correlation id."""
    async with client.stream("GET", "/races/r1/odds/stream", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert await anext(response.aiter_bytes())
        return response.headers["x-correlation-id"]


async def test_the_sse_stream_echoes_the_correlation_id_and_is_counted(
    client, server: LiveServer
) -> None:
    await open_race(client, server, "r1")
    assert await _first_frame(client, {"X-Correlation-ID": "sse-cid-1"}) == "sse-cid-1"
    generated = await _first_frame(client, {})
    assert generated
    assert generated != "sse-cid-1"
    assert await _first_frame(client, {}) != generated  # a new one per request
    await _until_counted(client, "GET", STREAM, 200, 3)


async def test_a_refused_sse_stream_has_the_correlation_id_and_is_counted(client) -> None:
    missing = await client.get("/races/nope/odds/stream", headers={"X-Correlation-ID": "c-404"})
    assert missing.status_code == 404
    assert missing.headers["x-correlation-id"] == "c-404"
    resumed = await client.get("/races/nope/odds/stream", headers={"Last-Event-ID": "x"})
    assert resumed.status_code == 422
    assert resumed.headers["x-correlation-id"]
    await _until_counted(client, "GET", STREAM, 404, 1)
    await _until_counted(client, "GET", STREAM, 422, 1)


async def test_the_lean_bets_and_wallet_routes_do_the_same(client, server: LiveServer) -> None:
    await open_race(client, server, "r1")
    calls = [
        ("POST", "/races/r1/bets", "/races/{race_id}/bets", 201, None),
        ("POST", "/wallet/alice/credit", "/wallet/{wallet_id}/credit", 200, server.admin),
        ("POST", "/wallet/alice/debit", "/wallet/{wallet_id}/debit", 200, server.admin),
        ("GET", "/wallet/alice/balance", "/wallet/{wallet_id}/balance", 200, server.admin),
    ]
    for method, path, route, status, auth in calls:
        body = {"selection": [1], "stake_cents": 500} if "bets" in path else {"amount": 1}
        for cid in ("lane-cid", None):
            answer = await client.request(
                method,
                path,
                json=body if method == "POST" else None,
                headers={**(auth or {}), **({"X-Correlation-ID": cid} if cid else {})},
            )
            assert answer.status_code == status, answer.text
            if cid is None:
                assert answer.headers["x-correlation-id"] not in ("", "lane-cid")
            else:
                assert answer.headers["x-correlation-id"] == cid
        await _until_counted(client, method, route, status, 2)


async def test_a_body_over_the_limit_has_the_correlation_id_and_is_counted(client) -> None:
    """The body limit and the request record are one middleware: a 413 by
    Content-Length echoes the correlation id and is counted (it had neither)."""
    big = b"x" * (4 * 1024 * 1024 + 1)  # the test service's limit is 4 MiB
    for path in ("/races/r1/bets", "/races"):  # a lean route's path and a framework's
        answer = await client.post(
            path,
            content=big,
            headers={"Content-Type": "application/json", "X-Correlation-ID": "big-1"},
        )
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"] == "too_large"
        assert answer.headers["x-correlation-id"] == "big-1"
    await _until_counted(client, "POST", "unmatched", 413, 2)


async def test_a_lean_routes_path_with_another_method_is_405_with_allow(client) -> None:
    for method, path, allow in (
        ("GET", "/races/r1/bets", "POST"),
        ("DELETE", "/wallet/alice/credit", "POST"),
        ("POST", "/wallet/alice/balance", "GET"),
        ("PUT", "/races/r1/odds/stream", "GET"),
    ):
        answer = await client.request(method, path, headers={"X-Correlation-ID": "m-1"})
        assert answer.status_code == 405, (method, path, answer.text)
        assert answer.headers["allow"] == allow
        assert answer.json()["error"] == "method_not_allowed"
        assert answer.headers["x-correlation-id"] == "m-1"
