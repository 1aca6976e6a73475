"""A small HTTP/1.1 load generator: ``oddstream load``.

N workers, each a persistent keep-alive connection driven by a tiny asyncio HTTP/1.1
client (``asyncio.open_connection``, pre-built request bytes, status line and headers
parsed by hand, Content-Length, chunked and read-to-close bodies), send the same request
back to back for a duration. Latencies go into a log-linear histogram (:class:`Histogram`,
HdrHistogram-like, 1/128 relative bucket width) so memory is bounded and the histograms
of several processes merge exactly. ``processes > 1`` splits the workers across processes
(``multiprocessing``, spawn) so one Python core is not the ceiling.

The pure parts (:func:`parse_duration`, :func:`parse_header`, :func:`parse_target`,
:func:`build_request`, :class:`Histogram`) are separate from the I/O (:class:`HttpClient`)
and the runner (:func:`run_load`). See ``docs/load.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import math
import multiprocessing
import queue as queue_module
import re
import signal
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "Histogram",
    "HttpClient",
    "LoadConfig",
    "LoadProgress",
    "LoadResult",
    "RequestError",
    "Target",
    "build_request",
    "parse_duration",
    "parse_header",
    "parse_target",
    "run_load",
]

# --------------------------------------------------------------------------- parsing

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
#: RFC 9110 token characters (header names, methods).
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``10s``, ``1m``, ``500ms``, ``2h`` or plain seconds (``1.5``).

    Raises ``ValueError`` for anything else, or for a duration that is not positive.
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (e.g. 10s, 1m, 500ms or seconds)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if seconds <= 0:
        raise ValueError(f"{text!r}: the duration must be positive")
    return seconds


def parse_header(text: str) -> tuple[str, str]:
    """``"Name: value"`` as ``(name, value)``; ``ValueError`` when it is not a header."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name:
        raise ValueError(f"{text!r} is not a header (expected 'Name: value')")
    if not _TOKEN.match(name):
        raise ValueError(f"{name!r} is not a valid header name")
    if "\r" in value or "\n" in value:
        raise ValueError(f"header {name!r} has a line break in its value")
    return name, value


@dataclass(frozen=True)
class Target:
    """Where requests go: the address to connect to and the request line's target."""

    host: str
    port: int
    path: str
    host_header: str


