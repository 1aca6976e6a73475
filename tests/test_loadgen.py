"""``oddstream load``: histogram, parsing, the HTTP client and the command end to end.

The HTTP tests run against a small raw-asyncio server on a thread of its own, whose
behaviour is chosen by the request path (keep-alive, chunked, closing, 500, slow…).
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from collections.abc import Iterator
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from oddstream import loadgen
from oddstream.cli import app
from oddstream.loadgen import (
    Histogram,
    HttpClient,
    LoadConfig,
    LoadProgress,
    RequestError,
    Target,
    _bucket_bounds,
    _bucket_index,
    build_request,
    parse_duration,
    parse_header,
    parse_target,
    run_load,
)

# ------------------------------------------------------------------------- histogram

values = st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=400)
percents = st.sampled_from(["0", "1", "25", "50", "75", "90", "99", "99.9", "99.99", "100"])


def exact_percentile(data: list[int], percent: str) -> int:
    """Nearest rank, computed exactly: the ceil(p/100 * n)-th smallest value."""
    ordered = sorted(data)
    rank = max(1, -(-Fraction(percent) * len(ordered) // 100))
    return ordered[int(rank) - 1]


@settings(max_examples=300, deadline=None)
@given(values, percents)
def test_percentiles_within_one_percent_of_exact(data: list[int], percent: str) -> None:
    exact = exact_percentile(data, percent)
    got = Histogram.of(data).percentile(float(percent))
    assert abs(got - exact) <= exact / 100


@given(values)
def test_exact_count_sum_min_max(data: list[int]) -> None:
    h = Histogram.of(data)
    assert (h.total, h.sum, h.min, h.max) == (len(data), sum(data), min(data), max(data))
    assert h.percentile(100) == max(data)
    assert h.percentile(0) == min(data) or abs(h.percentile(0) - min(data)) <= min(data) / 100


@given(st.lists(st.integers(0, 10**9), max_size=200), st.lists(st.integers(0, 10**9)))
def test_merge_equals_histogram_of_union(a: list[int], b: list[int]) -> None:
    merged = Histogram.of(a).merge(Histogram.of(b))
    assert merged == Histogram.of(a + b)
    assert Histogram.from_dict(json.loads(json.dumps(merged.to_dict()))) == merged


@given(st.integers(min_value=0, max_value=2**62))
def test_buckets_are_contiguous_and_narrow(value: int) -> None:
    index = _bucket_index(value)
    low, high = _bucket_bounds(index)
    assert low <= value <= high
    assert _bucket_index(low) == _bucket_index(high) == index
    assert high - low + 1 <= max(1, low / 128)
    assert _bucket_bounds(index + 1)[0] == high + 1


def test_empty_histogram() -> None:
    h = Histogram()
    assert h.percentile(99) == 0
    assert h.mean == 0.0
    assert h.merge(Histogram()) == Histogram()


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10), ("1m", 60), ("500ms", 0.5), ("2", 2), ("1.5", 1.5), (" 2S ", 2), ("1h", 3600)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "10x", "ten", "-1s", "0", "0ms", "1m30s"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_parse_header() -> None:
    assert parse_header("Authorization: Bearer KEY") == ("Authorization", "Bearer KEY")
    assert parse_header("X-Empty:") == ("X-Empty", "")
    assert parse_header("X-Colon: a:b") == ("X-Colon", "a:b")


@pytest.mark.parametrize("text", ["no colon", ": value", "Bad Name: v", "X: a\r\nY: b"])
def test_parse_header_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="header"):
        parse_header(text)


def test_parse_target() -> None:
    assert parse_target("http://example.com") == Target("example.com", 80, "/", "example.com")
    assert parse_target("http://127.0.0.1:8000/races?x=1") == Target(
        "127.0.0.1", 8000, "/races?x=1", "127.0.0.1:8000"
    )
    assert parse_target("http://[::1]:81/").host_header == "[::1]:81"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://example.com/", "https:// is not supported"),
        ("ftp://example.com/", "only http://"),
        ("example.com:80", "only http://"),
        ("http:///path", "no host"),
        ("http://host:99999/", "not a valid URL"),
    ],
)
def test_parse_target_refuses(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_target(url)


def test_build_request() -> None:
    target = parse_target("http://h:81/bets")
    get = build_request("get", target)
    assert get == b"GET /bets HTTP/1.1\r\nHost: h:81\r\nUser-Agent: oddstream-load\r\n\r\n"
    post = build_request("POST", target, [("Authorization", "Bearer K")], b'{"amount": 5}')
    head, body = post.split(b"\r\n\r\n")
    assert body == b'{"amount": 5}'
    assert b"\r\nContent-Length: 13" in head
    assert b"\r\nContent-Type: application/json" in head
    assert b"\r\nAuthorization: Bearer K" in head
    assert b"Host: other" in build_request("GET", target, [("Host", "other")])
    assert b"Content-Length: 0" in build_request("POST", target)
    with pytest.raises(ValueError, match="content-length"):
        build_request("POST", target, [("Content-Length", "3")], b"abc")
    with pytest.raises(ValueError, match="method"):
        build_request("GE T", target)


# ------------------------------------------------------------------------ the server


class Server:
    """A raw asyncio HTTP/1.1 server on a thread; the path picks the behaviour.

    ``/ok`` 200 with a Content-Length body; ``/chunked`` a chunked body with an extension
    and a trailer; ``/close-every/N`` closes the connection (without saying so) after N
    responses; ``/connection-close`` answers ``Connection: close``; ``/status/N``;
    ``/http10`` an HTTP/1.0 response delimited by closing; ``/continue`` 100 then 200;
    ``/slow`` answers after a second.
    """

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        async def shutdown() -> None:
            self.server.close()
            handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                body = await reader.readexactly(int(length.group(1))) if length else b""
                self.requests.append(head + body)
                path = head.split(b" ")[1].decode()
                served += 1
                if not await self._answer(path, served, writer):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer(self, path: str, served: int, writer: asyncio.StreamWriter) -> bool:
        """Write the response for ``path``; False when the connection is to be closed."""

        def ok(body: bytes, status: str = "200 OK", extra: str = "") -> bytes:
            return (
                f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body
            )

        if path == "/chunked":
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"6;ext=1\r\nhello \r\n"
                b"d\r\nchunked world\r\n"
                b"0\r\nX-Trailer: yes\r\n\r\n"
            )
        elif path.startswith("/close-every/"):
            writer.write(ok(b"ok"))
            if served % int(path.rsplit("/", 1)[1]) == 0:
                await writer.drain()
                return False
        elif path == "/connection-close":
            writer.write(ok(b"bye", extra="Connection: close\r\n"))
            await writer.drain()
            return False
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            writer.write(ok(b"{}", status=f"{code} Status"))
        elif path == "/http10":
            writer.write(b"HTTP/1.0 200 OK\r\n\r\nold style body")
            await writer.drain()
            return False
        elif path == "/continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"after continue"))
        elif path == "/slow":
            await asyncio.sleep(1)
            writer.write(ok(b"late"))
        else:
            writer.write(ok(b"hello", extra="Content-Type: text/plain\r\n"))
        return True


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def client_for(server: Server, path: str, **kw) -> HttpClient:
    target = parse_target(server.url(path))
    return HttpClient(target.host, target.port, build_request("GET", target), **kw)


# ------------------------------------------------------------------------ the client


async def test_keep_alive_uses_one_connection(server: Server) -> None:
    client = client_for(server, "/ok", keep_body=True)
    statuses = [await client.fetch() for _ in range(20)]
    assert statuses == [200] * 20
    assert client.last_body == b"hello"
    assert client.body_bytes == 100
    assert (client.connects, server.connections) == (1, 1)
    assert client.latency_ns > 0
    client.close()


async def test_chunked_body_is_read_exactly(server: Server) -> None:
    client = client_for(server, "/chunked", keep_body=True)
    for _ in range(5):
        assert await client.fetch() == 200
        assert client.last_body == b"hello chunked world"
    assert client.connects == 1  # the trailer was consumed: the connection stays usable
    client.close()


async def test_reconnects_when_the_server_closes(server: Server) -> None:
    client = client_for(server, "/close-every/2")
    assert [await client.fetch() for _ in range(7)] == [200] * 7
    assert client.connects == server.connections == 4
    client.close()


async def test_connection_close_is_honoured(server: Server) -> None:
    client = client_for(server, "/connection-close", keep_body=True)
    assert [await client.fetch() for _ in range(3)] == [200] * 3
    assert client.last_body == b"bye"
    assert client.connects == 3
    assert client.retries == 0  # closed on the header, not found closed on the next send
    client.close()


async def test_http10_body_delimited_by_close(server: Server) -> None:
    client = client_for(server, "/http10", keep_body=True)
    assert [await client.fetch() for _ in range(2)] == [200, 200]
    assert client.last_body == b"old style body"
    assert client.connects == 2
    client.close()


async def test_informational_response_is_skipped(server: Server) -> None:
    client = client_for(server, "/continue", keep_body=True)
    assert [await client.fetch() for _ in range(2)] == [200, 200]
    assert client.last_body == b"after continue"
    assert client.connects == 1
    client.close()


async def test_500_is_a_status_not_an_error(server: Server) -> None:
    client = client_for(server, "/status/500")
    assert await client.fetch() == 500
    client.close()


async def test_refused_port_raises_a_counted_error(refused_port: int) -> None:
    target = parse_target(f"http://127.0.0.1:{refused_port}/")
    client = HttpClient(target.host, target.port, build_request("GET", target))
    with pytest.raises(RequestError) as caught:
        await client.fetch()
    assert caught.value.kind == "connection refused"
    assert caught.value.connecting


async def test_abort_is_a_timeout(server: Server) -> None:
    client = client_for(server, "/slow")
    fetch = asyncio.ensure_future(client.fetch())
    await asyncio.sleep(0.1)
    assert client.sent_at
    client.abort()
    with pytest.raises(RequestError, match="timeout"):
        await fetch


# ------------------------------------------------------------------------ the runner


def test_run_load_counts_statuses(server: Server) -> None:
    result = run_load(LoadConfig(url=server.url("/status/500"), workers=4, duration=0.3))
    assert result.requests > 0
    assert result.statuses == {500: result.requests}
    assert result.errors == {}
    assert result.histogram.total == result.requests
    assert result.connects == server.connections == 4


def test_run_load_post_sends_body_and_headers(server: Server) -> None:
    config = LoadConfig(
        url=server.url("/ok"),
        workers=2,
        duration=0.2,
        method="POST",
        headers=(("Authorization", "Bearer KEY"),),
        body=b'{"amount": 5}',
    )
    result = run_load(config)
    assert result.statuses == {200: result.requests}
    first = server.requests[0]
    assert first.startswith(b"POST /ok HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Bearer KEY\r\n" in first
    assert first.endswith(b'\r\n\r\n{"amount": 5}')


def test_run_load_refused_port_counts_errors(refused_port: int) -> None:
    result = run_load(LoadConfig(url=f"http://127.0.0.1:{refused_port}/", workers=3, duration=0.2))
    assert result.requests == 0
    assert result.errors["connection refused"] > 0
    assert set(result.errors) == {"connection refused"}
    assert result.to_json()["latency_ms"]["p99"] == 0


def test_run_load_times_out_slow_requests(server: Server) -> None:
    result = run_load(LoadConfig(url=server.url("/slow"), workers=2, duration=0.6, timeout=0.2))
    assert result.errors.get("timeout", 0) >= 2
    assert result.requests == 0


def test_run_load_progress(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loadgen, "_REPORT_EVERY", 0.1)
    seen: list[LoadProgress] = []
    result = run_load(LoadConfig(url=server.url("/ok"), workers=2, duration=0.45), seen.append)
    assert len(seen) >= 3
    assert [p.requests for p in seen] == sorted(p.requests for p in seen)
    assert seen[-1].requests <= result.requests
    assert all(p.rate > 0 and p.p99_ms > 0 and p.duration == 0.45 for p in seen)


def test_run_load_across_processes_merges(server: Server) -> None:
    result = run_load(LoadConfig(url=server.url("/ok"), workers=4, duration=0.5, processes=2))
    assert result.processes == 2
    assert result.requests > 0
    assert result.statuses == {200: result.requests}
    assert result.histogram.total == result.requests
    assert result.connects == server.connections == 4


def test_split_never_leaves_a_process_idle() -> None:
    assert LoadConfig(url="http://h/", workers=5, processes=2).split() == [3, 2]
    assert LoadConfig(url="http://h/", workers=1, processes=4).split() == [1]


# --------------------------------------------------------------------------- the CLI


def plain(output: str) -> str:
    """Rich's error box as one line of words."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", output).split())


