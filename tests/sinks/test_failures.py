"""Which driver errors mean "the target is unavailable" (wait, nothing lost) and which
"this record can never be written" (dead-letter it): read by code, as the drivers raise
them."""

from __future__ import annotations

import sqlite3

import psycopg
import pymysql
import pytest

from oddstream.sinks.failures import is_transient, reason_of


def _sqlite(code: int) -> sqlite3.Error:
    exc = sqlite3.OperationalError("sqlite says no")
    exc.sqlite_errorcode = code
    return exc


def _pg(sqlstate: str) -> psycopg.Error:
    return psycopg.errors.lookup(sqlstate)("postgres says no")


#: errors about the server, the session or the other transactions: a record's write
#: fails with them while a plain read (the probe) succeeds, so taking them for the
#: record's would dead-letter good data
TRANSIENT_MARIADB = {
    1020: "Record has changed since last read",
    1036: "Table is read only",
    1037: "Out of memory",
    1041: "Out of resources",
    1135: "Can't create a new thread",
    1158: "Got an error reading communication packets",
    1159: "Got timeout reading communication packets",
    1160: "Got an error writing communication packets",
    1161: "Got timeout writing communication packets",
    1180: "Got error during COMMIT",
    1181: "Got error during ROLLBACK",
    1203: "User already has more than 'max_user_connections' active connections",
    1226: "User has exceeded the resource",
    1412: "Table definition has changed, please retry transaction",
    1615: "Prepared statement needs to be re-prepared",
    1637: "Too many active concurrent transactions",
    1792: "Cannot execute statement in a READ ONLY transaction",
    1969: "Query execution was interrupted (max_statement_time exceeded)",
    3572: "Statement aborted because lock(s) could not be acquired immediately",
    # already known before
    1205: "Lock wait timeout exceeded",
    1213: "Deadlock found when trying to get lock",
    2006: "MySQL server has gone away",
    2013: "Lost connection to MySQL server during query",
}


@pytest.mark.parametrize("errno", sorted(TRANSIENT_MARIADB))
def test_mariadb_errors_about_the_server_are_transient(errno: int) -> None:
    assert is_transient(pymysql.err.OperationalError(errno, TRANSIENT_MARIADB[errno]))


@pytest.mark.parametrize(
    ("errno", "reason"),
    [
        (1062, "constraint_violation"),
        (1406, "too_big"),
        (1366, "bad_value"),
        (1048, "constraint_violation"),
    ],
)
def test_mariadb_errors_about_the_data_are_the_records(errno: int, reason: str) -> None:
    exc = pymysql.err.IntegrityError(errno, "bad data")
    assert not is_transient(exc)
    assert reason_of(exc) == reason


@pytest.mark.parametrize(
    "sqlstate", ["40001", "40P01", "55P03", "57014", "25006", "08006", "53300", "72000", "F0000"]
)
def test_postgres_errors_about_the_server_are_transient(sqlstate: str) -> None:
    assert is_transient(_pg(sqlstate))


@pytest.mark.parametrize(
    ("sqlstate", "reason"),
    [("23505", "constraint_violation"), ("22001", "bad_value"), ("54000", "too_big")],
)
def test_postgres_errors_about_the_data_are_the_records(sqlstate: str, reason: str) -> None:
    exc = _pg(sqlstate)
    assert not is_transient(exc)
    assert reason_of(exc) == reason


@pytest.mark.parametrize("code", [5, 6, 8, 9, 10, 13, 14, 17, 5 | (1 << 8)])
def test_sqlite_errors_about_the_database_are_transient(code: int) -> None:
    # BUSY, LOCKED, READONLY, INTERRUPT, IOERR, FULL, CANTOPEN, SCHEMA, BUSY_RECOVERY
    assert is_transient(_sqlite(code))


def test_sqlite_constraint_and_too_big_are_the_records() -> None:
    assert not is_transient(_sqlite(19))
    assert reason_of(_sqlite(19)) == "constraint_violation"
    assert not is_transient(_sqlite(18))
    assert reason_of(_sqlite(18)) == "too_big"
