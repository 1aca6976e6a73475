"""The consumer runner against toy consumers, on every store adapter: restart, a crash
between a batch and its checkpoint, a failed batch given again, a wiped sink rebuilt, a
checkpoint conflict, snapshots, floors, batching and the caught-up signal."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Sequence

import pytest

from oddstream.consumers import (
    Batch,
    Consumer,
    ConsumerGroup,
    ConsumerRunner,
    MemoryCheckpoint,
    RunnerState,
    SinkCheckpoint,
    SnapshotCheckpoint,
    StartOver,
    StoreCheckpoint,
    Subscription,
)
from oddstream.eventstore import ANY, CheckpointConflict, EventStore, NewEvent

WAIT = 10.0


async def until(condition: Callable[[], bool]) -> bool:
    """Whether ``condition()`` became true within :data:`WAIT` (checked every 20 ms)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def until_async(read: Callable[[], Awaitable[int]], value: int) -> bool:
    """Whether ``await read()`` came to ``value`` within :data:`WAIT`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while await read() != value:
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def put(store: EventStore, stream: str, n: int, kind: str = "t.Counted") -> int:
    """Append ``n`` events to ``stream``; the last position."""
    result = await store.append(stream, [NewEvent(kind, {"i": i}) for i in range(n)], ANY)
    return result.last_position


class Counter(Consumer):
    """Counts ``count-*`` events in memory; ``fail`` makes the next handles raise."""

    name = "toy-counter"
    subscription = Subscription(stream_prefix="count-")

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.batches: list[Batch] = []
        self.fail = 0
        self.resets = 0
        self.open_from: int | None = None

    async def handle(self, batch: Batch) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("the sink said no")
        assert all(batch.after < e.position <= batch.position for e in batch.events)
        self.batches.append(batch)
        self.seen += [e.position for e in batch.events]

    async def reset(self) -> None:
        self.resets += 1
        self.seen = []

    def floor(self) -> int | None:
        return self.open_from

    # a snapshot consumer too
    def snapshot(self) -> bytes:
        return json.dumps(self.seen).encode()

    def restore(self, parts: Sequence[bytes]) -> bool:
        self.seen = json.loads(b"".join(parts))
        return True


class Sink(Consumer):
    """Keeps its rows and its position together, as one database would (``table``);
    ``wipe()`` is a FLUSHALL."""

    name = "toy-sink"
    subscription = Subscription(stream_prefix="count-")

    def __init__(self, table: dict[str, object]) -> None:
        self.table = table
        self.committed = 0
        self.crash_after_write = False

    async def stored_position(self) -> int | None:
        found = self.table.get("position")
        self.committed = found if isinstance(found, int) else 0
        return found if isinstance(found, int) else None

    async def handle(self, batch: Batch) -> None:
        if self.table.get("position", 0) != self.committed:
            raise CheckpointConflict(self.name, self.committed, self.table.get("position"))  # type: ignore[arg-type]
        rows = list(self.table.get("rows", []))  # type: ignore[call-overload]
        rows += [e.position for e in batch.events]
        self.table.update(rows=rows, position=batch.position)  # one atomic step
        self.committed = batch.position
        if self.crash_after_write:
            raise asyncio.CancelledError  # the process dies here

    async def reset(self) -> None:
        self.table.clear()
        self.committed = 0

    async def check(self) -> None:
        if self.table.get("position", 0) != self.committed:
            raise CheckpointConflict(self.name, self.committed, self.table.get("position"))  # type: ignore[arg-type]


async def test_catches_up_then_follows_live_skipping_other_streams(store: EventStore) -> None:
    await put(store, "count-a", 5)
    await put(store, "other-b", 3)
    consumer = Counter()
    runner = ConsumerRunner(store, consumer, MemoryCheckpoint(), batch_size=2)
    await runner.start()
    try:
        assert await runner.wait_caught_up(WAIT)
        assert consumer.seen == [1, 2, 3, 4, 5]
        assert runner.position == 8  # passed over the other stream's events
        assert runner.state is RunnerState.LIVE
        last = await put(store, "count-a", 3)
        assert await runner.wait_for(last, WAIT)
        assert consumer.seen == [1, 2, 3, 4, 5, 9, 10, 11]
        assert all(len(b.events) <= 4 for b in consumer.batches)  # pages of 2, joined ≤ 2
    finally:
        await runner.stop()


async def test_restart_resumes_from_the_store_checkpoint(store: EventStore) -> None:
    await put(store, "count-a", 4)
    first = Counter()
    runner = ConsumerRunner(store, first, StoreCheckpoint(every=60))
    await runner.start()
    assert await runner.wait_caught_up(WAIT)
    await runner.stop()  # saves on stop
    assert await store.get_checkpoint("toy-counter") == 4
    await put(store, "count-a", 2)
    second = Counter()
    again = ConsumerRunner(store, second, StoreCheckpoint(every=60))
    await again.start()
    try:
        assert await again.wait_for(6, WAIT)
        assert second.seen == [5, 6]  # nothing before the checkpoint again
    finally:
        await again.stop()


async def test_crash_between_batch_and_checkpoint_gives_the_batch_again(
    store: EventStore,
) -> None:
    """A store checkpoint is at least once: the batch handled before a crash (its
    checkpoint not saved) comes again after the restart, and nothing is missed."""
    await put(store, "count-a", 3)
    await store.save_checkpoint("toy-counter", 1)
    first = Counter()
    runner = ConsumerRunner(store, first, StoreCheckpoint(every=3600))
    await runner.start()
    assert await runner.wait_for(3, WAIT)
    assert first.seen == [2, 3]
    task = runner._task
    assert task is not None
    task.cancel()  # the process dies: no stop(), no final save
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.get_checkpoint("toy-counter") == 1
    second = Counter()
    again = ConsumerRunner(store, second, StoreCheckpoint(every=3600))
    await again.start()
    try:
        assert await again.wait_for(3, WAIT)
        assert second.seen == [2, 3]
    finally:
        await again.stop()


async def test_sink_checkpoint_is_exactly_once_across_a_crash(store: EventStore) -> None:
    """Rows and position in one step: a crash right after the write loses nothing and
    the restart writes nothing twice."""
    table: dict[str, object] = {}
    await put(store, "count-a", 3)
    sink = Sink(table)
    sink.crash_after_write = True
    runner = ConsumerRunner(store, sink, SinkCheckpoint())
    await runner.start()
    task = runner._task
    assert task is not None
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, WAIT)
    assert table == {"rows": [1, 2, 3], "position": 3}
    await put(store, "count-a", 2)
    again = ConsumerRunner(store, Sink(table), SinkCheckpoint())
    await again.start()
    try:
        assert await again.wait_for(5, WAIT)
        assert table == {"rows": [1, 2, 3, 4, 5], "position": 5}
    finally:
        await again.stop()


async def test_a_failed_batch_is_given_again_and_nothing_is_skipped(store: EventStore) -> None:
    await put(store, "count-a", 3)
    consumer = Counter()
    consumer.fail = 2
    runner = ConsumerRunner(store, consumer, MemoryCheckpoint(), max_backoff=0.05)
    await runner.start()
    try:
        assert await runner.wait_for(3, WAIT)
        assert consumer.seen == [1, 2, 3]
        assert runner.failures == 2
        assert "the sink said no" in (runner.last_error or "")
        assert await runner.wait_caught_up(WAIT)
        assert runner.status().last_error is None  # cleared once caught up again
    finally:
        await runner.stop()


async def test_a_wiped_sink_is_rebuilt_from_the_log(store: EventStore) -> None:
    table: dict[str, object] = {}
    await put(store, "count-a", 3)
    sink = Sink(table)
    runner = ConsumerRunner(store, sink, SinkCheckpoint(), check_every=0.05)
    await runner.start()
    try:
        assert await runner.wait_for(3, WAIT)
        table.clear()  # FLUSHALL
        await put(store, "count-a", 1)
        assert await until(lambda: table.get("position") == 4)
        assert table["rows"] == [1, 2, 3, 4]
        assert runner.recoveries == 1
    finally:
        await runner.stop()


async def test_a_checkpoint_conflict_reloads_from_what_is_stored(store: EventStore) -> None:
    """Another instance moved the checkpoint: this one forgets what it holds and goes on
    from the stored position, instead of overwriting it."""
    await put(store, "count-a", 2)
    consumer = Counter()
    runner = ConsumerRunner(store, consumer, StoreCheckpoint(every=0, fenced=True))
    await runner.start()
    try:
        assert await runner.wait_for(2, WAIT)
        assert await until_async(lambda: store.get_checkpoint("toy-counter"), 2)
        await store.save_checkpoint("toy-counter", 5)  # someone else, further on
        await put(store, "count-a", 6)  # positions 3..8
        # the conflict shows when this instance next saves (after its batch): it then
        # forgets, and handles again from the stored position
        assert await until(
            lambda: runner.recoveries == 1 and runner.position == 8 and runner.caught_up
        )
        assert consumer.resets == 1
        assert consumer.seen == [6, 7, 8]
    finally:
        await runner.stop()


async def test_the_store_checkpoint_never_passes_the_floor(store: EventStore) -> None:
    await put(store, "count-a", 5)
    consumer = Counter()
    consumer.open_from = 2
    runner = ConsumerRunner(store, consumer, StoreCheckpoint(every=0))
    await runner.start()
    assert await runner.wait_for(5, WAIT)
    await runner.stop()
    assert await store.get_checkpoint("toy-counter") == 2
    consumer.open_from = None


async def test_snapshot_restores_state_without_replaying(store: EventStore) -> None:
    await put(store, "count-a", 3)
    first = Counter()
    runner = ConsumerRunner(store, first, SnapshotCheckpoint(every=3600))
    await runner.start()
    assert await runner.wait_caught_up(WAIT)
    await runner.stop()  # snapshot on stop
    snap = await store.load_snapshot("toy-counter")
    assert snap is not None
    assert snap.position == 3
    await put(store, "count-a", 1)
    second = Counter()
    again = ConsumerRunner(store, second, SnapshotCheckpoint(every=3600))
    await again.start()
    try:
        assert await again.wait_for(4, WAIT)
        assert second.seen == [1, 2, 3, 4]  # three restored, one handled
        assert [e.position for b in second.batches for e in b.events] == [4]
    finally:
        await again.stop()


async def test_rebuild_reports_progress_and_goes_on_following(store: EventStore) -> None:
    await put(store, "count-a", 7)
    consumer = Counter()
    runner = ConsumerRunner(store, consumer, MemoryCheckpoint(), batch_size=3)
    await runner.start()
    try:
        assert await runner.wait_caught_up(WAIT)
        seen: list[tuple[int, int]] = []
        handled = await runner.rebuild(lambda done, head: seen.append((done, head)))
        assert handled == 7
        assert consumer.resets == 1
        assert consumer.seen == list(range(1, 8))
        assert seen[-1] == (7, 7)
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)
        await put(store, "count-a", 1)
        assert await runner.wait_for(8, WAIT)
        assert consumer.seen[-1] == 8
    finally:
        await runner.stop()


async def test_linger_only_under_load_and_a_reader_cuts_it_short(store: EventStore) -> None:
    consumer = Counter()
    runner = ConsumerRunner(store, consumer, MemoryCheckpoint(), linger=0.3)
    await runner.start()
    try:
        assert await runner.wait_caught_up(WAIT)
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0.4)
        first = await put(store, "count-a", 1)  # after a quiet spell: handled at once
        started = loop.time()
        assert await until(lambda: runner.position >= first)
        assert loop.time() - started < 0.25
        # right after it (load): the next small batch lingers for more commits...
        await put(store, "count-a", 1)
        await asyncio.sleep(0.05)
        last = await put(store, "count-a", 1)
        assert await until(lambda: runner.position >= last)
        assert [len(b.events) for b in consumer.batches] == [1, 2]
        # ...unless a reader waits for a position: it hurries the batch
        runner.linger = 5.0
        await put(store, "count-a", 1)
        started = loop.time()
        assert await runner.wait_for(last + 1, WAIT)
        assert loop.time() - started < 2.5
    finally:
        await runner.stop()


async def test_group_starts_reports_and_refuses_a_second_name(store: EventStore) -> None:
    group = ConsumerGroup()
    group.add(ConsumerRunner(store, Counter(), MemoryCheckpoint()))
    with pytest.raises(ValueError, match="toy-counter"):
        group.add(ConsumerRunner(store, Counter(), MemoryCheckpoint()))
    await group.start()
    try:
        assert await group["toy-counter"].wait_caught_up(WAIT)
        (status,) = group.statuses()
        assert status.name == "toy-counter"
        assert status.caught_up
    finally:
        await group.stop()
    assert group["toy-counter"].state is RunnerState.STOPPED


class Slow(Counter):
    """A batch takes a while (a remote sink): it is never interrupted half-way."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.finished = 0
        self.interrupted = 0

    async def handle(self, batch: Batch) -> None:
        self.started.set()
        try:
            await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            self.interrupted += 1
            raise
        await super().handle(batch)
        self.finished += 1


