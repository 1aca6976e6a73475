"""At the request limit the ingest's CPU work does not hold the event loop: splitting a
large body and decoding a large call run on a worker thread, small ones inline (the log
is a stub here). How the work grows with a request's size is measured by
``bench/ingest.py``, not here."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from domain.quotes.samples import QUOTE_STARTED
from oddstream.application.quotes import QuoteIngest, ndjson_lines
from oddstream.application.quotes import requests as quote_requests
from oddstream.application.quotes.requests import JSON, post_events

from .stubs import EmptyLog


def _spy(calls: list[int], work: Callable[..., Any]) -> Callable[..., Any]:
    """``work``, noting the thread each call runs on."""

    def spied(*args: Any, **kwargs: Any) -> Any:
        calls.append(threading.get_ident())
        return work(*args, **kwargs)

    return spied


async def test_splitting_a_large_body_runs_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # splitting a deeply nested body is CPU work of seconds at the size limit; on the
    # event loop it stalled every other request (5 s for a 16 MiB nested body)
    calls: list[int] = []
    monkeypatch.setattr(quote_requests, "messages_of", _spy(calls, quote_requests.messages_of))
    loop_thread = threading.get_ident()
    await post_events(QuoteIngest(EmptyLog()), JSON, b"[" + b"{" * (1 << 20))  # type: ignore[arg-type]
    await post_events(QuoteIngest(EmptyLog()), JSON, b"[]")  # type: ignore[arg-type]
    assert calls[0] != loop_thread  # the large body: on a worker thread
    assert calls[1] == loop_thread  # a small one inline (a thread costs more than it)


async def test_decoding_a_large_call_runs_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # decoding thousands of events stalled every other request (2.2 s for 10,000)
    calls: list[int] = []
    monkeypatch.setattr(QuoteIngest, "_check_all", _spy(calls, QuoteIngest._check_all))
    loop_thread = threading.get_ident()
    start = json.loads(QUOTE_STARTED)
    body = b"\n".join(json.dumps({**start, "id": f"s{i}"}).encode() for i in range(1000))
    outcomes = await QuoteIngest(EmptyLog()).ingest(list(ndjson_lines(body)))  # type: ignore[arg-type]
    assert [o.status for o in outcomes] == ["stored"] * 1000
    one = json.dumps(start).encode()
    await QuoteIngest(EmptyLog()).ingest(list(ndjson_lines(one)))  # type: ignore[arg-type]
    assert calls[0] != loop_thread
    assert calls[1] == loop_thread
