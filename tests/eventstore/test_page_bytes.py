"""Pages of the log are bounded in bytes as well as in events, on every adapter: a log
of a few events near the store's 1 MiB limit among many small ones is read in pages
whose events hold at most the budget (unless a page is a single larger event), every
event once and in order, by ``read_page``, ``subscribe_pages`` and ``scan_all``; and the
rows are read one by one, so a read of many large events never holds them all."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import os
import tracemalloc
from typing import Any

import pytest

from oddstream.eventstore import ANY, EventStore, NewEvent, ReadPage, RecordedEvent
from oddstream.eventstore.base import ReadFilter

DEFAULT_PAGE_MAX_BYTES = 8 << 20  # the documented default (spelled out: older code has none)

BUDGET = 512 << 10
#: data of about this many bytes: larger than the budget alone, or two not fitting in one
BIG = (900_000, 600_001, 300_000, 300_001)


def big(size: int) -> dict[str, Any]:
    """About ``size`` bytes of data: compressible (PostgreSQL stores it compressed, and
    counts it by an upper bound) for even sizes, random for odd ones."""
    if size % 2:
        return {"blob": base64.b64encode(os.urandom(size * 3 // 4)).decode()}
    return {"blob": "x" * size}


async def fill(store: EventStore) -> int:
    """Small events, big ones alone and in runs, on two streams; the head."""
    head = 0
    for round_ in range(3):
        for size in BIG:
            result = await store.append(
                "big-1", [NewEvent("t.Small", {"i": i}) for i in range(40)], ANY
            )
            result = await store.append("big-1", [NewEvent("t.Big", big(size))], ANY)
            result = await store.append(
                "other-1", [NewEvent("t.Big", big(size)), NewEvent("t.Big", big(size))], ANY
            )
        result = await store.append(
            "big-1", [NewEvent("t.Small", {"r": round_, "i": i}) for i in range(500)], ANY
        )
        head = result.last_position
    return head


def check_pages(pages: list[ReadPage], head: int, budget: int = BUDGET) -> None:
    positions = [e.position for page in pages for e in page.events]
    assert positions == list(range(1, head + 1))  # every event once, in order
    for page in pages:
        sizes = [e.size for e in page.events]
        assert page.nbytes == sum(sizes)
        assert page.nbytes <= budget or len(page.events) == 1, (len(sizes), page.nbytes)
        if page.events:
            assert page.position >= page.events[-1].position
    assert any(len(p.events) == 1 and p.nbytes > budget for p in pages)  # alone
    assert any(len(p.events) > 1 and max(e.size for e in p.events) > 200_000 for p in pages)


async def test_read_page_stops_at_the_byte_budget(store_factory: Any) -> None:
    store = await store_factory(page_max_bytes=BUDGET)
    try:
        head = await fill(store)
        pages, after = [], 0
        while after < head:
            page = await store.read_page(after, 3000)
            pages.append(page)
            after = page.position
        check_pages(pages, head)
        # an explicit budget wins over the store's; the count limit still applies
        small = await store.read_page(0, 5, max_bytes=1 << 30)
        assert len(small.events) == 5
        assert small.position == 5
        everything = await store.read_page(0, 3000, max_bytes=1 << 30)
        assert len(everything.events) == min(head, 3000)
    finally:
        await store.close()


async def test_a_filtered_read_page_stops_at_the_byte_budget(store_factory: Any) -> None:
    store = await store_factory(page_max_bytes=BUDGET)
    try:
        await fill(store)
        expected = [e.position async for e in store.scan_all(category="big", max_bytes=1 << 30)]
        got, after, head = [], 0, await store.head_position()
        while after < head:
            page = await store.read_page(after, 3000, category="big")
            assert page.nbytes <= BUDGET or len(page.events) == 1
            got += [e.position for e in page.events]
            after = page.position
        assert got == expected
    finally:
        await store.close()


async def test_subscribe_pages_catches_up_then_follows_within_the_budget(
    store_factory: Any,
) -> None:
    store = await store_factory(page_max_bytes=BUDGET)
    try:
        head = await fill(store)
        pages: list[ReadPage] = []

        async def follow(until: int) -> None:
            async with contextlib.aclosing(store.subscribe_pages(batch_size=3000)) as sub:
                async for page in sub:
                    pages.append(page)
                    if page.position >= until:
                        return

        last = head + 4
        reader = asyncio.create_task(follow(last))
        await asyncio.sleep(0.05)
        live = [NewEvent("t.Big", big(size)) for size in (700_001, 400_000)]
        await store.append("big-2", live, ANY)
        await store.append("big-2", [NewEvent("t.Small", {}), NewEvent("t.Small", {})], ANY)
        await asyncio.wait_for(reader, 20)
        check_pages(pages, last)
    finally:
        await store.close()


async def test_scan_all_reads_in_budgeted_pages(store_factory: Any) -> None:
    store = await store_factory(page_max_bytes=BUDGET)
    try:
        head = await fill(store)
        reads: list[tuple[int, int]] = []
        real = store._read_page

        async def spy(*args: Any, **kwargs: Any) -> Any:
            page = await real(*args, **kwargs)
            reads.append((len(page.events), page.nbytes))
            return page

        store._read_page = spy  # type: ignore[method-assign]
        try:
            positions = [e.position async for e in store.scan_all(batch_size=3000)]
        finally:
            del store._read_page
        assert positions == list(range(1, head + 1))
        assert all(nbytes <= BUDGET or n == 1 for n, nbytes in reads)
    finally:
        await store.close()


async def test_a_page_read_holds_no_more_than_its_budget(store_factory: Any) -> None:
    """The rows are taken one by one: a page of up to 3,000 read from a log of 40 events
    of 500 KB each (20 MB) holds about the default budget (8 MiB), not the whole log
    (Python's allocations; libpq's own buffer holds a chunk of rows besides). Before the
    budget, the page held all 40 events."""
    store = await store_factory()
    try:
        for _ in range(20):
            await store.append("big-1", [NewEvent("t.Big", big(500_001))] * 2, ANY)
        head = await store.head_position()
        flt = ReadFilter()
        await store._read_page(head - 1, 3000, flt)  # connections and statements made
        for from_memory in (True, False):
            if not from_memory and store.backend == "sqlite":
                store._recent.clear()  # type: ignore[attr-defined]  # the database path
            gc.collect()
            tracemalloc.start()
            try:
                page = await store._read_page(0, 3000, flt)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            events = page[0]
            assert 1 < len(events) < head
            assert sum(e.size for e in events) <= DEFAULT_PAGE_MAX_BYTES
            assert peak < DEFAULT_PAGE_MAX_BYTES + (2 << 20), peak  # the log is 20 MB
            del page, events
    finally:
        await store.close()


def test_an_event_reports_the_size_a_page_counts() -> None:
    row = (1, "s-1", 1, b"\0" * 16, "t.X", 1, b'{"a":1}', b"{}", 0)
    assert RecordedEvent.from_row(row).size == len(b'{"a":1}') + len(b"{}")


@pytest.mark.parametrize("bad", [0, -1, 1.5, "8"])
async def test_a_bad_budget_is_refused(store_factory: Any, bad: Any) -> None:
    store = await store_factory()
    try:
        with pytest.raises(ValueError, match="page_max_bytes"):
            await store.read_page(0, 10, max_bytes=bad)
    finally:
        await store.close()


@pytest.mark.parametrize(("floats", "events"), [(3000, 60), (20, 300)])
async def test_events_that_render_far_larger_than_stored_are_cut_before_they_are_sent(
    store_factory: Any, floats: int, events: int
) -> None:
    """PostgreSQL renders a stored jsonb number in full: ``1e308`` (5 bytes of JSON, a
    few stored, compressed to almost nothing when repeated) comes back as 309 digits.
    An event of 3,000 of them is ~20 KB appended and ~930 KB read; with the budget at
    1 MiB a page must hold about the budget, plus the one event that crosses it, not
    every such event the server's estimate of their stored sizes let through (~5 of
    them once fetched: a bound from stored sizes is no bound on what they render to).
    An event of 20 is ~250 bytes stored, under a 3,000th of the budget, and 6 KB read:
    a page of 3,000 of those is not 18 MB. On SQLite they are read as appended."""
    store = await store_factory(page_max_bytes=1 << 20)
    try:
        for _ in range(0, events, 5):
            await store.append(
                "bomb-1", [NewEvent("t.Floats", {"v": [1e308] * floats}) for _ in range(5)], ANY
            )
        flt = ReadFilter()
        first = await store._read_page(0, 3000, flt)  # connections and statements made
        largest = max(e.size for e in first.events)
        del first
        gc.collect()
        tracemalloc.start()
        try:
            page = await store._read_page(0, 3000, flt)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        if store.backend == "postgres":
            assert page.full
        assert page.nbytes <= (1 << 20) or len(page.events) == 1
        # what was fetched: the page, the one event that did not fit, and some slack
        assert peak < (1 << 20) + largest + (512 << 10), (peak, largest)
        del page
        pages, after = [], 0
        while after < events:  # the whole log, every event once, each page within budget
            pages.append(await store.read_page(after, 3000))
            after = pages[-1].position
        assert [e.position for p in pages for e in p.events] == list(range(1, events + 1))
        assert all(p.nbytes <= (1 << 20) or len(p.events) == 1 for p in pages)
    finally:
        await store.close()
