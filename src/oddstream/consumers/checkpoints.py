"""Where a consumer's position is kept: the four kinds.

==========================  ===============================================  ================
kind                        position kept                                    after a crash
==========================  ===============================================  ================
:class:`StoreCheckpoint`    the store's checkpoint table, saved every        at least once
                            ``every`` seconds (never past the consumer's     (``handle`` is
                            :meth:`~.Consumer.floor`)                        idempotent)
:class:`SinkCheckpoint`     by the consumer, in the same transaction (or     exactly once in
                            Lua script) as its own writes                    effect
:class:`SnapshotCheckpoint` the store's snapshot table: the consumer's whole  resumes from the
                            state with its position, every ``every`` s       last snapshot
:class:`MemoryCheckpoint`   nowhere: every start replays the log             replays
==========================  ===============================================  ================

A checkpoint saved with an expected previous value (a fenced store checkpoint, a sink's
write) raises :class:`~oddstream.eventstore.CheckpointConflict` when another instance
moved it. The runner then reloads it: moved forward within the log, a consumer that can
(:meth:`~.Consumer.resume_from`: a sink whose rows the other instance wrote with the
position) follows on from it; otherwise, or when it is gone or went back, the runner
resets the consumer and starts again from what is stored.
"""

from __future__ import annotations

import abc
import asyncio
import ctypes
import ctypes.util
import logging
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from ..eventstore import EventStore
from .base import Halt

if TYPE_CHECKING:
    from .base import Consumer

log = logging.getLogger(__name__)


def _malloc_trim() -> object:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return None


_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Hand the heap memory freed since the last call back to the OS (``malloc_trim``;
    nothing on a C library without it). glibc keeps what is freed for reuse, in pages
    the process keeps resident: a server's ordinary churn (pages of events read,
    requests answered, a snapshot's parts) leaves tens of MB of them between two
    snapshots (measured in the soak: 100-200 MB of free heap without a trim)."""
    if callable(_TRIM):
        _TRIM(0)


async def _release_free_memory() -> None:
    # Yield first: the loop's handle that resumed this task holds the future of the
    # last await, whose result (a snapshot's parts, when loading) is freed only once
    # the loop lets that handle go.
    await asyncio.sleep(0)
    release_free_memory()


class Checkpoint(abc.ABC):
    """How a runner loads and saves one consumer's position."""

    #: how often a save may be due (the runner wakes at least this often when idle)
    every: float | None = None

    @abc.abstractmethod
    async def load(self, store: EventStore, consumer: Consumer) -> int | None:
        """The position to resume from; ``None`` when it was lost (a wiped sink): the
        runner resets the consumer and starts from 0."""

    async def save(  # noqa: B027 - kinds that keep nothing apart from the consumer
        self, store: EventStore, consumer: Consumer, position: int, *, now: bool = False
    ) -> None:
        """Called after each batch (and when idle, and on stop with ``now``): save
        ``position`` if it is due."""


class StoreCheckpoint(Checkpoint):
    """The position in the store's checkpoint table, under the consumer's name, saved at
    most every ``every`` seconds and on stop; never past :meth:`~.Consumer.floor`.

    ``fenced=True`` saves only over the position this instance loaded or saved last
    (``CheckpointConflict`` otherwise): for a consumer that must have one instance at a
    time. Unfenced (the default), the last save wins: instances of an idempotent
    consumer may run side by side (two processes on one store), each at least once."""

    def __init__(self, *, every: float = 1.0, fenced: bool = False) -> None:
        self.every = self._every = every
        self.fenced = fenced
        self.saved = 0
        self._saved_at = 0.0

    async def load(self, store: EventStore, consumer: Consumer) -> int | None:
        self.saved = await store.get_checkpoint(consumer.name)
        self._saved_at = time.monotonic()
        return self.saved

    async def save(
        self, store: EventStore, consumer: Consumer, position: int, *, now: bool = False
    ) -> None:
        if not now and time.monotonic() - self._saved_at < self._every:
            return
        floor = consumer.floor()
        target = position if floor is None else min(position, floor)
        if target != self.saved:
            expected = self.saved if self.fenced else None
            await store.save_checkpoint(consumer.name, target, expected=expected)
            self.saved = target
        self._saved_at = time.monotonic()


class PositionedSink(Protocol):
    """A consumer that stores its position with its writes."""

    async def stored_position(self) -> int | None:
        """The position its storage holds; ``None`` if there is none (never written, or
        wiped)."""


