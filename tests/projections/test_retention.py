"""The read-back cache the tote and odds views share (``projections/retention.py``): a
read of an entity's stream begun before the entity changed is neither kept nor shared
with a reader that comes after the change."""

from __future__ import annotations

import asyncio

from oddstream.projections.retention import ReadBack


async def test_a_read_under_way_when_the_entity_changes_is_not_kept_nor_shared() -> None:
    cache: ReadBack[str, str] = ReadBack(4)
    gate = asyncio.Event()
    reads: list[str] = []

    async def before_the_change() -> str:
        reads.append("before")
        await gate.wait()
        return "before"

    async def after_the_change() -> str:
        reads.append("after")
        return "after"

    def keep(_: str) -> bool:
        return True

    early = asyncio.create_task(cache.get("k", before_the_change, keep))
    await asyncio.sleep(0)
    cache.drop("k")  # the entity changed (an event applied) while it was being read
    # a reader after the change reads afresh, not the read begun before it
    after = await asyncio.wait_for(cache.get("k", after_the_change, keep), 5)
    assert after == "after"
    gate.set()
    assert await early == "before"  # it asked before the change
    # and what is kept is the read after the change
    assert await cache.get("k", before_the_change, keep) == "after"
    assert reads == ["before", "after"]


async def test_a_read_done_but_not_yet_taken_when_the_entity_changes_is_not_kept() -> None:
    cache: ReadBack[str, str] = ReadBack(4)
    done = asyncio.Event()

    async def before_the_change() -> str:
        done.set()
        return "before"

    async def after_the_change() -> str:
        return "after"

    early = asyncio.create_task(cache.get("k", before_the_change, lambda _: True))
    await done.wait()  # the read returned; its reader has not resumed yet
    cache.drop("k")
    assert await early == "before"
    assert await cache.get("k", after_the_change, lambda _: True) == "after"


async def test_concurrent_reads_share_one_read_and_failures_are_not_kept() -> None:
    cache: ReadBack[str, str] = ReadBack(1)
    gate = asyncio.Event()
    reads = 0

    async def read() -> str:
        nonlocal reads
        reads += 1
        await gate.wait()
        return "v"

    tasks = [asyncio.create_task(cache.get("k", read, lambda _: True)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*tasks) == ["v"] * 5
    assert reads == 1
    assert len(cache) == 1
    assert await cache.get("other", read, lambda _: False) == "v"  # not kept
    assert len(cache) == 1
