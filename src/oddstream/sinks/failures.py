"""What a failed write means: the target is unavailable (wait and try again, nothing is
lost) or a record can never be written as it is (dead-letter it, or stop).

The drivers raise their own exception classes, and a class alone does not tell: psycopg
files "index row too big" (a record's fault) under ``OperationalError`` with "connection
refused", and PyMySQL raises every server error it has no class for as
``OperationalError``. So each driver's error is read by its code: PostgreSQL's SQLSTATE
class, MariaDB's error number, SQLite's primary result code. An error about the
environment (connection, authentication, locks, deadlocks, a read-only or full database,
a missing database) is *transient*; an error about the data (constraint, type, range,
size, an invalid identifier) is the record's. An error this module does not know is
treated as the record's, but the consumer only dead-letters a record after it failed
alone and a probe of the target then succeeded.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .errors import (
    InvalidIdentifier,
    RecordError,
    SchemaMismatch,
    SinkError,
    TableMissing,
    UnsupportedSchema,
)


class TargetUnavailable(SinkError):
    """The target database cannot be reached or cannot take writes now (the driver's
    error is the cause); the batch is tried again later, nothing is lost."""


class NoAnswer(TargetUnavailable):
    """The target did not answer a call within the sink's deadline
    (``db.call.timeout.ms``): the connection was broken from outside the blocked call.
    Always the target's fault, never a record's: a slow or frozen server is waited for,
    never a reason to dead-letter."""


#: PostgreSQL SQLSTATE classes about the environment, not the data: connection (08),
#: invalid transaction state (25: a read-only standby), authorization (28), catalog
#: (3D: no such database), transaction rollback (40: deadlock, serialization),
#: resources (53), object state (55: lock not available), operator intervention (57),
#: system (58), snapshot too old (72), configuration file (F0), internal (XX).
_PG_TRANSIENT_CLASSES = frozenset(
    {"08", "25", "28", "3D", "40", "53", "55", "57", "58", "72", "F0", "XX"}
)
_PG_TRANSIENT_CODES = frozenset({"42501"})  # insufficient privilege: an operator fixes it

#: MariaDB / MySQL server errors about the environment. What matters most are those a
#: write meets while a plain read (the consumer's probe) still succeeds: taken for the
#: record's, they would dead-letter good data.
_MYSQL_TRANSIENT = frozenset(
    # connections and threads: too many, per user, refused, killed, aborted, idle
    {1040, 1043, 1053, 1129, 1130, 1135, 1152, 1184, 1203, 1226, 1927, 4031}
    # the network between client and server (read/write errors and timeouts)
    | {1154, 1155, 1156, 1157, 1158, 1159, 1160, 1161}
    # access and a missing database: an operator fixes them
    | {1044, 1045, 1049, 1142, 1143}
    # memory, a full disk or table
    | {1021, 1037, 1038, 1041, 1114}
    # other transactions: lock wait, deadlock, lock NOWAIT, a row changed since read,
    # a table's definition changed, too many transactions, commit/rollback failed
    | {1020, 1205, 1213, 1412, 1615, 1637, 3572, 1180, 1181}
    # read-only server, table or transaction (an operator's maintenance)
    | {1036, 1223, 1290, 1792, 1836}
    # query interrupted or timed out (KILL QUERY, max_statement_time, max_execution_time)
    | {1317, 1969, 3024}
)
#: SQLite primary result codes about the environment: PERM, BUSY, LOCKED, NOMEM,
#: READONLY, INTERRUPT, IOERR, CORRUPT, FULL, CANTOPEN, PROTOCOL, SCHEMA, AUTH, NOTADB.
_SQLITE_TRANSIENT = frozenset({3, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 17, 23, 26})
_SQLITE_TOOBIG = 18
_SQLITE_CONSTRAINT = 19


def _sqlstate(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) and len(state) == 5 else None


def _mysql_errno(exc: BaseException) -> int | None:
    if type(exc).__module__.startswith("pymysql"):
        args = getattr(exc, "args", ())
        if args and isinstance(args[0], int):
            return int(args[0])
        return 0
    return None


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the target is unavailable rather than a record bad."""
    if isinstance(exc, TargetUnavailable | OSError | TimeoutError | MemoryError):
        return True
    module = type(exc).__module__
    if module.startswith("psycopg"):
        state = _sqlstate(exc)
        if state is None:  # raised by the client: no connection, connection lost
            import psycopg

            return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
        return state[:2] in _PG_TRANSIENT_CLASSES or state in _PG_TRANSIENT_CODES
    errno = _mysql_errno(exc)
    if errno is not None:
        import pymysql

        if isinstance(exc, pymysql.err.InterfaceError) or errno == 0:
            return True  # the connection is closed
        return 2000 <= errno < 3000 or errno in _MYSQL_TRANSIENT
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is None:
            # raised by the module, not the library: a closed connection is transient,
            # a value it cannot bind is the record's
            return isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc)
        return (code & 0xFF) in _SQLITE_TRANSIENT
    return False


def reason_of(exc: BaseException) -> str:
    """A stable reason code for a record's failure (the dead letter's ``reason``)."""
    if isinstance(exc, RecordError):
        return "bad_record"
    if isinstance(exc, SchemaMismatch):
        return "schema_mismatch"
    if isinstance(exc, UnsupportedSchema):
        return "unsupported_schema"
    if isinstance(exc, TableMissing):
        return "table_missing"
    if isinstance(exc, InvalidIdentifier):
        return "invalid_identifier"
    state = _sqlstate(exc)
    if state is not None:
        return {"22": "bad_value", "23": "constraint_violation", "54": "too_big"}.get(
            state[:2], "write_refused"
        )
    errno = _mysql_errno(exc)
    if errno is not None:
        if errno in (1062, 1451, 1452, 1048, 1364, 3819, 4025):
            return "constraint_violation"
        if errno in (1153, 1406, 1118, 1071):
            return "too_big"
        if errno in (1264, 1265, 1292, 1366, 1367, 1411):
            return "bad_value"
        return "write_refused"
    if isinstance(exc, sqlite3.Error):
        code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        if code == _SQLITE_CONSTRAINT or isinstance(exc, sqlite3.IntegrityError):
            return "constraint_violation"
        if code == _SQLITE_TOOBIG:
            return "too_big"
        return "bad_value" if isinstance(exc, sqlite3.ProgrammingError) else "write_refused"
    if isinstance(exc, OverflowError | TypeError | ValueError | ArithmeticError):
        return "bad_value"
    return "write_refused"


def describe(exc: BaseException) -> str:
    """One line naming the error and its message (never a connection string: drivers'
    messages name the host, not the password)."""
    text = str(exc).strip().splitlines()
    first: Any = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