def parse_target(url: str) -> Target:
    """The :class:`Target` of an ``http://`` URL; ``ValueError`` for anything else."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme == "https":
        raise ValueError(
            "https:// is not supported; only plain http:// (put the target behind a "
            "plain-HTTP listener, or load it from inside its TLS terminator)"
        )
    if scheme != "http":
        raise ValueError(f"{url!r}: only http:// URLs are supported")
    host = parts.hostname
    if not host:
        raise ValueError(f"{url!r} has no host")
    port = port or 80
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    if any(c in path for c in " \r\n"):
        raise ValueError(f"{url!r}: the path must not contain spaces or line breaks")
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == 80 else f"{shown}:{port}"
    return Target(host=host, port=port, path=path, host_header=host_header)


def build_request(
    method: str,
    target: Target,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes | None = None,
) -> bytes:
    """The bytes of one HTTP/1.1 request, sent as they are by every worker.

    ``Host`` and ``User-Agent`` default sensibly and a header given in ``headers``
    replaces them; ``Content-Length`` is computed (and ``Content-Type`` defaults to
    ``application/json``) when there is a body or the method usually carries one.
    """
    method = method.upper()
    if not _TOKEN.match(method):
        raise ValueError(f"{method!r} is not an HTTP method")
    given = list(headers)
    names = {name.lower() for name, _ in given}
    for forbidden in ("content-length", "transfer-encoding"):
        if forbidden in names:
            raise ValueError(f"{forbidden} is set by the tool from the body")
    lines = [f"{method} {target.path} HTTP/1.1"]
    if "host" not in names:
        lines.append(f"Host: {target.host_header}")
    if "user-agent" not in names:
        lines.append("User-Agent: oddstream-load")
    if body is not None and "content-type" not in names:
        lines.append("Content-Type: application/json")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    lines.extend(f"{name}: {value}" for name, value in given)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


# ------------------------------------------------------------------------- histogram

#: Values below ``2 * _SUB`` have buckets of width 1; above, each power of two is split in
#: ``_SUB`` buckets, so a bucket is at most 1/128 (0.78%) of its lowest value wide.
_SUB_BITS = 7
_SUB = 1 << _SUB_BITS


def _bucket_index(value: int) -> int:
    shift = value.bit_length() - _SUB_BITS - 1
    return value if shift <= 0 else (shift << _SUB_BITS) + (value >> shift)


def _bucket_bounds(index: int) -> tuple[int, int]:
    """The lowest and highest value that fall in bucket ``index``."""
    if index < 2 * _SUB:
        return index, index
    shift = (index >> _SUB_BITS) - 1
    low = (index - (shift << _SUB_BITS)) << shift
    return low, low + (1 << shift) - 1


@dataclass
class Histogram:
    """Counts of non-negative integers (microseconds here) in log-linear buckets.

    Buckets are exact below 256 and at most 1/128 of their value wide above, so a
    percentile is within 0.4% of the exact one (the bucket's middle is reported) while
    memory stays at a few thousand counters for any range. Exact count, sum, min and max
    are kept besides. Two histograms :meth:`merge` exactly: the result equals the
    histogram of the union of what they recorded.
    """

    counts: list[int] = field(default_factory=list)
    total: int = 0
    sum: int = 0
    min: int = 0
    max: int = 0

    def record(self, value: int) -> None:
        """Count one ``value`` (a non-negative int)."""
        # _bucket_index, inlined: this runs once per response
        shift = value.bit_length() - _SUB_BITS - 1
        index = value if shift <= 0 else (shift << _SUB_BITS) + (value >> shift)
        counts = self.counts
        if index >= len(counts):
            counts.extend([0] * (index + 1 - len(counts)))
        counts[index] += 1
        if self.total == 0 or value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self.total += 1
        self.sum += value

    @classmethod
    def of(cls, values: Iterable[int]) -> Histogram:
        """The histogram of ``values``."""
        histogram = cls()
        for value in values:
            histogram.record(value)
        return histogram

    def merge(self, other: Histogram) -> Histogram:
        """Add ``other``'s counts to this histogram (in place); returns ``self``."""
        if other.total == 0:
            return self
        if len(other.counts) > len(self.counts):
            self.counts.extend([0] * (len(other.counts) - len(self.counts)))
        for index, count in enumerate(other.counts):
            if count:
                self.counts[index] += count
        self.min = other.min if self.total == 0 else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.total += other.total
        self.sum += other.sum
        return self

    def percentile(self, percent: float) -> int:
        """The value at ``percent`` (0–100) by nearest rank, to the bucket's precision.

        That is the bucket holding the ``ceil(percent/100 * total)``-th smallest value,
        reported as its middle (clamped to the exact min and max); 0 when empty.
        """
        if self.total == 0:
            return 0
        if percent >= 100:
            return self.max
        rank = max(1, math.ceil(percent / 100 * self.total - 1e-9))
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                low, high = _bucket_bounds(index)
                return min(max((low + high) // 2, self.min), self.max)
        return self.max  # pragma: no cover - unreachable: counts sum to total

    @property
    def mean(self) -> float:
        """The exact mean of what was recorded (0 when empty)."""
        return self.sum / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A compact, JSON- and pickle-friendly form (sparse counts)."""
        return {
            "counts": {i: c for i, c in enumerate(self.counts) if c},
            "total": self.total,
            "sum": self.sum,
            "min": self.min,
            "max": self.max,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        """The inverse of :meth:`to_dict`."""
        sparse = {int(i): int(c) for i, c in data["counts"].items()}
        counts = [0] * (max(sparse) + 1 if sparse else 0)
        for index, count in sparse.items():
            counts[index] = count
        return cls(counts, data["total"], data["sum"], data["min"], data["max"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


# --------------------------------------------------------------------------- client


class RequestError(Exception):
    """A request that got no response; ``kind`` is what is counted ("timeout", …)."""

    def __init__(self, kind: str, *, connecting: bool = False) -> None:
        super().__init__(kind)
        self.kind = kind
        self.connecting = connecting


_ERRNO_KINDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EPIPE: "connection reset",
    errno.ECONNABORTED: "connection reset",
    errno.ETIMEDOUT: "timeout",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EADDRNOTAVAIL: "address not available",
    errno.EMFILE: "too many open files",
}


def _error_kind(exc: BaseException) -> str:
    """The counted name of a failure (short, stable, no traceback)."""
    if isinstance(exc, socket.gaierror):
        return "name resolution failed"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, OSError) and exc.errno in _ERRNO_KINDS:
        return _ERRNO_KINDS[exc.errno]
    if isinstance(exc, ConnectionError):
        return "connection reset"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__


def _header_value(head: bytes, name: bytes) -> bytes | None:
    """The value of header ``name`` (lower case) in ``head`` (lower-cased), or None."""
    start = head.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    end = head.find(b"\r\n", start)
    return head[start:end].strip()


_NO_BODY = frozenset({204, 304})


class HttpClient:
    """One persistent HTTP/1.1 connection sending one pre-built request, again and again.

    :meth:`fetch` (re)connects when needed, sends the request, reads one response and
    returns its status; ``latency_ns`` is then the time from sending to the end of the
    body (connecting is not included). The connection is closed and reopened when the
    server closes it or answers ``Connection: close`` (or HTTP/1.0 without keep-alive); a
    request that meets a connection the server closed while it was idle (EOF or reset
    before any response) is retried once on a fresh one (counted in ``retries``).
    Failures raise :class:`RequestError`. :meth:`abort` (from a watchdog) makes an
    in-flight request fail as a timeout.
    """

    def __init__(
        self,
        host: str,
        port: int,
        request: bytes,
        *,
        head: bool = False,
        connect_timeout: float = 5.0,
        keep_body: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.request = request
        self.head = head
        self.connect_timeout = connect_timeout
        self.keep_body = keep_body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        #: ``time.perf_counter_ns()`` when the in-flight request was sent, else 0.
        self.sent_at = 0
        self.latency_ns = 0
        self.connects = 0
        self.retries = 0
        self.body_bytes = 0
        self.last_body = b""
        self._aborted = False
        self._answered = False

    async def _connect(self) -> None:
        self.close()
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the
            # cancellation that ends the run when it lands as a connect fails, and the
            # worker then loops on for ever (seen against a refused port)
            async with asyncio.timeout(self.connect_timeout):
                self.reader, self.writer = await asyncio.open_connection(
                    self.host, self.port, limit=1 << 20
                )
        except (TimeoutError, OSError) as exc:
            raise RequestError(_error_kind(exc), connecting=True) from None
        self.connects += 1

    def close(self) -> None:
        """Drop the connection (the next :meth:`fetch` reconnects)."""
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None

    def abort(self) -> None:
        """Fail the in-flight request as a timeout (called by a watchdog)."""
        self._aborted = True
        if self.writer is not None:
            self.writer.transport.abort()

    async def fetch(self) -> int:
        """Send the request once and read the response; returns its status code."""
        retried = False
        while True:
            fresh = False
            if self.writer is None or self.reader is None or self.reader.at_eof():
                await self._connect()
                fresh = True
            assert self.reader is not None
            assert self.writer is not None
            self._aborted = self._answered = False
            self.sent_at = started = time.perf_counter_ns()
            try:
                self.writer.write(self.request)
                status, close = await self._read_response(self.reader)
            except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                if self._aborted:
                    raise RequestError("timeout") from None
                partial = isinstance(exc, asyncio.IncompleteReadError) and exc.partial
                if not (fresh or retried or partial or self._answered):
                    # the server closed the idle connection as we reused it: once more
                    retried = True
                    self.retries += 1
                    continue
                if isinstance(exc, asyncio.IncompleteReadError):
                    raise RequestError("connection closed") from None
                raise RequestError("connection reset") from None
            except (asyncio.LimitOverrunError, ValueError, IndexError):
                self.close()
                raise RequestError("protocol error") from None
            except OSError as exc:
                self.close()
                raise RequestError("timeout" if self._aborted else _error_kind(exc)) from None
            finally:
                self.sent_at = 0
            self.latency_ns = time.perf_counter_ns() - started
            if close:
                self.close()
            return status

    async def _read_response(self, reader: asyncio.StreamReader) -> tuple[int, bool]:
        """Read one response: ``(status, whether the connection must be closed)``."""
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if head[:5] != b"HTTP/" or head[12:13] not in (b" ", b"\r"):
                raise ValueError("not an HTTP response")
            status = int(head[9:12])
            self._answered = True
            if status >= 200 or status == 101:
                break  # 1xx (100 Continue, 103 Early Hints) precede the real response
        lower = head.lower()
        connection = _header_value(lower, b"connection")
        if head[5:8] == b"1.0":
            close = connection is None or b"keep-alive" not in connection
        else:
            close = status == 101 or (connection is not None and b"close" in connection)
        if self.head or status in _NO_BODY or status < 200:
            size = 0
            body = b""
        elif (encoding := _header_value(lower, b"transfer-encoding")) is not None and (
            b"chunked" in encoding
        ):
            size, body = await self._read_chunked(reader)
        elif (length := _header_value(lower, b"content-length")) is not None:
            size = int(length)
            body = await reader.readexactly(size) if size else b""
        else:
            body = await reader.read()  # delimited by the end of the connection
            size, close = len(body), True
        self.body_bytes += size
        if self.keep_body:
            self.last_body = body
        return status, close

    async def _read_chunked(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        size = 0
        parts: list[bytes] = []
        while True:
            line = await reader.readuntil(b"\r\n")
            chunk = int(line.split(b";", 1)[0].strip(), 16)
            if chunk == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailers
                return size, b"".join(parts)
            data = await reader.readexactly(chunk + 2)
            if data[-2:] != b"\r\n":
                raise ValueError("chunk not followed by CRLF")
            size += chunk
            if self.keep_body:
                parts.append(data[:-2])


# --------------------------------------------------------------------------- runner


@dataclass(frozen=True)
class LoadConfig:
    """What to run: see ``oddstream load --help``."""

    url: str
    workers: int = 64
    duration: float = 10.0
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    timeout: float = 5.0
    processes: int = 1

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.processes < 1:
            raise ValueError("processes must be at least 1")
        if self.duration <= 0 or self.timeout <= 0:
            raise ValueError("duration and timeout must be positive")
        build_request(self.method, parse_target(self.url), self.headers, self.body)

    def request_bytes(self) -> bytes:
        """The request every worker sends."""
        return build_request(self.method, parse_target(self.url), self.headers, self.body)

    def split(self) -> list[int]:
        """Workers per process (never more processes than workers)."""
        processes = min(self.processes, self.workers)
        share, extra = divmod(self.workers, processes)
        return [share + (1 if i < extra else 0) for i in range(processes)]


@dataclass
class LoadProgress:
    """A live view of a run, passed to the progress callback about twice a second."""

    elapsed: float
    duration: float
    requests: int
    errors: int
    rate: float
    p99_ms: float


@dataclass
class LoadResult:
    """The outcome of a run (``requests`` counts responses; errors are apart)."""

    config: LoadConfig
    processes: int
    elapsed: float
    histogram: Histogram
    statuses: dict[int, int]
    errors: dict[str, int]
    connects: int = 0
    retries: int = 0
    body_bytes: int = 0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    def latency_ms(self) -> dict[str, float]:
        """p50/p90/p99/p99.9/max (and min, mean) in milliseconds."""
        h = self.histogram
        values = {f"p{p:g}": h.percentile(p) / 1000 for p in (50, 90, 99, 99.9)}
        values.update(max=h.max / 1000, min=h.min / 1000, mean=round(h.mean / 1000, 3))
        return values

    def to_json(self) -> dict[str, Any]:
        """The result as one JSON-ready object (what ``--json`` prints)."""
        return {
            "url": self.config.url,
            "method": self.config.method.upper(),
            "workers": self.config.workers,
            "processes": self.processes,
            "duration_s": self.config.duration,
            "elapsed_s": round(self.elapsed, 3),
            "requests": self.requests,
            "requests_per_s": round(self.rate, 1),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(sorted(self.errors.items())),
            "error_count": sum(self.errors.values()),
            "connects": self.connects,
            "retries": self.retries,
            "body_bytes": self.body_bytes,
            "latency_ms": self.latency_ms(),
        }


@dataclass
class _Tally:
    """What one process counted; ``to_dict`` crosses process boundaries."""

    histogram: Histogram = field(default_factory=Histogram)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    connects: int = 0
    retries: int = 0
    body_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "histogram": self.histogram.to_dict(),
            "statuses": self.statuses,
            "errors": self.errors,
            "elapsed": self.elapsed,
            "connects": self.connects,
            "retries": self.retries,
            "body_bytes": self.body_bytes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> _Tally:
        return cls(
            Histogram.from_dict(data["histogram"]),
            dict(data["statuses"]),
            dict(data["errors"]),
            data["elapsed"],
            data["connects"],
            data["retries"],
            data["body_bytes"],
        )


#: Pause after a failed connect, so a refused port is counted without a busy loop.
CONNECT_BACKOFF = 0.01
_REPORT_EVERY = 0.5


async def _worker(client: HttpClient, tally: _Tally) -> None:
    record = tally.histogram.record
    statuses = tally.statuses
    errors = tally.errors
    while True:
        try:
            status = await client.fetch()
        except RequestError as exc:
            errors[exc.kind] = errors.get(exc.kind, 0) + 1
            if exc.connecting:
                await asyncio.sleep(CONNECT_BACKOFF)
            continue
        except Exception as exc:  # never let one odd response end a worker
            client.close()
            kind = _error_kind(exc)
            errors[kind] = errors.get(kind, 0) + 1
            continue
        record(client.latency_ns // 1000)
        statuses[status] = statuses.get(status, 0) + 1


async def _run_workers(
    config: LoadConfig,
    workers: int,
    report: Callable[[float, _Tally], None] | None = None,
) -> _Tally:
    """Run ``workers`` clients in this event loop for the configured duration."""
    target = parse_target(config.url)
    host = target.host
    with contextlib.suppress(OSError):  # resolve once; on failure every connect says why
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, target.port, type=socket.SOCK_STREAM
        )
        host = str(infos[0][4][0])
    request = config.request_bytes()
    head = config.method.upper() == "HEAD"
    clients = [
        HttpClient(host, target.port, request, head=head, connect_timeout=config.timeout)
        for _ in range(workers)
    ]
    tally = _Tally()
    timeout_ns = int(config.timeout * 1e9)
    gc.collect()
    gc.freeze()
    started = time.perf_counter()
    deadline = started + config.duration
    tasks = [asyncio.create_task(_worker(client, tally)) for client in clients]
    next_report = started + _REPORT_EVERY
    try:
        while (now := time.perf_counter()) < deadline:
            await asyncio.sleep(min(0.05, deadline - now))
            now_ns = time.perf_counter_ns()
            for client in clients:  # the watchdog: one timer for all requests
                if client.sent_at and now_ns - client.sent_at > timeout_ns:
                    client.abort()
            if report is not None and time.perf_counter() >= next_report:
                next_report += _REPORT_EVERY
                report(time.perf_counter() - started, tally)
    finally:
        tally.elapsed = time.perf_counter() - started
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            client.close()
        gc.unfreeze()
    tally.connects = sum(c.connects for c in clients)
    tally.retries = sum(c.retries for c in clients)
    tally.body_bytes = sum(c.body_bytes for c in clients)
    return tally


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when it is installed (uvicorn[standard] brings it), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _run_in_loop(coro: Any) -> Any:
    loop = _new_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def _child(config: LoadConfig, workers: int, index: int, out: Any, go: Any) -> None:
    """A worker process: wait for the start signal, run, send progress and the tally."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    try:
        out.put(("ready", index, None))
        go.wait()

        def report(elapsed: float, tally: _Tally) -> None:
            snapshot = (elapsed, sum(tally.statuses.values()), sum(tally.errors.values()))
            out.put(("progress", index, (*snapshot, tally.histogram.to_dict())))

        tally = _run_in_loop(_run_workers(config, workers, report))
        out.put(("done", index, tally.to_dict()))
    except BaseException as exc:
        out.put(("failed", index, f"{type(exc).__name__}: {exc}"))


class _Progress:
    """Turns per-process snapshots into :class:`LoadProgress` for the callback."""

    def __init__(self, duration: float, callback: Callable[[LoadProgress], None]) -> None:
        self.duration = duration
        self.callback = callback
        #: per process: (elapsed, requests, errors, histogram, current rate)
        self.snapshots: dict[int, tuple[float, int, int, Histogram, float]] = {}

    def update(
        self, index: int, elapsed: float, requests: int, errors: int, histogram: Histogram
    ) -> None:
        """Record one process's cumulative counts at ``elapsed`` (its own clock)."""
        before = self.snapshots.get(index, (0.0, 0, 0, histogram, 0.0))
        span = elapsed - before[0]
        rate = (requests - before[1]) / span if span > 0 else before[4]
        self.snapshots[index] = (elapsed, requests, errors, histogram, rate)

    def emit(self) -> None:
        """Call the callback with the sum over processes (p99 of the merged histogram)."""
        merged = Histogram()
        for *_, histogram, _ in self.snapshots.values():
            merged.merge(histogram)
        snapshots = self.snapshots.values()
        self.callback(
            LoadProgress(
                elapsed=min(max(s[0] for s in snapshots), self.duration),
                duration=self.duration,
                requests=sum(s[1] for s in snapshots),
                errors=sum(s[2] for s in snapshots),
                rate=sum(s[4] for s in snapshots),
                p99_ms=merged.percentile(99) / 1000,
            )
        )


def run_load(
    config: LoadConfig, progress: Callable[[LoadProgress], None] | None = None
) -> LoadResult:
    """Run the load described by ``config``; ``progress`` is called about twice a second.

    With one process the workers run in this thread's new event loop; with more, each
    process runs its share in its own loop and the parent merges their tallies (the
    histograms merge exactly). Blocks for about ``config.duration``.
    """
    split = config.split()
    view = _Progress(config.duration, progress) if progress is not None else None
    if len(split) == 1:

        def report(elapsed: float, tally: _Tally) -> None:
            if view is not None:
                requests, errors = sum(tally.statuses.values()), sum(tally.errors.values())
                view.update(0, elapsed, requests, errors, tally.histogram)
                view.emit()

        tally = _run_in_loop(_run_workers(config, split[0], report))
        return _result(config, 1, [tally])
    return _result(config, len(split), _run_processes(config, split, view))


def _run_processes(config: LoadConfig, split: list[int], view: _Progress | None) -> list[_Tally]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    go = context.Event()
    children = [
        context.Process(target=_child, args=(config, n, i, out, go), daemon=True)
        for i, n in enumerate(split)
    ]
    for child in children:
        child.start()
    tallies: dict[int, _Tally] = {}
    ready = 0
    try:
        while len(tallies) < len(children):
            try:
                kind, index, data = out.get(timeout=0.25)
            except queue_module.Empty:
                dead = [c for c in children if c.exitcode is not None]
                if dead and out.empty():
                    raise RuntimeError(
                        f"a load process exited unexpectedly (exit code {dead[0].exitcode})"
                    ) from None
                continue
            if kind == "ready":
                ready += 1
                if ready == len(children):
                    go.set()
            elif kind == "progress" and view is not None:
                elapsed, requests, errors, histogram = data
                view.update(index, elapsed, requests, errors, Histogram.from_dict(histogram))
                if index == 0:
                    view.emit()
            elif kind == "done":
                tallies[index] = _Tally.from_dict(data)
            elif kind == "failed":
                raise RuntimeError(f"load process {index} failed: {data}")
    finally:
        for child in children:
            child.join(timeout=1 if len(tallies) == len(children) else 0)
            if child.is_alive():
                child.terminate()
                child.join()
        out.close()
        out.join_thread()
    return [tallies[i] for i in sorted(tallies)]


def _result(config: LoadConfig, processes: int, tallies: list[_Tally]) -> LoadResult:
    histogram = Histogram()
    statuses: dict[int, int] = {}
    errors: dict[str, int] = {}
    for tally in tallies:
        histogram.merge(tally.histogram)
        for status, count in tally.statuses.items():
            statuses[int(status)] = statuses.get(int(status), 0) + count
        for kind, count in tally.errors.items():
            errors[kind] = errors.get(kind, 0) + count
    return LoadResult(
        config=config,
        processes=processes,
        elapsed=max(t.elapsed for t in tallies),
        histogram=histogram,
        statuses=statuses,
        errors=errors,
        connects=sum(t.connects for t in tallies),
        retries=sum(t.retries for t in tallies),
        body_bytes=sum(t.body_bytes for t in tallies),
    )
