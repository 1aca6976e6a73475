"""Regression tests from the review of the consumer runner: a rebuild racing a commit, a
recovery that fails, a stop during a rebuild, two instances sharing one checkpoint."""

from __future__ import annotations

import asyncio
import contextlib

from oddstream.consumers import (
    Batch,
    Consumer,
    ConsumerRunner,
    MemoryCheckpoint,
    StoreCheckpoint,
    Subscription,
)
from oddstream.eventstore import EventStore

from .test_runner import WAIT, Counter, put, until, until_async


class Recorder(Consumer):
    """Records every position it is given and every batch whose events lie outside
    ``(after, position]`` (the batch contract), without raising."""

    name = "toy-recorder"
    subscription = Subscription(stream_prefix="count-")

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.outside: list[tuple[int, int, int]] = []
        self.resets = 0
        self.fail_resets = 0
        self.block: asyncio.Event | None = None
        self.blocked = asyncio.Event()

    async def handle(self, batch: Batch) -> None:
        if self.block is not None and batch.replaying:
            self.blocked.set()
            await self.block.wait()
        for event in batch.events:
            if not batch.after < event.position <= batch.position:
                self.outside.append((batch.after, event.position, batch.position))
        self.seen += [e.position for e in batch.events]

    async def reset(self) -> None:
        if self.fail_resets:
            self.fail_resets -= 1
            raise ConnectionError("the sink is restarting")
        self.resets += 1
        self.seen = []


async def test_rebuild_gives_an_event_committed_as_it_starts_once(store: EventStore) -> None:
    """rebuild() reads the head, then scan_all reads it again: an event committed in
    between is handled in the rebuild's last batch, whose position must cover it; else
    the follower is given it again (a bet counted twice on the tote view's pools)."""
    await put(store, "count-a", 3)
    consumer = Recorder()
    runner = ConsumerRunner(store, consumer, MemoryCheckpoint())
    await runner.start()
    try:
        assert await runner.wait_caught_up(WAIT)
        real_head = store.head_position
        looks = 0

        async def head_then_a_commit() -> int:
            nonlocal looks
            looks += 1
            head = await real_head()
            if looks == 1:  # the rebuild's own look at the head: a commit lands after it
                await put(store, "count-a", 1)
            return head

        store.head_position = head_then_a_commit  # type: ignore[method-assign]
        try:
            await runner.rebuild()
        finally:
            del store.head_position
        assert await runner.wait_for(4, WAIT)
        await put(store, "count-a", 1)
        assert await runner.wait_for(5, WAIT)
        assert consumer.outside == []
        assert consumer.seen == [1, 2, 3, 4, 5]
    finally:
        await runner.stop()


async def test_a_recovery_that_fails_is_retried_not_the_end_of_the_follower(
    store: EventStore,
) -> None:
    """After a checkpoint conflict the runner resets the consumer and reloads its
    checkpoint; if that fails (the sink is restarting, the store blips), it must be
    tried again with back-off, not end the follower silently for good."""
    await put(store, "count-a", 2)
    consumer = Recorder()
    runner = ConsumerRunner(
        store, consumer, StoreCheckpoint(every=0, fenced=True), max_backoff=0.05
    )
    await runner.start()
    try:
        assert await runner.wait_for(2, WAIT)
        assert await until_async(lambda: store.get_checkpoint("toy-recorder"), 2)
        consumer.fail_resets = 1
        await store.save_checkpoint("toy-recorder", 5)  # another instance moved it
        await put(store, "count-a", 6)  # positions 3..8
        assert await until(lambda: runner.position == 8 and runner.caught_up)
        assert consumer.seen == [6, 7, 8]
        assert runner.failures >= 1
    finally:
        await runner.stop()


async def test_stop_during_a_rebuild_leaves_no_follower_running(store: EventStore) -> None:
    """stop() while a rebuild() runs: once the rebuild ends, nothing may follow the log
    for a runner that says it is stopped."""
    await put(store, "count-a", 3)
    consumer = Recorder()
    runner = ConsumerRunner(store, consumer, MemoryCheckpoint())
    await runner.start()
    assert await runner.wait_caught_up(WAIT)
    consumer.block = asyncio.Event()
    rebuilding = asyncio.create_task(runner.rebuild())
    async with asyncio.timeout(WAIT):
        await consumer.blocked.wait()
    await runner.stop()
    consumer.block.set()
    await rebuilding
    await put(store, "count-a", 1)
    await asyncio.sleep(0.3)
    followers = [t for t in asyncio.all_tasks() if t.get_name() == "consumer-toy-recorder"]
    try:
        assert followers == []
        assert consumer.seen == [1, 2, 3]  # the event after stop() is not handled
    finally:
        for task in followers:
            task.cancel()


async def test_two_instances_sharing_a_store_checkpoint_do_not_recover_forever(
    store: EventStore,
) -> None:
    """Two app processes on one PostgreSQL store run the same consumers under the same
    names (the cashier's ``process-wallet-cashier``, the Kafka bridge's checkpoint). A
    store checkpoint saved with ``expected=`` then conflicts on nearly every save of one
    of them: each conflict resets the consumer, moves its position back and marks it
    rebuilding, for as long as both run."""
    first, second = Counter(), Counter()
    runners = [
        ConsumerRunner(store, consumer, StoreCheckpoint(every=0.05), max_backoff=0.05)
        for consumer in (first, second)
    ]
    for runner in runners:
        await runner.start()
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + 1.5
        while loop.time() < end:
            await put(store, "count-a", 1)
            await asyncio.sleep(0.02)
        recoveries = [runner.recoveries for runner in runners]
        assert sum(recoveries) <= 1, f"recoveries {recoveries}"
    finally:
        for runner in runners:
            await runner.stop()


class Swallower(Recorder):
    """Its ``check`` loses a cancellation, as ``asyncio.wait_for`` does on 3.11 when the
    awaited call completes as the cancellation arrives (redis-py's commands use it)."""

    def __init__(self) -> None:
        super().__init__()
        self.checking = asyncio.Event()

    async def check(self) -> None:
        self.checking.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.2)


async def test_rebuild_does_not_wait_for_ever_for_a_follower_that_lost_its_cancel(
    store: EventStore,
) -> None:
    """rebuild() cancels the follower and waits for it: a cancellation lost inside the
    consumer's storage client must not leave the follower running and the rebuild
    waiting for ever (tests/projections' redis-rebuild case hung this way)."""
    await put(store, "count-a", 3)
    consumer = Swallower()
    runner = ConsumerRunner(store, consumer, MemoryCheckpoint(), check_every=0.05)
    await runner.start()
    rebuilding: asyncio.Task[int] | None = None
    try:
        assert await runner.wait_caught_up(WAIT)
        consumer.checking.clear()
        async with asyncio.timeout(WAIT):
            await consumer.checking.wait()
        rebuilding = asyncio.create_task(runner.rebuild())
        done, _ = await asyncio.wait({rebuilding}, timeout=3)
        assert rebuilding in done, "rebuild() still waits for the follower"
        assert rebuilding.result() == 3
        assert consumer.seen == [1, 2, 3]
    finally:
        if rebuilding is not None and not rebuilding.done():  # a hung rebuild: free it
            for task in asyncio.all_tasks():
                if task.get_name() == "consumer-toy-recorder":
                    task.cancel()
            await asyncio.wait({rebuilding}, timeout=WAIT)
        await runner.stop()