class SinkCheckpoint(Checkpoint):
    """The consumer commits each batch's position with its writes, atomically, checking
    that the stored position is the one it wrote last (``CheckpointConflict`` if not);
    it tells the runner where it is through ``stored_position()``. A consumer whose
    state is all in the sink implements :meth:`~.Consumer.resume_from` to follow on from
    a position another instance of it moved forward (two writers for a moment).

    A stored position beyond the log's head was not written from this log (a storage
    kept over a log reset, a database reused). By default it counts as lost: the runner
    resets the consumer and rebuilds it from the log (a read model, whose storage is
    the consumer's own). With ``refuse_beyond_head`` the load raises
    :class:`~.base.Halt` instead (the runner FAILED, not following): for a sink whose
    target is not the consumer's to wipe (a SQL sink's tables, which analysts own)."""

    #: :class:`~.base.Halt` on a stored position beyond the log's head (else: lost)
    refuse_beyond_head: bool = False

    def __init__(self, *, refuse_beyond_head: bool = False) -> None:
        self.refuse_beyond_head = refuse_beyond_head

    async def load(self, store: EventStore, consumer: Consumer) -> int | None:
        """The sink's stored position (``None``: none, or one beyond the log's head);
        :class:`~.base.Halt` for one beyond the head with ``refuse_beyond_head``."""
        sink: PositionedSink = consumer  # type: ignore[assignment]
        found = await sink.stored_position()
        if found is None:
            return None
        head = await store.head_position()  # read after: it only grows
        if found <= head:
            return found
        if self.refuse_beyond_head:
            raise Halt(
                f"{consumer.name}: the target holds position {found}, beyond this log's "
                f"head {head}: it was written from another log (a reused database, a "
                "log reset); refusing to skip the events up to it. Remove the sink's "
                "row from its offsets table (or use another name) to write this log "
                "from its beginning"
            )
        log.warning(
            "consumer %s: stored position %d is beyond the log's head %d (not this "
            "log's): rebuilding from the log",
            consumer.name,
            found,
            head,
        )
        return None


class SnapshotConsumer(Protocol):
    """A consumer whose whole state can be saved and restored."""

    def snapshot(self) -> bytes | Iterable[bytes]:
        """The state now, encoded: one value, or parts (best a generator encoding one
        part at a time, so the state is never held whole in encoded form). Taken
        between batches; the parts are drawn while the snapshot is written, and the
        runner handles no batch until that is done."""

    def restore(self, parts: Sequence[bytes]) -> bool:
        """Load a state :meth:`snapshot` made, from its parts (one part when it was
        one value); ``False`` if it cannot be used (made by an incompatible version):
        the runner then starts from 0."""


class SnapshotCheckpoint(Checkpoint):
    """The consumer's whole state, saved in the store with its position every ``every``
    seconds once ``min_events`` positions passed since the last one (``every=0``: never
    on the way), and on stop. A
    restart restores it and follows from there instead of replaying the log.

    Snapshots of a read model are interchangeable between its instances (each is a pure
    function of a prefix of the log): the last one saved wins, without a conflict check.
    """

    def __init__(self, *, every: float = 30.0, min_events: int = 1000) -> None:
        self.every = self._every = every
        self.min_events = min_events
        self.saved = 0
        self._saved_at = 0.0

    async def load(self, store: EventStore, consumer: Consumer) -> int | None:
        self._saved_at = time.monotonic()
        found = await store.load_snapshot(consumer.name)
        if found is not None and found.position > (head := await store.head_position()):
            # not this log's (as a sink's position beyond the head): restored, the
            # consumer would skip every event up to it and answer as if it had them
            log.warning(
                "snapshot of %s is at position %d, beyond the log's head %d (not this "
                "log's): replaying the log",
                consumer.name,
                found.position,
                head,
            )
            found = None
        state: SnapshotConsumer = consumer  # type: ignore[assignment]
        restored = found is not None and state.restore(found.parts)
        position = found.position if found is not None and restored else 0
        if found is not None and not restored:
            log.warning("snapshot of %s cannot be used; replaying the log", consumer.name)
        del found
        await _release_free_memory()
        self.saved = position
        return position

    async def save(
        self, store: EventStore, consumer: Consumer, position: int, *, now: bool = False
    ) -> None:
        if position - self.saved < (1 if now else self.min_events):
            return
        if not now and (self._every <= 0 or time.monotonic() - self._saved_at < self._every):
            return  # every=0: only at stop
        state: SnapshotConsumer = consumer  # type: ignore[assignment]
        # between batches, under the runner's lock: the state holds still while its parts
        # are drawn (encoded) one by one and written
        await store.save_snapshot(consumer.name, position, state.snapshot())
        self.saved = position
        self._saved_at = time.monotonic()
        await _release_free_memory()


class MemoryCheckpoint(Checkpoint):
    """No position kept: every start replays the log from the beginning."""

    async def load(self, store: EventStore, consumer: Consumer) -> int | None:
        return 0
