"""Typed errors raised by the event store.

Every error a caller can provoke is a subclass of :class:`EventStoreError`, so that
callers (the HTTP layer, the runtime) can map them to clear answers without catching
driver exceptions.
"""

from __future__ import annotations


class EventStoreError(Exception):
    """Base class of every error the event store raises on purpose."""


class InvalidEvent(EventStoreError, ValueError):
    """An event, stream id or argument failed validation; nothing was written."""


class StoreConfigError(EventStoreError, ValueError):
    """The store's configuration is unusable (an unsupported URL, a bad schema name or
    option); nothing was opened. Not an :class:`InvalidEvent`: no event is involved."""


class WrongExpectedVersion(EventStoreError):
    """The stream's version did not match the append's expectation; nothing was written.

    ``expected`` is what the caller asked for (an int or an :class:`ExpectedVersion`
    name), ``actual`` the stream's version at the time of the check (``0`` when the
    stream does not exist).
    """

    def __init__(self, stream_id: str, expected: object, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        shown = "no stream" if actual <= 0 else str(actual)
        super().__init__(
            f"wrong expected version for stream {stream_id!r}: expected {expected}, actual {shown}"
        )


class DuplicateEventId(EventStoreError):
    """An event id is already in the store, but not as a retry of this same append.

    Raised when a supplied event id exists in another stream, or in this stream at other
    versions than a retry of the same append would have produced.
    """

    def __init__(self, stream_id: str, event_id: object, detail: str) -> None:
        self.stream_id = stream_id
        self.event_id = event_id
        super().__init__(f"event id {event_id} cannot be appended to {stream_id!r}: {detail}")


class StoreClosed(EventStoreError):
    """The store was closed; no more calls are accepted."""


class StoreUnavailable(EventStoreError):
    """The backing database could not be reached or failed; the append's outcome is
    unknown only if it says so (``outcome_unknown``)."""

    def __init__(self, message: str, *, outcome_unknown: bool = False) -> None:
        self.outcome_unknown = outcome_unknown
        super().__init__(message)


class ProjectionFailed(EventStoreError):
    """A projection's own statements failed; nothing of that write took effect
    (``__cause__`` holds the database's error)."""


class CheckpointConflict(EventStoreError):
    """A projection tried to move its checkpoint from a position it does not hold
    (another instance of the same projection moved it first)."""

    def __init__(self, name: str, expected: int | None, actual: int | None) -> None:
        self.name = name
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"checkpoint {name!r} is at {actual}, not at {expected} as the writer expected"
        )