async def test_a_rebuild_waits_for_the_batch_in_flight(store: EventStore) -> None:
    """Review: rebuild() cancelled the follower mid-batch (a Redis script in flight
    hung the cancellation, and a sink without transactions would keep half a batch);
    now it waits for the batch, and the follower reads again from the rebuild's end."""
    consumer = Slow()
    runner = ConsumerRunner(store, consumer, MemoryCheckpoint())
    await runner.start()
    try:
        await put(store, "count-a", 3)
        await consumer.started.wait()
        await runner.rebuild()
        assert consumer.interrupted == 0
        assert consumer.seen == [1, 2, 3]  # the rebuild's, after the batch in flight
        await put(store, "count-a", 1)
        assert await runner.wait_for(4, WAIT)
        assert consumer.seen == [1, 2, 3, 4]  # nothing twice: the stale page was dropped
    finally:
        await runner.stop()


class Stuck(Counter):
    """Its state can never follow on: every batch asks to start over."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def handle(self, batch: Batch) -> None:
        self.calls += 1
        raise StartOver("the sums moved past a failed write")


async def test_a_consumer_that_keeps_starting_over_backs_off(store: EventStore) -> None:
    """Review: StartOver (like a conflict) restarted at once, so a write that keeps
    failing spun the runner on the log from 0 without a pause."""
    await put(store, "count-a", 2)
    consumer = Stuck()
    runner = ConsumerRunner(store, consumer, MemoryCheckpoint(), max_backoff=0.4)
    await runner.start()
    try:
        await asyncio.sleep(1.0)
        assert 2 <= consumer.calls <= 8, consumer.calls
        assert runner.recoveries >= 2
        assert "sums moved" in (runner.last_error or "")
    finally:
        await runner.stop()


class SharedSink(Sink):
    """A sink whose whole state is its table (rows and position together): it can follow
    on from a position another instance of it moved forward. Counts the resets it is
    asked for (a wipe, for a real sink)."""

    def __init__(self, table: dict[str, object]) -> None:
        super().__init__(table)
        self.resets = 0
        self.resumed: list[int] = []

    async def reset(self) -> None:
        self.resets += 1
        await super().reset()

    async def resume_from(self, position: int) -> bool:
        self.resumed.append(position)
        self.committed = position
        return True


async def test_two_writers_of_one_sink_follow_on_from_each_other(store: EventStore) -> None:
    """Review: a second instance of a sink consumer (two workers for a moment during a
    hand-over) saw the checkpoint the other moved as a conflict and reset the sink: the
    whole read model was wiped and rebuilt from 0. Now the loser of each race takes the
    stored position and follows on: nothing wiped, nothing written twice or skipped."""
    table: dict[str, object] = {}
    await put(store, "count-a", 5)
    sinks = [SharedSink(table), SharedSink(table)]
    runners = [
        ConsumerRunner(store, sink, SinkCheckpoint(), batch_size=2, check_every=0.01)
        for sink in sinks
    ]
    for runner in runners:
        await runner.start()
    for sink in sinks:
        sink.resets = 0  # the one of the first load, the sink being empty
    try:
        last = 5
        for i in range(60):
            last = await put(store, "count-a" if i % 3 else "other-b", 1)
            if i % 4 == 0:
                await asyncio.sleep(0.005)
        for runner in runners:
            assert await runner.wait_for(last, WAIT)
        assert await until(lambda: table.get("position") == last)
        counted = [e.position for e in await store.read_stream("count-a")]
        assert table["rows"] == counted  # each event once, in order
        assert [s.resets for s in sinks] == [0, 0]
        assert [r.recoveries for r in runners] == [0, 0]
        assert sum(r.resumes for r in runners) > 0  # they did race
        assert all(not r.rebuilding for r in runners)
        assert all(r.status().resumes == r.resumes for r in runners)
    finally:
        for runner in runners:
            await runner.stop()


@pytest.mark.parametrize("where", ["gone", "behind", "past the head"])
async def test_a_sink_checkpoint_not_moved_forward_within_the_log_is_rebuilt(
    store: EventStore, where: str
) -> None:
    """Only a checkpoint moved forward within the log is followed on from: one that went
    back, is gone (a wiped sink) or points past the log's head (not this log's) resets
    the consumer and rebuilds it from what is stored, as before."""
    table: dict[str, object] = {}
    await put(store, "count-a", 4)
    sink = SharedSink(table)
    runner = ConsumerRunner(store, sink, SinkCheckpoint(), check_every=0.02)
    await runner.start()
    sink.resets = 0  # the one of the first load, the sink being empty
    try:
        assert await runner.wait_for(4, WAIT)
        if where == "gone":
            table.clear()
        else:
            table["position"] = 2 if where == "behind" else 1000
        await put(store, "count-a", 1)
        assert await until(lambda: runner.recoveries == 1 and table.get("position") == 5)
        assert table["rows"] == [1, 2, 3, 4, 5]  # reset, then rebuilt from 0
        assert sink.resets == 1
        assert runner.resumes == 0
        assert sink.resumed == []
    finally:
        await runner.stop()


async def test_a_checkpoint_moved_forward_is_followed_on_from(store: EventStore) -> None:
    """The sink's checkpoint moved forward by someone else (within the log): the runner
    resumes from it, with no reset and no event before it handled again."""
    table: dict[str, object] = {}
    await put(store, "count-a", 3)
    sink = SharedSink(table)
    runner = ConsumerRunner(store, sink, SinkCheckpoint(), check_every=0.02)
    await runner.start()
    sink.resets = 0  # the one of the first load, the sink being empty
    try:
        assert await runner.wait_for(3, WAIT)
        await put(store, "count-a", 3)  # 4..6, written by "the other writer":
        table.update(rows=[1, 2, 3, 4, 5], position=5)
        assert await until(lambda: table.get("position") == 6)
        assert table["rows"] == [1, 2, 3, 4, 5, 6]
        assert runner.resumes == 1
        assert sink.resumed == [5]
        assert (runner.recoveries, sink.resets) == (0, 0)
    finally:
        await runner.stop()


async def test_a_conflict_while_the_feeder_loses_its_cancel_does_not_stall_the_runner(
    store: EventStore,
) -> None:
    """Review: after a conflict (here, another writer moving the sink's checkpoint
    forward) the follower cancels its page feeder and waited for it. A store client that
    swallows the cancellation of a read in flight (psycopg turns it into a query error
    that is retried; ``asyncio.wait_for`` on 3.11 loses it) left the feeder reading on:
    blocked on the full page queue, or idle until the next commit. The runner waited for
    it for ever: the consumer never followed on (seen flaky in the two-writers test on
    PostgreSQL, a permanent stall of the wallet read model's new owner)."""
    table: dict[str, object] = {}
    await put(store, "count-a", 3)
    sink = SharedSink(table)
    runner = ConsumerRunner(store, sink, SinkCheckpoint(), check_every=0.02)
    await runner.start()
    real_read = store._read_page  # type: ignore[attr-defined]
    slow = {"reads": 0}

    async def a_read_that_swallows_its_cancel(*args: object, **kwargs: object) -> object:
        if slow["reads"]:
            slow["reads"] -= 1
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.3)  # the follower is cancelled meanwhile
        return await real_read(*args, **kwargs)

    try:
        assert await runner.wait_for(3, WAIT)
        store._read_page = a_read_that_swallows_its_cancel  # type: ignore[attr-defined]
        slow["reads"] = 1
        await put(store, "count-a", 1)  # 4: the feeder's read of it is slow...
        await asyncio.sleep(0.05)
        table.update(rows=[1, 2, 3, 4], position=4)  # ...and another writer lands it
        assert await runner.wait_for(4, WAIT)
        await put(store, "count-a", 1)
        assert await runner.wait_for(5, WAIT)  # the follower follows on
        assert table["rows"] == [1, 2, 3, 4, 5]
        assert runner.resumes == 1
    finally:
        del store._read_page  # type: ignore[attr-defined]
        await runner.stop()


