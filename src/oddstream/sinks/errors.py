"""What a sink refuses, each as its own type (the runner, the status and the dead-letter
handling tell them apart)."""

from __future__ import annotations


class SinkError(Exception):
    """Base of the sink's own errors."""


class UnsupportedSchema(SinkError):
    """A schema (or a field of it) that maps to no column."""


class InvalidIdentifier(SinkError, ValueError):
    """A table or column name that cannot be used as an SQL identifier (empty, too long,
    control characters); never sent to the database."""


class TableMissing(SinkError):
    """The table does not exist and ``auto.create`` is off."""


class SchemaMismatch(SinkError):
    """The table lacks columns the records have and cannot be evolved (``auto.evolve``
    off, or a new field that is neither optional nor has a default)."""


class NotTransactional(SinkError):
    """A target table (or the offsets table) of a storage engine without transactions
    (MariaDB's MyISAM, Aria, …): its rows would stay when the batch's transaction rolls
    back, so exactly once cannot hold. The sink stops (FAILED), whatever
    ``errors.tolerance`` says: no record is at fault."""


class RecordError(SinkError):
    """A record that can never be written as it is (no key where the key mode needs
    one, a value of the wrong type, a tombstone without a key). ``index`` is its place in
    the batch."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class PositionConflict(SinkError):
    """The position stored in the target is not the one the sink expected: another
    instance wrote there, or the offsets row was changed; nothing was written."""

    def __init__(self, name: str, expected: int, stored: int | None) -> None:
        super().__init__(
            f"sink {name!r}: expected to continue from position {expected}, "
            f"the target holds {stored}"
        )
        self.expected = expected
        self.stored = stored
