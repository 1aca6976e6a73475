"""The one runner of everything that follows the log.

A :class:`ConsumerRunner` loads its consumer's position, catches up with the log and
then follows it live (woken by commits, never polling where the store can wake it),
batching by size and by time, saving the position as its checkpoint kind says. A store
or consumer failure is waited out with back-off, and the batch is given again: no event
is ever skipped. A checkpoint another writer moved forward is followed on from (when the
consumer can: :meth:`~.Consumer.resume_from`); a wiped sink, a checkpoint moved back or
past the log's head, or a consumer that cannot resume, leads to a rebuild. Its position
(``wait_for``: read-your-writes), its caught-up signal and its lag are what ``/readyz``
and ``/metrics`` report.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..eventstore import (
    CheckpointConflict,
    EventStore,
    FollowerWake,
    ReadPage,
    RecordedEvent,
    StoreClosed,
)
from ..eventstore.notify import Watermark
from .base import Batch, Consumer, Halt, StartOver
from .checkpoints import Checkpoint, StoreCheckpoint

log = logging.getLogger(__name__)

#: ``progress(position, head)`` during a rebuild
Progress = Callable[[int, int], None]

_STOP_TIMEOUT = 5.0


#: how long a follower waits for its cancelled page feeder before cancelling it again
_FEEDER_RECANCEL = 0.1


async def _stop_feeder(feeder: asyncio.Task[None]) -> None:
    """Cancel a follower's page feeder and wait until it has ended; its error, if it
    failed (not a cancellation or a closed store), is raised.

    A store client may swallow the cancellation of a read in flight (psycopg turns it
    into a query error that the store retries; ``asyncio.wait_for`` loses it on 3.11):
    the feeder would then read on, blocked on the full page queue or waiting for the
    next commit, and the follower waiting for it would never follow on again. So it is
    cancelled again until it ends: a cancellation reaches it at its next wait."""
    while not feeder.done():
        feeder.cancel()
        await asyncio.wait({feeder}, timeout=_FEEDER_RECANCEL)
    with contextlib.suppress(asyncio.CancelledError, StoreClosed):
        feeder.result()


class _PageQueue:
    """The pages a follower's feeder read ahead: at most ``pages`` of them and, but for
    the first, at most ``max_bytes`` of events in all (a queue of whole pages would
    hold ``pages`` times a page's budget). One feeder puts, one follower gets; the end
    (``None``) is always taken in, holding nothing."""

    def __init__(self, pages: int, max_bytes: int) -> None:
        self._items: deque[ReadPage | None] = deque()
        self._bytes = 0
        self._pages = max(1, pages)
        self._max_bytes = max_bytes
        self._put = asyncio.Event()
        self._taken = asyncio.Event()

    def empty(self) -> bool:
        return not self._items

    def peek(self) -> ReadPage | None:
        """The next page without taking it; ``None`` if there is none or it is the end."""
        return self._items[0] if self._items else None

    async def put(self, page: ReadPage) -> None:
        """Queue ``page`` once there is room for it (at once when the queue is empty)."""
        while self._items and (
            len(self._items) >= self._pages or self._bytes + page.nbytes > self._max_bytes
        ):
            self._taken.clear()
            await self._taken.wait()
        self._items.append(page)
        self._bytes += page.nbytes
        self._put.set()

    def end(self) -> None:
        self._items.append(None)
        self._put.set()

    def get_nowait(self) -> ReadPage | None:
        page = self._items.popleft()
        if page is not None:
            self._bytes -= page.nbytes
        self._taken.set()
        return page

    async def get(self) -> ReadPage | None:
        while not self._items:
            self._put.clear()
            await self._put.wait()
        return self.get_nowait()


class _Restart(Exception):
    """A rebuild ran while the follower waited: its pages are stale."""


class RunnerState(enum.StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    CATCHING_UP = "catching_up"
    LIVE = "live"
    REBUILDING = "rebuilding"
    RETRYING = "retrying"
    #: stopped by the consumer (:class:`~.base.Halt`) until started again
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RunnerStatus:
    """What ``/readyz`` and ``/metrics`` say of a consumer."""

    name: str
    state: RunnerState
    position: int
    caught_up: bool
    rebuilding: bool
    rebuilds: int
    recoveries: int
    failures: int
    last_error: str | None
    resumes: int = 0


class ConsumerRunner:
    """Runs one :class:`~oddstream.consumers.base.Consumer`.

    ``batch_size``: at most this many events read per page (a batch may join a few
    pages); ``max_bytes``: at most this many bytes of events (their
    :attr:`~oddstream.eventstore.RecordedEvent.size`) per page, per batch and in the
    pages read ahead (``queue_pages`` of them at most), unless a single event is larger
    (default: the store's :attr:`~oddstream.eventstore.EventStore.page_max_bytes`), so a
    follower holds about three times that at most; ``linger``: when a small live batch
    comes within this long of the last one (under load), wait this long for more
    commits before handling it (many commits' events in one batch; a reader waiting
    for a position cuts it short; a batch after a quiet spell is handled at once);
    ``check_every``: how often the consumer's :meth:`~.Consumer.check` runs;
    ``max_backoff``: the longest pause after a failure (a consumer's
    :meth:`~.Consumer.retry_delay` may choose its own); ``retry_load``: a checkpoint
    that cannot be loaded at :meth:`start` (a sink's database unreachable) does not
    fail ``start`` but is loaded by the follower, retried like a failed batch.
    """

    def __init__(
        self,
        store: EventStore,
        consumer: Consumer,
        checkpoint: Checkpoint | None = None,
        *,
        batch_size: int = 1000,
        linger: float = 0.0,
        check_every: float = 1.0,
        max_backoff: float = 5.0,
        queue_pages: int = 4,
        retry_load: bool = False,
        max_bytes: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_bytes is not None and (type(max_bytes) is not int or max_bytes < 1):
            raise ValueError("max_bytes must be a positive integer")
        self.store = store
        self.consumer = consumer
        self.checkpoint = checkpoint if checkpoint is not None else StoreCheckpoint()
        self.batch_size = batch_size
        self.max_bytes = store.page_max_bytes if max_bytes is None else max_bytes
        self.linger = linger
        self.check_every = check_every
        self.max_backoff = max_backoff
        self._queue_pages = queue_pages
        #: a failed first load (a sink's database unreachable at start) is retried by
        #: the follower with the back-off instead of failing ``start``
        self._retry_load = retry_load
        self._applied = Watermark()
        #: this follower's targeted wake-up from the store's pace (:meth:`hint`)
        self.wake = FollowerWake()
        self._caught_up = asyncio.Event()
        self._hurry = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._loaded = False
        self._checked_at = 0.0
        #: when the last batch with events was handled (loop time): lingering is for load
        self._handled_at = float("-inf")
        #: moved by a rebuild: a follower whose pages were read before it starts over
        self._epoch = 0
        self._rebuilding = False
        self.state = RunnerState.STOPPED
        #: rebuilds asked for (``rebuild``)
        self.rebuilds = 0
        #: resets and starts from what is stored after a checkpoint conflict or a wiped
        #: sink (a rebuild from 0 for a sink)
        self.recoveries = 0
        #: follow-ons from a checkpoint another writer moved forward (no reset)
        self.resumes = 0
        #: batches (or checkpoint saves) that failed and were tried again
        self.failures = 0
        self.last_error: str | None = None

    # ----------------------------------------------------------------- what it says
    @property
    def name(self) -> str:
        return self.consumer.name

    @property
    def position(self) -> int:
        """Every followed event up to here is handled (other events passed over)."""
        return self._applied.position

    @property
    def caught_up(self) -> bool:
        """True once the consumer reached the head of the log as it stood when it last
        looked, and no rebuild or retry is under way."""
        return self._caught_up.is_set()

    @property
    def rebuilding(self) -> bool:
        """True from a reset of the consumer (a rebuild, a recovery, a lost checkpoint)
        until it caught up again: what it shows is a prefix of the log's content."""
        return self._rebuilding

    def status(self) -> RunnerStatus:
        return RunnerStatus(
            self.name,
            self.state,
            self.position,
            self.caught_up,
            self._rebuilding,
            self.rebuilds,
            self.recoveries,
            self.failures,
            self.last_error,
            self.resumes,
        )

    async def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until the consumer handled ``position``; False on timeout. The follower
        is hurried: its pace, and its linger, end for it (:meth:`_nudge`)."""
        return await self._applied.wait_for(
            position, timeout, nudge=functools.partial(self._nudge, position)
        )

    def hint(self, position: int) -> bool:
        """The log holds ``position`` (the velocity bus said so): if this follower has
        not read that far, its next read does not wait for the store's pace (this
        follower's only; see :class:`~oddstream.eventstore.FollowerWake`). Returns
        whether it was woken (a wake-up already pending, or a position read, wakes
        nothing)."""
        return self.wake.hint(position)

    def _nudge(self, position: int) -> None:
        """A reader waits for ``position``: the batch in flight stops lingering, and the
        follower's next read does not wait for the pace. The wake-up is kept (the
        :class:`~oddstream.eventstore.FollowerWake`'s pending one) when the follower is
        not in its paced wait as the reader asks (idle until LISTEN/NOTIFY or the
        re-check wakes it, or reading): a poke of the paced waits of that moment alone
        was lost then, and the reader waited a whole pace."""
        self._hurry.set()
        self.wake.hint(position)
        self.store.hurry_followers()  # the store's paced reads (``subscribe_pages``)

    async def wait_caught_up(self, timeout: float) -> bool:
        """Wait until :attr:`caught_up`; False on timeout."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._caught_up.wait()
        return self._caught_up.is_set()

    # ----------------------------------------------------------------- lifecycle
    async def load(self) -> int:
        """Load the consumer's position from its checkpoint (``start`` does it); a lost
        one resets the consumer to start from 0. Returns the position."""
        self.state = RunnerState.STARTING
        found = await self.checkpoint.load(self.store, self.consumer)
        if found is None:
            await self.consumer.reset()
            self._rebuilding = True
            found = 0
        self._applied.reset(found)
        self._loaded = True
        return found

    async def start(self) -> None:
        """Load the position, then follow the log in a background task. A runner whose
        follower ended (``failed`` after a :class:`~.base.Halt`) follows again from its
        position."""
        if self._task is not None and not self._task.done():
            return
        if not self._loaded:
            try:
                await self.load()
            except Halt as exc:  # a position it must not follow from: FAILED at once
                log.error("consumer %s not started: %s", self.name, exc)
                self.last_error = str(exc)
                self.state = RunnerState.FAILED
                return
            except Exception as exc:
                if not self._retry_load or self.store.closed:
                    raise
                self._note_failure(exc)  # the follower loads it again, backing off
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.name}")

    async def stop(self) -> None:
        """Stop following (a batch in flight is abandoned before its checkpoint) and save
        the position if the store is still open."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, StoreClosed, TimeoutError):
                async with asyncio.timeout(_STOP_TIMEOUT):  # not wait_for (3.11)
                    await task
        if self._loaded and not self.store.closed:
            try:
                await self.checkpoint.save(self.store, self.consumer, self.position, now=True)
            except Exception:  # stopping goes on: the log still has everything
                log.warning("consumer %s: final checkpoint not saved", self.name, exc_info=True)
        self._caught_up.clear()
        self.state = RunnerState.STOPPED

    async def rebuild(self, progress: Progress | None = None) -> int:
        """Forget everything and replay the log up to its head as of now; returns the
        number of events handled. ``progress(position, head)`` after each batch. While
        following, the follower waits for the rebuild (it holds the lock between
        batches, never mid-batch) and then goes on from its end."""
        async with self._lock:
            self._epoch += 1  # a follower's pages from before are stale: it reads again
            self.state = RunnerState.REBUILDING
            self.rebuilds += 1
            self._rebuilding = True
            self._caught_up.clear()
            await self.consumer.reset()
            self._applied.reset(0)
            self._loaded = True
            head = await self.store.head_position()
            handled = 0
            sub = self.consumer.subscription
            events: list[RecordedEvent] = []
            nbytes = 0
            async for recorded in self.store.scan_all(
                0,
                stream_prefix=sub.stream_prefix,
                category=sub.category,
                types=sub.types,
                batch_size=self.batch_size,
                max_bytes=self.max_bytes,
            ):
                size = recorded.size
                if events and nbytes + size > self.max_bytes:  # a batch within the budget
                    await self._handle(events, events[-1].position, replaying=True)
                    handled += len(events)
                    events, nbytes = [], 0
                    if progress is not None:
                        progress(self.position, head)
                events.append(recorded)
                nbytes += size
                if len(events) >= self.batch_size:
                    await self._handle(events, recorded.position, replaying=True)
                    handled += len(events)
                    events, nbytes = [], 0
                    if progress is not None:
                        progress(self.position, head)
            # scan_all read to the head as it found it, which may be past ``head``: the
            # position is never before an event handled
            end = max(head, events[-1].position if events else self.position)
            await self._handle(events, end, replaying=True)
            handled += len(events)
            await self.checkpoint.save(self.store, self.consumer, self.position, now=True)
            self._rebuilding = False
            self.state = RunnerState.CATCHING_UP if self._task else RunnerState.STOPPED
            if progress is not None:
                progress(head, head)
            return handled

    # ----------------------------------------------------------------- following
    async def _run(self) -> None:
        backoff = 0.1
        recover: Exception | None = None  # the conflict (or StartOver) to recover from
        failed_at = -1
        streak = 0  # failures in a row at one position
        if not self._loaded:  # the load at start failed: waited out like a batch
            failed_at, streak = self.position, 1
            await asyncio.sleep(self._delay(streak, backoff))
            backoff = min(backoff * 2, self.max_backoff)
        while True:
            if self.position != failed_at:
                backoff = 0.1  # it moved on since the last failure: start the back-off again
                streak = 0
            try:
                if not self._loaded:
                    await self.load()
                if recover is not None:
                    await self._recover(recover)
                    recover = None
                await self._follow()
                return
            except _Restart:
                continue  # a rebuild ran: follow on from where it ended
            except StoreClosed:
                return
            except Halt as exc:
                log.error("consumer %s stopped at position %d: %s", self.name, self.position, exc)
                self.last_error = str(exc)
                self.state = RunnerState.FAILED
                self._caught_up.clear()
                return
            except (CheckpointConflict, StartOver) as exc:
                log.warning("consumer %s at %d: %s", self.name, self.position, exc)
                self.last_error = str(exc)
                if recover is not None or failed_at == self.position:
                    await asyncio.sleep(backoff)  # again with no progress: do not spin
                    backoff = min(backoff * 2, self.max_backoff)
                failed_at = self.position
                recover = exc
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.store.closed:
                    return
                streak += 1
                delay = self._delay(streak, backoff)
                self._note_failure(exc)
                log.warning(
                    "consumer %s failed at position %d (%s); retrying in %.1fs",
                    self.name,
                    self.position,
                    self.last_error,
                    delay,
                    exc_info=not isinstance(exc, OSError),
                )
                failed_at = self.position
                await asyncio.sleep(delay)  # a failed recovery is tried again too
                backoff = min(backoff * 2, self.max_backoff)

    def _note_failure(self, exc: Exception) -> None:
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.state = RunnerState.RETRYING
        self._caught_up.clear()

    def _delay(self, streak: int, backoff: float) -> float:
        """The pause after the ``streak``-th failure in a row: the consumer's choice, or
        the runner's back-off."""
        chosen = self.consumer.retry_delay(streak)
        return backoff if chosen is None else max(0.0, chosen)

    async def _recover(self, cause: Exception) -> None:
        """After a conflict: follow on from a checkpoint another writer moved forward if
        the consumer can (:meth:`_resume`); else forget, reload what is stored (``None``:
        from 0) and go on."""
        async with self._lock:
            if isinstance(cause, CheckpointConflict) and await self._resume(cause):
                return
            log.warning("consumer %s: starting over from what is stored", self.name)
            self.recoveries += 1
            self._rebuilding = True
            self.state = RunnerState.REBUILDING
            self._caught_up.clear()
            await self.consumer.reset()
            found = await self.checkpoint.load(self.store, self.consumer)
            self._applied.reset(found or 0)

    async def _resume(self, conflict: CheckpointConflict) -> bool:
        """Reload the checkpoint; if it moved forward from where the consumer expected it
        (to a position the log holds: another writer of the same consumer, following the
        same log, put it there) and the consumer takes it (:meth:`~.Consumer.resume_from`),
        go on from it without a reset and return True. A checkpoint gone (a wiped sink),
        moved back (a sink restored or rebuilt by someone) or past the log's head (not
        this log's) returns False: the caller starts over."""
        expected = conflict.expected
        if expected is None or type(self.consumer).resume_from is Consumer.resume_from:
            # it cannot resume (the default): recover as ever, with no load before the
            # reset (a snapshot's would be restored into the live consumer, then again)
            return False
        try:
            found = await self.checkpoint.load(self.store, self.consumer)
        except Halt:  # past the head: the caller resets, and the load after it decides
            return False
        if found is None or found < expected or found > await self.store.head_position():
            return False
        if not await self.consumer.resume_from(found):
            return False
        self.resumes += 1
        self._applied.reset(found)
        self.last_error = None  # nothing went wrong: someone else did the work
        log.info(
            "consumer %s: another writer moved its checkpoint from %d to %d; following on",
            self.name,
            expected,
            found,
        )
        return True

    async def _follow(self) -> None:
        sub = self.consumer.subscription
        queue = _PageQueue(self._queue_pages, self.max_bytes)
        start = self.position

        async def feed() -> None:
            try:
                async for page in self.store.subscribe_pages(
                    start,
                    stream_prefix=sub.stream_prefix,
                    category=sub.category,
                    types=sub.types,
                    batch_size=self.batch_size,
                    max_bytes=self.max_bytes,
                    wake=self.wake,
                ):
                    await queue.put(page)
                    del page  # the queue's now, and gone once the follower took it
            finally:
                queue.end()

        feeder = asyncio.create_task(feed(), name=f"consumer-{self.name}-feed")
        epoch = self._epoch
        self.state = RunnerState.CATCHING_UP if not self.caught_up else RunnerState.LIVE
        loop = asyncio.get_running_loop()
        tick = min(self.check_every, self.checkpoint.every or self.check_every)
        me = asyncio.current_task()
        try:
            while True:
                if me is not None and me.cancelling():
                    # a cancellation swallowed on the way (asyncio.wait_for in a client
                    # library on 3.11): without this, stop() would wait for ever
                    raise asyncio.CancelledError
                if queue.empty():
                    await self._idle_work(loop)
                    try:
                        async with asyncio.timeout(tick):
                            page = await queue.get()
                    except TimeoutError:
                        if feeder.done():
                            feeder.result()  # its error, if it failed
                            return
                        continue
                else:
                    page = queue.get_nowait()
                if page is None:
                    feeder.result()
                    return
                events = list(page.events)
                position = page.position
                nbytes = page.nbytes
                del page
                if (
                    self.linger
                    and self.caught_up
                    and len(events) < self.batch_size
                    and loop.time() - self._handled_at < self.linger
                ):
                    await self._gather()  # batches come fast: let a few commits gather
                # pages read meanwhile join the batch, within its count and byte limits
                while (
                    len(events) < self.batch_size
                    and (more := queue.peek()) is not None
                    and nbytes + more.nbytes <= self.max_bytes
                ):
                    queue.get_nowait()
                    events += more.events
                    position = more.position
                    nbytes += more.nbytes
                    del more
                async with self._lock:
                    if self._epoch != epoch:
                        raise _Restart
                    await self._handle(events, position, replaying=not self.caught_up)
                    await self.checkpoint.save(self.store, self.consumer, self.position)
                if events:
                    self._handled_at = loop.time()
                del events  # not held while the next pages are read and awaited
                if loop.time() - self._checked_at >= self.check_every:
                    await self._check(loop)
        finally:
            await _stop_feeder(feeder)

    async def _handle(self, events: list[RecordedEvent], position: int, *, replaying: bool) -> None:
        if events:
            batch = Batch(events, self.position, position, replaying)
            await self.consumer.handle(batch)
        self._applied.advance(position)

    async def _gather(self) -> None:
        """Linger for more commits, unless a reader is waiting for a position."""
        if self._hurry.is_set():
            self._hurry.clear()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.linger):
                await self._hurry.wait()
        self._hurry.clear()

    async def _idle_work(self, loop: asyncio.AbstractEventLoop) -> None:
        """Between batches with nothing queued: note being caught up, save a checkpoint
        that is due, run the consumer's check when due."""
        if self._rebuilding and self.state is RunnerState.REBUILDING:
            return  # a rebuild is under way (it holds the lock)
        if not self._caught_up.is_set() and self.position >= await self.store.head_position():
            self._caught_up.set()
            self._rebuilding = False
            self.state = RunnerState.LIVE
            self.last_error = None
        async with self._lock:
            await self.checkpoint.save(self.store, self.consumer, self.position)
        if loop.time() - self._checked_at >= self.check_every:
            await self._check(loop)

    async def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        async with self._lock:
            self._checked_at = loop.time()
            await self.consumer.check()