class Conflicted(Counter):
    """A snapshot consumer whose ``check`` raises one conflict when told to; logs the
    restores and resets it is given, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.conflict = False

    async def reset(self) -> None:
        self.calls.append("reset")
        await super().reset()

    def restore(self, parts: Sequence[bytes]) -> bool:
        self.calls.append("restore")
        return super().restore(parts)

    async def check(self) -> None:
        if self.conflict:
            self.conflict = False
            raise CheckpointConflict(self.name, 0, 3)


async def test_a_consumer_that_cannot_resume_is_not_reloaded_before_its_reset(
    store: EventStore,
) -> None:
    """Review: after a conflict the runner reloaded the checkpoint to offer
    ``resume_from`` even to a consumer that does not implement it (the default says
    no): for a snapshot checkpoint that restored the snapshot into the live consumer
    before resetting it and restoring it again (twice the snapshot read, a restore over
    a state not reset). A consumer that cannot resume recovers exactly as before the
    hook: reset, then one load."""
    await put(store, "count-a", 3)
    first = Counter()
    runner = ConsumerRunner(store, first, SnapshotCheckpoint(every=3600))
    await runner.start()
    assert await runner.wait_caught_up(WAIT)
    await runner.stop()  # a snapshot at 3
    consumer = Conflicted()
    runner = ConsumerRunner(store, consumer, SnapshotCheckpoint(every=3600), check_every=0.02)
    await runner.start()
    try:
        assert await runner.wait_caught_up(WAIT)
        assert consumer.calls == ["restore"]
        consumer.conflict = True
        assert await until(lambda: runner.recoveries == 1)
        await put(store, "count-a", 1)
        assert await runner.wait_for(4, WAIT)
        assert consumer.calls == ["restore", "reset", "restore"]
        assert consumer.seen == [1, 2, 3, 4]
        assert runner.resumes == 0
    finally:
        await runner.stop()


async def test_a_reader_waiting_for_a_position_is_not_kept_a_pace_by_a_lost_nudge(
    store_factory,
) -> None:
    """A reader's ``wait_for`` (``min_position``) of another process's commit, made
    while the follower is not in its paced wait (idle, before LISTEN/NOTIFY or the
    re-check woke it, or mid-read), is not lost: the read that wake-up brings does not
    wait for the pace. (It was a poke of the paced waits of that moment only, so the
    follower then waited a whole pace, and the reader with it.)"""
    s = await store_factory(follow_pace=1.0, idle_recheck=0.3)
    other = await store_factory()
    runner = ConsumerRunner(s, Counter(), MemoryCheckpoint())
    await runner.start()
    try:
        assert await runner.wait_caught_up(WAIT)
        loop = asyncio.get_running_loop()
        first = await put(other, "count-a", 1)  # after a quiet spell: read at once
        assert await until(lambda: runner.position >= first)
        # now the follower waits for a wake-up, and its next read is paced (1 s); the
        # reader asks for the next commit before that wake-up comes (the writer's reply
        # beat LISTEN/NOTIFY, or the SQLite re-check): its nudge finds no paced wait
        asked = loop.time()
        reader = asyncio.create_task(runner.wait_for(first + 1, WAIT))
        await asyncio.sleep(0)  # the reader nudges
        assert await put(other, "count-a", 1) == first + 1
        assert await reader
        waited = loop.time() - asked
        assert waited < 0.6, waited  # the re-check (0.3 s) or NOTIFY, not the pace
    finally:
        await runner.stop()
        await other.close()
        await s.close()
