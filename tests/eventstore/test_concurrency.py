"""Many writers on shared streams, several store instances, a live subscriber: nothing
lost, nothing repeated, no lost update, conflicts reported as WrongExpectedVersion."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from oddstream.eventstore import EventStore, NewEvent, WrongExpectedVersion

WRITERS = 10
APPENDS = 100
EVENTS = 10
STREAMS = 4
INSTANCES = 3  # writers share instances: group commit within one, lock contention across

pytestmark = pytest.mark.slow


async def _writer(store: EventStore, writer: int, rng: random.Random) -> tuple[int, list]:
    conflicts = 0
    done = []
    for seq in range(APPENDS):
        stream = f"shared-{rng.randrange(STREAMS)}"
        events = [NewEvent("Wrote", {"w": writer, "s": seq, "k": k}) for k in range(EVENTS)]
        while True:
            version = await store.stream_version(stream)
            try:
                result = await store.append(stream, events, version)
                break
            except WrongExpectedVersion:
                conflicts += 1  # someone else appended first: re-read and try again
        done.append((stream, result))
    return conflicts, done


async def _subscriber(store: EventStore, total: int) -> list:
    seen = []
    async for event in store.subscribe_all(batch_size=257):
        seen.append(event)
        if len(seen) == total:
            return seen
    return seen


async def test_concurrent_writers_and_a_live_subscriber(store_factory) -> None:
    stores = [await store_factory() for _ in range(INSTANCES)]
    watcher = await store_factory()
    try:
        total = WRITERS * APPENDS * EVENTS
        sub = asyncio.create_task(_subscriber(watcher, total))
        outcomes = await asyncio.gather(
            *(_writer(stores[w % INSTANCES], w, random.Random(w)) for w in range(WRITERS))
        )
        async with asyncio.timeout(60):
            seen = await sub

        # The subscriber saw every position once, in order, with no gap.
        assert [e.position for e in seen] == list(range(1, total + 1))
        assert len({e.event_id for e in seen}) == total

        # Every acknowledged append is there, whole and contiguous.
        keys = Counter((e.data["w"], e.data["s"], e.data["k"]) for e in seen)
        assert len(keys) == total
        assert set(keys.values()) == {1}
        by_position = {e.position: e for e in seen}
        per_stream = Counter()
        for _, done in outcomes:
            for stream, result in done:
                chunk = [by_position[p] for p in result.positions]
                assert {e.stream_id for e in chunk} == {stream}
                assert [e.version for e in chunk] == list(
                    range(result.version - EVENTS + 1, result.version + 1)
                )
                per_stream[stream] += EVENTS

        # No lost update: each stream is exactly the acknowledged appends, versions 1..n.
        for stream, count in per_stream.items():
            stored = await watcher.read_stream(stream)
            assert [e.version for e in stored] == list(range(1, count + 1))
        conflicts = sum(c for c, _ in outcomes)
        assert conflicts > 0, "shared streams under 10 writers should have conflicted"
    finally:
        for s in [*stores, watcher]:
            await s.close()
