"""The ingest's own work grows linearly with a request's size, and at the request limit
it does not hold the event loop for seconds (the log is a stub here, so only the
ingest's work is timed)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from domain.quotes.samples import QUOTE_STARTED
from oddstream.application.quotes import QuoteIngest, ndjson_lines
from oddstream.application.quotes.requests import JSON, MAX_EVENTS_PER_REQUEST, post_events
from oddstream.eventstore import AppendResult, StreamAppend


class _EmptyLog:
    """A log with no quote in it that takes every append (as an event store does)."""

    async def read_stream(self, *_: Any, **__: Any) -> list[Any]:
        return []

    async def read_requests(self, *_: Any, **__: Any) -> list[Any]:
        return []

    async def append_many(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        return [AppendResult(a.stream_id, 1, i + 1, i + 1) for i, a in enumerate(appends)]


async def test_a_full_request_of_distinct_quotes_is_ingested_in_linear_time():
    n = MAX_EVENTS_PER_REQUEST
    body = b"\n".join(b'{"quoteId": "q%d", "products": []}' % i for i in range(n))
    messages = list(ndjson_lines(body))
    began = time.perf_counter()
    outcomes = await QuoteIngest(_EmptyLog()).ingest(messages)  # type: ignore[arg-type]
    took = time.perf_counter() - began
    assert [o.reason for o in outcomes] == ["unknown_quote"] * n
    # linear: under a second on a developer's machine; the quadratic grouping it had
    # took 4.5 s here with these tiny events, and twice that with realistic ones
    assert took < 2.5, f"{n} messages took {took:.1f} s"


async def _longest_stall(work: Any) -> float:
    """The longest the event loop went without running a 1 ms ticker during ``work``."""
    gaps: list[float] = []

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.01)
    try:
        await work
        await asyncio.sleep(0.01)  # the ticker's next run measures a stall at the end
    finally:
        ticker.cancel()
    return max(gaps)


async def test_a_large_request_does_not_hold_the_event_loop():
    # splitting a deeply nested body and decoding thousands of events are CPU work of
    # seconds at the limits; on the event loop they stalled every other request (2.2 s
    # for 10,000 events, 5 s for a 16 MiB nested body)
    deep = b"[" + b"{" * (4 << 20)
    stall = await _longest_stall(post_events(QuoteIngest(_EmptyLog()), JSON, deep))  # type: ignore[arg-type]
    assert stall < 0.3, f"the loop stalled {stall:.2f} s splitting"
    start = json.loads(QUOTE_STARTED)
    body = b"\n".join(json.dumps({**start, "id": f"s{i}"}).encode() for i in range(8000))
    messages = list(ndjson_lines(body))
    stall = await _longest_stall(QuoteIngest(_EmptyLog()).ingest(messages))  # type: ignore[arg-type]
    assert stall < 0.3, f"the loop stalled {stall:.2f} s decoding"
