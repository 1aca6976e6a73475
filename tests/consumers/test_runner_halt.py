"""The runner's hooks for sinks: a consumer that halts (FAILED, position kept), a
consumer's own retry delays, and a first load retried instead of failing ``start``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from oddstream.consumers import (
    Batch,
    Consumer,
    ConsumerRunner,
    Halt,
    MemoryCheckpoint,
    RunnerState,
    SinkCheckpoint,
    Subscription,
)
from oddstream.eventstore import NewEvent
from oddstream.eventstore.sqlite import SqliteEventStore

pytestmark = pytest.mark.timeout(30)


class Halting(Consumer):
    name = "halting"
    subscription = Subscription(stream_prefix="s-")

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.delays: list[int] = []

    async def handle(self, batch: Batch) -> None:
        for event in batch.events:
            if event.data.get("bad"):
                raise Halt(f"cannot take the event at {event.position}")
            self.seen.append(event.position)

    def retry_delay(self, failures: int) -> float | None:
        self.delays.append(failures)
        return 0.01


async def test_halt_fails_the_runner_and_keeps_the_position(tmp_path: Path) -> None:
    store = await SqliteEventStore.open(tmp_path / "e.db")
    try:
        await store.append("s-1", [NewEvent("E", {})])
        consumer = Halting()
        runner = ConsumerRunner(store, consumer, MemoryCheckpoint(), batch_size=1)
        await runner.start()
        assert await runner.wait_for(1, 5)
        await store.append("s-1", [NewEvent("E", {"bad": True})])
        for _ in range(100):
            if runner.state is RunnerState.FAILED:
                break
            await asyncio.sleep(0.02)
        assert runner.state is RunnerState.FAILED
        assert runner.position == 1
        assert "cannot take the event at 2" in (runner.last_error or "")
        assert runner.failures == 0  # a halt is not retried
        await runner.stop()
        assert runner.state is RunnerState.STOPPED
    finally:
        await store.close()


class Flaky(Consumer):
    """A sink whose storage is unreachable for its first loads and batches."""

    name = "flaky"

    def __init__(self) -> None:
        self.loads = 0
        self.batches = 0
        self.delays: list[int] = []
        self.handled: list[int] = []

    async def stored_position(self) -> int | None:
        self.loads += 1
        if self.loads < 3:
            raise OSError("unreachable")
        return 0

    async def handle(self, batch: Batch) -> None:
        self.batches += 1
        if self.batches < 3:
            raise OSError("unreachable")
        self.handled += [e.position for e in batch.events]

    def retry_delay(self, failures: int) -> float | None:
        self.delays.append(failures)
        return 0.01


async def test_first_load_retried_and_consumer_delays_used(tmp_path: Path) -> None:
    store = await SqliteEventStore.open(tmp_path / "e.db")
    try:
        await store.append("s-1", [NewEvent("E", {})])
        consumer = Flaky()
        with pytest.raises(OSError, match="unreachable"):  # without retry_load: as before
            await ConsumerRunner(store, consumer, SinkCheckpoint()).start()
        runner = ConsumerRunner(store, consumer, SinkCheckpoint(), retry_load=True)
        await runner.start()  # does not raise: the follower loads it again
        assert await runner.wait_for(1, 5)
        assert consumer.handled == [1]
        assert consumer.loads == 3
        # failures in a row at one position: the second load's (1; the first was the
        # runner without retry_load), then the batch's two (2, 3)
        assert consumer.delays == [1, 2, 3]
        assert runner.failures == 3
        await runner.stop()
    finally:
        await store.close()


async def test_start_after_a_halt_tries_the_batch_again(tmp_path: Path) -> None:
    """Halt's promise: starting the runner again (no stop needed) gives the batch again."""
    store = await SqliteEventStore.open(tmp_path / "e.db")
    try:
        await store.append("s-1", [NewEvent("E", {}), NewEvent("E", {"bad": True})])
        consumer = Halting()
        runner = ConsumerRunner(store, consumer, MemoryCheckpoint(), batch_size=1)
        await runner.start()
        for _ in range(100):
            if runner.state is RunnerState.FAILED:
                break
            await asyncio.sleep(0.02)
        assert runner.state is RunnerState.FAILED
        assert consumer.seen == [1]
        consumer.handle = _taking(consumer)  # type: ignore[method-assign]  # fixed
        await runner.start()
        assert await runner.wait_for(2, 5)
        assert consumer.seen == [1, 2]
        assert runner.state is not RunnerState.FAILED
        await runner.stop()
    finally:
        await store.close()


def _taking(consumer: Halting) -> Callable[[Batch], Awaitable[None]]:
    async def handle(batch: Batch) -> None:
        consumer.seen += [e.position for e in batch.events]

    return handle
