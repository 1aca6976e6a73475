"""Everything that follows the log: one runner for read models, reactors and sinks.

Write a :class:`Consumer` (a name, a :class:`Subscription`, ``handle(batch)``), choose
where its position is kept (:mod:`.checkpoints`), and run it with a
:class:`ConsumerRunner`. See ``docs/consumers.md``.
"""

from .base import Batch, Consumer, Halt, StartOver, Subscription
from .checkpoints import (
    Checkpoint,
    MemoryCheckpoint,
    SinkCheckpoint,
    SnapshotCheckpoint,
    StoreCheckpoint,
)
from .group import ConsumerGroup
from .runner import ConsumerRunner, RunnerState, RunnerStatus

__all__ = [
    "Batch",
    "Checkpoint",
    "Consumer",
    "ConsumerGroup",
    "ConsumerRunner",
    "Halt",
    "MemoryCheckpoint",
    "RunnerState",
    "RunnerStatus",
    "SinkCheckpoint",
    "SnapshotCheckpoint",
    "StartOver",
    "StoreCheckpoint",
    "Subscription",
]
