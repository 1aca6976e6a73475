"""What a consumer is: a name, the events it follows, and what it does with a batch.

A consumer never reads the log itself: a :class:`~oddstream.consumers.runner.ConsumerRunner`
feeds it batches in log order and keeps its position with one of the checkpoint kinds of
:mod:`oddstream.consumers.checkpoints`. See ``docs/consumers.md``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

from ..eventstore import RecordedEvent


@dataclass(frozen=True, slots=True)
class Subscription:
    """Which events of the log a consumer is given: a stream prefix (``"race-"``) or a
    category (``"race"``), and/or event types. Empty: every event."""

    stream_prefix: str | None = None
    category: str | None = None
    types: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """Events for a consumer, in log order, and the positions around them.

    ``events`` are every followed event in ``(after, position]``: once it handled them,
    the consumer is at ``position`` even if other streams' events lie between.
    ``replaying`` is true while the consumer catches up with history (at start or in a
    rebuild) rather than following live: a consumer may skip side effects that only
    matter live (pushing a board to clients).
    """

    events: Sequence[RecordedEvent]
    after: int
    position: int
    replaying: bool = False


class StartOver(Exception):
    """Raised by a consumer whose state can no longer follow on (say, its own sums moved
    past a write that failed): the runner resets it and starts it again from its
    checkpoint, as after a checkpoint conflict it cannot resume from."""


class Halt(Exception):
    """Raised by a consumer that must not go on until someone acts (a sink told to stop
    at a record it cannot write, ``errors.tolerance=none``): the runner stops following,
    keeps the position of the last batch handled and reports the state ``failed`` with
    the message as its last error. Starting the runner again (a restart) tries the batch
    again."""


class Consumer(abc.ABC):
    """Something that follows the log. Subclasses set :attr:`name` (its checkpoint's
    name: unique, stable across releases) and :attr:`subscription`, and implement
    :meth:`handle`.

    The runner calls :meth:`handle` with each batch (never an empty one), then records
    the batch's position. A batch whose ``handle`` raised is given again (after a pause),
    with at least the same events: nothing is ever skipped. With a checkpoint kept apart
    from the consumer's writes (:class:`~oddstream.consumers.checkpoints.StoreCheckpoint`)
    a crash between the two gives a batch again after a restart, so ``handle`` must be
    idempotent; with :class:`~oddstream.consumers.checkpoints.SinkCheckpoint` the
    consumer commits the position with its writes and sees each event once in effect.
    """

    name: str
    subscription: Subscription = Subscription()

    @abc.abstractmethod
    async def handle(self, batch: Batch) -> None:
        """Act on ``batch``. Raise to have it given again (after a pause)."""

    async def reset(self) -> None:  # noqa: B027 - a consumer with nothing to forget
        """Forget everything made from the log (before a rebuild from the start, or after
        a checkpoint conflict it cannot follow on from). Default: nothing to forget."""

    async def resume_from(self, position: int) -> bool:
        """Another writer moved this consumer's checkpoint forward to ``position``, within
        the log (a second instance for a moment, during a hand-over), writing what this
        consumer would have written: follow on from there instead of starting over.

        Called after a :class:`~oddstream.eventstore.CheckpointConflict`, once the
        runner has reloaded the checkpoint (so a sink's ``stored_position()`` has just
        run) and found it at or past the one the consumer expected and not past the
        log's head. Return ``True`` once the consumer holds what it needs to handle
        the batches after ``position`` (a consumer whose whole state is in the sink
        with its position: nothing, or what it caches of the sink); the runner then
        goes on from ``position`` with no reset. ``False`` (the default: state the
        other writer's batches did not update, such as the consumer's memory): the
        runner resets the consumer and starts it again from what is stored. A consumer
        that does not override this method is not offered it: the runner resets it
        without reloading the checkpoint first."""
        return False

    def retry_delay(self, failures: int) -> float | None:
        """How long to wait before giving a failed batch again, after ``failures``
        failures in a row at one position (1 for the first); ``None`` (the default):
        the runner's own back-off (0.1 s doubling up to ``max_backoff``)."""
        return None

    def floor(self) -> int | None:
        """A position the saved checkpoint must not pass (work below it is unfinished
        and must be seen again after a crash); ``None`` for no floor."""
        return None

    async def check(self) -> None:  # noqa: B027 - nothing to check by default
        """Called about every ``check_every`` seconds: raise
        :class:`~oddstream.eventstore.CheckpointConflict` if the consumer's storage no
        longer holds what it wrote: a wiped sink (the runner rebuilds it) or one another
        writer moved on (the runner offers :meth:`resume_from`)."""