def test_cli_json_end_to_end(server: Server) -> None:
    result = CliRunner().invoke(
        app, ["load", server.url("/ok"), "--workers", "4", "--duration", "1s", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["requests"] > 0
    assert data["requests"] == sum(data["statuses"].values())
    assert data["statuses"] == {"200": data["requests"]}
    assert data["error_count"] == 0
    latency = data["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert data["requests_per_s"] == pytest.approx(data["requests"] / data["elapsed_s"], rel=0.01)


def test_cli_summary(server: Server, tmp_path) -> None:
    body = tmp_path / "bet.json"
    body.write_text('{"amount": 5}')
    result = CliRunner().invoke(
        app,
        ["load", server.url("/ok"), "-c", "2", "-d", "300ms", "-X", "POST", "--body", f"@{body}"],
    )
    assert result.exit_code == 0, result.output
    assert "req/s" in result.output
    assert "200: " in result.output
    assert "p99.9" in result.output
    assert server.requests[0].endswith(b'{"amount": 5}')


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["https://example.com/"], "https:// is not supported"),
        (["ftp://example.com/"], "only http://"),
        (["http://h/", "--workers", "0"], "--workers"),
        (["http://h/", "--processes", "0"], "--processes"),
        (["http://h/", "--duration", "ten"], "is not a duration"),
        (["http://h/", "--timeout", "-1"], "--timeout"),
        (["http://h/", "--header", "nocolon"], "is not a header"),
        (["http://h/", "--body", "@/nonexistent/file.json"], "cannot read"),
        (["http://h/", "--header", "Content-Length: 3"], "set by the tool"),
    ],
)
def test_cli_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["load", *args])
    assert result.exit_code == 2, result.output
    assert message in plain(result.output)
    assert "Traceback" not in result.output
