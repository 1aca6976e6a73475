"""The event log everything in oddstream stands on. See ``docs/eventstore.md``."""

from .base import EventStore, FollowerWake, ReadFilter, ReadPage, Snapshot, SqlStatement
from .envelope import (
    ANY,
    CAUSATION_ID,
    CORRELATION_ID,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    Expected,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    StreamAppend,
)
from .errors import (
    CheckpointConflict,
    DuplicateEventId,
    EventStoreError,
    InvalidEvent,
    ProjectionFailed,
    StoreClosed,
    StoreConfigError,
    StoreUnavailable,
    WrongExpectedVersion,
)
from .factory import open_store

__all__ = [
    "ANY",
    "CAUSATION_ID",
    "CORRELATION_ID",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AppendResult",
    "CheckpointConflict",
    "DuplicateEventId",
    "EventStore",
    "EventStoreError",
    "Expected",
    "ExpectedVersion",
    "FollowerWake",
    "InvalidEvent",
    "NewEvent",
    "ProjectionFailed",
    "ReadFilter",
    "ReadPage",
    "RecordedEvent",
    "Snapshot",
    "SqlStatement",
    "StoreClosed",
    "StoreConfigError",
    "StoreUnavailable",
    "StreamAppend",
    "WrongExpectedVersion",
    "open_store",
]
