"""The sink's writes on the three real databases: auto-create and evolve, each insert and
key mode, deletes from tombstones, the position committed with the rows, odd identifiers,
the type mapping."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest

from oddstream.sinks import (
    FieldSchema,
    InvalidIdentifier,
    JdbcSink,
    PositionConflict,
    RecordError,
    RecordSchema,
    SchemaMismatch,
    SinkRecord,
    TableMissing,
    UnsupportedSchema,
    from_avro,
    parse_config,
)
from oddstream.sinks.config import parse_connection_url
from oddstream.sinks.dialects import MysqlDialect, PostgresDialect

from .conftest import Target

#: Each driver's error for a duplicate primary key.
DUPLICATE_KEY = (sqlite3.IntegrityError, psycopg.errors.UniqueViolation, pymysql.err.IntegrityError)

V1 = RecordSchema((FieldSchema("id", "int64"), FieldSchema("name", "string")))
V2 = RecordSchema(
    (
        FieldSchema("id", "int64"),
        FieldSchema("name", "string"),
        FieldSchema("odds", "float64", optional=True),
    )
)


def rec(topic: str, value: dict[str, Any] | None, schema: RecordSchema | None = V1, **kw: Any):
    return SinkRecord(topic, value, schema if value is not None else None, **kw)


def write(sink: JdbcSink, records: list[SinkRecord]) -> Any:
    """Write ``records`` as the next batch of the sink's log."""
    after = sink.stored_position() or 0
    return sink.write(records, after=after, position=after + len(records))


def test_auto_create_with_the_key_and_nullability(target: Target) -> None:
    t = target.table()
    schema = RecordSchema(
        (
            FieldSchema("id", "int64"),
            FieldSchema("name", "string"),
            FieldSchema("note", "string", optional=True),
        )
    )
    config = target.config(t, auto_create="true", pk_mode="record_value", pk_fields="id")
    with JdbcSink(target.sink_name(), config) as sink:
        write(sink, [rec(t, {"id": 1, "name": "a", "note": None}, schema)])
    assert target.rows(t) == [(1, "a", None)]
    assert target.primary_key(t) == ["id"]
    assert target.nullable(t) == {"id": False, "name": False, "note": True}


def test_a_table_created_meanwhile_by_another_writer(target: Target) -> None:
    """Regression: two writers (two replays into a new database) both found no table and
    both ran CREATE TABLE; the second failed (PostgreSQL's DuplicateTable or a
    pg_type UniqueViolation, MariaDB's 1050) instead of writing into the table the first
    had just made."""
    t = target.table()
    config = target.config(t, auto_create="true", pk_mode="record_value", pk_fields="id")
    with JdbcSink(target.sink_name(), config) as first:
        write(first, [rec(t, {"id": 1, "name": "a"})])
    with JdbcSink(target.sink_name(), config) as second:
        reflect = second.dialect.existing_columns
        seen = 0

        def not_yet(cur: Any, table: str) -> Any:
            nonlocal seen
            seen += 1
            # the second writer looked before the first had made the table
            return None if seen == 1 else reflect(cur, table)

        second.dialect.existing_columns = not_yet  # type: ignore[method-assign]
        write(second, [rec(t, {"id": 2, "name": "b"})])
    assert target.rows(t) == [(1, "a"), (2, "b")]


def test_missing_table_without_auto_create(target: Target) -> None:
    t = target.table()
    with JdbcSink(target.sink_name(), target.config(t)) as sink:
        with pytest.raises(TableMissing):
            write(sink, [rec(t, {"id": 1, "name": "a"})])
        assert sink.stored_position() is None


def test_evolve_adds_nullable_columns_never_drops(target: Target) -> None:
    t = target.table()
    config = target.config(t, auto_create="true", auto_evolve="true")
    with JdbcSink(target.sink_name(), config) as sink:
        write(sink, [rec(t, {"id": 1, "name": "a"})])
        write(sink, [rec(t, {"id": 2, "name": "b", "odds": 2.5}, V2)])
        write(sink, [rec(t, {"id": 3, "name": "c"})])  # the older schema still writes
    assert target.rows(t) == [(1, "a", None), (2, "b", 2.5), (3, "c", None)]
    assert target.nullable(t)["odds"] is True


def test_evolve_with_a_default(target: Target) -> None:
    t = target.table()
    config = target.config(t, auto_create="true", auto_evolve="true")
    v3 = RecordSchema((*V1.fields, FieldSchema("kind", "string", default="win")))
    with JdbcSink(target.sink_name(), config) as sink:
        write(sink, [rec(t, {"id": 1, "name": "a"})])
        write(sink, [rec(t, {"id": 2, "name": "b", "kind": "place"}, v3)])
    assert target.rows(t) == [(1, "a", "win"), (2, "b", "place")]


def test_evolve_refusals(target: Target) -> None:
    t = target.table()
    required = RecordSchema((*V1.fields, FieldSchema("stake", "int64")))
    with JdbcSink(target.sink_name(), target.config(t, auto_create="true")) as sink:
        write(sink, [rec(t, {"id": 1, "name": "a"})])
        with pytest.raises(SchemaMismatch, match=r"auto\.evolve"):
            write(sink, [rec(t, {"id": 2, "name": "b", "odds": 1.0}, V2)])
    config = target.config(t, auto_create="true", auto_evolve="true")
    with (
        JdbcSink(target.sink_name(), config) as sink,
        pytest.raises(SchemaMismatch, match="neither optional nor has a default"),
    ):
        write(sink, [rec(t, {"id": 2, "name": "b", "stake": 5}, required)])
    assert target.rows(t) == [(1, "a")]


def test_insert_mode_without_key_keeps_duplicates(target: Target) -> None:
    t = target.table()
    with JdbcSink(target.sink_name(), target.config(t, auto_create="true")) as sink:
        write(sink, [rec(t, {"id": 1, "name": "a"}), rec(t, {"id": 1, "name": "a"})])
    assert target.count(t) == 2


def test_insert_duplicate_key_fails_the_whole_batch(target: Target) -> None:
    t = target.table()
    config = target.config(t, auto_create="true", pk_mode="record_value", pk_fields="id")
    with JdbcSink(target.sink_name(), config) as sink:
        write(sink, [rec(t, {"id": 1, "name": "a"})])
        with pytest.raises(DUPLICATE_KEY):
            sink.write(
                [rec(t, {"id": 2, "name": "b"}), rec(t, {"id": 1, "name": "again"})],
                after=1,
                position=3,
            )
        assert sink.stored_position() == 1  # neither the rows nor the position moved
    assert target.rows(t) == [(1, "a")]


def test_upsert_record_value_last_write_of_a_key_wins(target: Target) -> None:
    t = target.table()
    config = target.config(
        t, auto_create="true", insert_mode="upsert", pk_mode="record_value", pk_fields="id"
    )
    with JdbcSink(target.sink_name(), config) as sink:
        write(sink, [rec(t, {"id": 1, "name": "a"}), rec(t, {"id": 2, "name": "b"})])
        write(
            sink,
            [
                rec(t, {"id": 2, "name": "b2"}),
                rec(t, {"id": 3, "name": "c"}),
                rec(t, {"id": 2, "name": "b3"}),
            ],
        )
    assert target.rows(t) == [(1, "a"), (2, "b3"), (3, "c")]


def test_upsert_record_value_all_fields_are_the_key(target: Target) -> None:
    t = target.table()
    config = target.config(t, auto_create="true", insert_mode="upsert", pk_mode="record_value")
    with JdbcSink(target.sink_name(), config) as sink:
        write(sink, [rec(t, {"id": 1, "name": "a"}), rec(t, {"id": 1, "name": "a"})])
    assert target.rows(t) == [(1, "a")]
    assert target.primary_key(t) == ["id", "name"]


def test_upsert_record_key_struct(target: Target) -> None:
    t = target.table()
    key_schema = RecordSchema((FieldSchema("race", "string"), FieldSchema("runner", "int32")))
    value = RecordSchema((FieldSchema("runner", "int32"), FieldSchema("odds", "float64")))
    config = target.config(t, auto_create="true", insert_mode="upsert", pk_mode="record_key")

    def r(race: str, runner: int, odds: float) -> SinkRecord:
        key = {"race": race, "runner": runner}
        return SinkRecord(t, {"runner": runner, "odds": odds}, value, key, key_schema)

    with JdbcSink(target.sink_name(), config) as sink:
        write(sink, [r("r1", 1, 2.0), r("r1", 2, 3.0), r("r2", 1, 4.0)])
        write(sink, [r("r1", 1, 2.5)])
    assert target.rows(t, order_by="odds") == [("r1", 1, 2.5), ("r1", 2, 3.0), ("r2", 1, 4.0)]
    assert target.primary_key(t) == ["race", "runner"]
    if target.kind == "mariadb":  # a string in a key: VARCHAR(256), TEXT cannot be one
        assert target.column_types(t)["race"] == "VARCHAR(256)"


def test_record_key_primitive_needs_one_pk_field(target: Target) -> None:
    t = target.table()
    key_schema = FieldSchema("", "int64")
    value = RecordSchema((FieldSchema("name", "string"),))
    config = target.config(
        t, auto_create="true", insert_mode="upsert", pk_mode="record_key", pk_fields="bet_id"
    )
    with JdbcSink(target.sink_name(), config) as sink:
        write(sink, [SinkRecord(t, {"name": "a"}, value, 7, key_schema)])
        write(sink, [SinkRecord(t, {"name": "b"}, value, 7, key_schema)])
    assert target.rows(t, order_by="bet_id") == [(7, "b")]
    no_field = target.config(t, insert_mode="upsert", pk_mode="record_key")
    with (
        JdbcSink(target.sink_name(), no_field) as sink,
        pytest.raises(SchemaMismatch, match="exactly one"),
    ):
        write(sink, [SinkRecord(t, {"name": "c"}, value, 8, key_schema)])


def test_update_mode_changes_existing_rows_only(target: Target) -> None:
    t = target.table()
    insert = target.config(t, auto_create="true", pk_mode="record_value", pk_fields="id")
    with JdbcSink(target.sink_name(), insert) as sink:
        write(sink, [rec(t, {"id": 1, "name": "a"}), rec(t, {"id": 2, "name": "b"})])
    update = target.config(t, insert_mode="update", pk_mode="record_value", pk_fields="id")
    with JdbcSink(target.sink_name(), update) as sink:
        write(sink, [rec(t, {"id": 2, "name": "B"}), rec(t, {"id": 9, "name": "none"})])
    assert target.rows(t) == [(1, "a"), (2, "B")]


def test_deletes_from_tombstones(target: Target) -> None:
    t = target.table()
    key_schema = FieldSchema("", "int64")
    value = RecordSchema((FieldSchema("name", "string"),))
    config = target.config(
        t,
        auto_create="true",
        insert_mode="upsert",
        pk_mode="record_key",
        pk_fields="id",
        delete_enabled="true",
    )

    def up(k: int, name: str) -> SinkRecord:
        return SinkRecord(t, {"name": name}, value, k, key_schema)

    def tomb(k: int) -> SinkRecord:
        return SinkRecord(t, None, None, k, key_schema)

    with JdbcSink(target.sink_name(), config) as sink:
        write(sink, [up(1, "a"), up(2, "b"), up(3, "c")])
        result = write(sink, [tomb(2), up(4, "d"), tomb(4), up(3, "c2"), tomb(3), up(3, "c3")])
        assert (result.deleted, result.rows) == (3, 3)  # tombstones, upserts applied
    assert target.rows(t) == [(1, "a"), (3, "c3")]


def test_tombstones_skipped_when_deletes_are_off(target: Target) -> None:
    t = target.table()
    with JdbcSink(target.sink_name(), target.config(t, auto_create="true")) as sink:
        result = write(sink, [rec(t, {"id": 1, "name": "a"}), rec(t, None, key=1)])
    assert (result.rows, result.skipped) == (1, 1)
    assert target.count(t) == 1


def test_position_moves_with_the_rows_and_a_batch_is_never_written_twice(
    target: Target,
) -> None:
    t = target.table()
    name = target.sink_name()
    config = target.config(t, auto_create="true")  # no key: a second write would show
    batch1 = [rec(t, {"id": i, "name": "x"}) for i in range(3)]
    batch2 = [rec(t, {"id": i, "name": "x"}) for i in range(3, 5)]
    with JdbcSink(name, config) as sink:
        assert sink.stored_position() is None
        assert sink.write(batch1, after=0, position=3).rows == 3
    # a restart that still believes it is at 0 (its acknowledgement was lost)
    with JdbcSink(name, config) as sink:
        assert sink.stored_position() == 3
        again = sink.write(batch1, after=0, position=3)
        assert again.already_written
        assert again.rows == 0
        with pytest.raises(PositionConflict):
            sink.write(batch2, after=4, position=6)  # a gap: nothing is skipped over
        sink.write(batch2, after=3, position=5)
        assert sink.stored_position() == 5
    assert [r[0] for r in target.rows(t)] == [0, 1, 2, 3, 4]


def test_two_instances_of_one_sink_never_both_write(target: Target) -> None:
    t = target.table()
    name = target.sink_name()
    config = target.config(t, auto_create="true")
    with JdbcSink(name, config) as first, JdbcSink(name, config) as second:
        assert first.stored_position() is None
        assert second.stored_position() is None
        first.write([rec(t, {"id": 1, "name": "a"})], after=0, position=1)
        first.write([rec(t, {"id": 2, "name": "b"})], after=1, position=2)
        # the second still believes the target is at 0: its (0, 1] is already there,
        # and (1, 3] no longer starts where the target stands
        assert second.write([rec(t, {"id": 1, "name": "a"})], after=0, position=1).already_written
        with pytest.raises(PositionConflict) as err:
            second.write([rec(t, {"id": 9, "name": "z"})], after=1, position=3)
        assert (err.value.expected, err.value.stored) == (1, 2)
    assert [r[0] for r in target.rows(t)] == [1, 2]


class Crash(BaseException):
    """Stands for the process dying between the rows and the commit."""


def test_crash_before_commit_loses_nothing_and_duplicates_nothing(target: Target) -> None:
    t = target.table()
    name = target.sink_name()
    config = target.config(t, auto_create="true")
    batches = [[rec(t, {"id": i * 10 + j, "name": "x"}) for j in range(4)] for i in range(3)]
    with JdbcSink(name, config) as sink:
        sink.write(batches[0], after=0, position=4)
        real_save = sink.dialect.save_position

        def crash(*args: Any) -> None:
            real_save(*args)
            raise Crash

        sink.dialect.save_position = crash  # type: ignore[method-assign]
        with pytest.raises(Crash):
            sink.write(batches[1], after=4, position=8)
    assert target.count(t) == 4
    # the restarted sink resumes from what is stored, the runner gives the batches again
    with JdbcSink(name, config) as sink:
        position = sink.stored_position()
        assert position == 4
        for i, batch in enumerate(batches):
            sink.write(batch, after=i * 4, position=(i + 1) * 4)
        assert sink.stored_position() == 12
    ids = [r[0] for r in target.rows(t)]
    assert ids == sorted(i * 10 + j for i in range(3) for j in range(4))


CHILD = textwrap.dedent(
    """
    import sys
    from oddstream.sinks import FieldSchema, JdbcSink, RecordSchema, SinkRecord, parse_config
    url, topic, name = sys.argv[1:4]
    schema = RecordSchema((FieldSchema("id", "int64"), FieldSchema("name", "string")))
    config = parse_config({"connector.class": "JdbcSinkConnector", "connection.url": url,
                           "topics": topic, "auto.create": "true"})
    with JdbcSink(name, config) as sink:
        position = sink.stored_position() or 0
        while position < 4000:
            batch = [SinkRecord(topic, {"id": i, "name": "x"}, schema)
                     for i in range(position, position + 100)]
            sink.write(batch, after=position, position=position + 100)
            position += 100
            print(position, flush=True)
    """
)


@pytest.mark.slow
def test_sigkill_mid_stream_then_resume_exactly_once(target: Target, tmp_path: Path) -> None:
    t = target.table()
    name = target.sink_name()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, target.url, t, name],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert child.stdout is not None
    try:
        for line in child.stdout:  # kill it while it writes, after a few batches
            if int(line) >= 700:
                break
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
        child.stdout.close()
    schema = RecordSchema((FieldSchema("id", "int64"), FieldSchema("name", "string")))
    config = target.config(t, auto_create="true")
    with JdbcSink(name, config) as sink:
        position = sink.stored_position() or 0
        assert 700 <= position < 4000
        assert target.count(t) == position  # the rows are exactly the committed batches
        while position < 4000:
            batch = [
                rec(t, {"id": i, "name": "x"}, schema) for i in range(position, position + 100)
            ]
            sink.write(batch, after=position, position=position + 100)
            position += 100
    ids = [r[0] for r in target.rows(t)]
    assert ids == list(range(4000))


ODD_TABLE = 'odd "tab`le;-- 100%'
ODD_COLUMNS = ('we"ird', "back`tick", "spa ce", "per%cent", "ünï")


def test_odd_identifiers_quoted(target: Target) -> None:
    table = target.table("odd") + ' "tab`le;-- 100%'
    target.tables.append(table)
    schema = RecordSchema(tuple(FieldSchema(c, "string", optional=True) for c in ODD_COLUMNS))
    config = target.config(
        "bets",
        auto_create="true",
        auto_evolve="true",
        insert_mode="upsert",
        pk_mode="record_value",
        pk_fields='we"ird',
        extra={"table.name.format": table},
    )
    with JdbcSink(target.sink_name(), config) as sink:
        write(sink, [SinkRecord("bets", dict.fromkeys(ODD_COLUMNS, "v"), schema)])
        wider = RecordSchema((*schema.fields, FieldSchema("new;col", "int32", optional=True)))
        write(sink, [SinkRecord("bets", {**dict.fromkeys(ODD_COLUMNS, "v"), "new;col": 1}, wider)])
    assert target.rows(table, order_by='we"ird') == [("v", "v", "v", "v", "v", 1)]


@pytest.mark.parametrize("bad", ["bad\x00name", "line\nbreak", "a.b.c", " space"])
def test_unfit_table_names_refused_before_any_sql(target: Target, bad: str) -> None:
    config = target.config("bets", auto_create="true", extra={"table.name.format": bad})
    with JdbcSink(target.sink_name(), config) as sink:
        with pytest.raises(InvalidIdentifier):
            write(sink, [rec("bets", {"id": 1, "name": "a"})])
        assert sink.stored_position() is None


ALL_TYPES = {
    "type": "record",
    "name": "all",
    "fields": [
        {"name": "i8", "type": {"type": "int", "connect.type": "int8"}},
        {"name": "i16", "type": {"type": "int", "connect.type": "int16"}},
        {"name": "i32", "type": "int"},
        {"name": "i64", "type": "long"},
        {"name": "f32", "type": "float"},
        {"name": "f64", "type": "double"},
        {"name": "b", "type": "boolean"},
        {"name": "s", "type": "string"},
        {"name": "by", "type": "bytes"},
        {"name": "dec", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10,
                                 "scale": 2}},
        {"name": "d", "type": {"type": "int", "logicalType": "date"}},
        {"name": "t", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}  # fmt: skip

#: Confluent's JDBC sink type mapping per database, as the database reports each column.
EXPECTED_TYPES = {
    "sqlite": {
        "i8": "INTEGER", "i16": "INTEGER", "i32": "INTEGER", "i64": "INTEGER", "f32": "REAL",
        "f64": "REAL", "b": "INTEGER", "s": "TEXT", "by": "BLOB", "dec": "NUMERIC",
        "d": "NUMERIC", "t": "NUMERIC", "ts": "NUMERIC",
    },
    "postgres": {
        "i8": "SMALLINT", "i16": "SMALLINT", "i32": "INTEGER", "i64": "BIGINT", "f32": "REAL",
        "f64": "DOUBLE PRECISION", "b": "BOOLEAN", "s": "TEXT", "by": "BYTEA",
        "dec": "NUMERIC", "d": "DATE", "t": "TIME WITHOUT TIME ZONE",
        "ts": "TIMESTAMP WITHOUT TIME ZONE",
    },
    "mariadb": {
        "i8": "TINYINT(4)", "i16": "SMALLINT(6)", "i32": "INT(11)", "i64": "BIGINT(20)",
        "f32": "FLOAT", "f64": "DOUBLE", "b": "TINYINT(4)", "s": "TEXT",
        "by": "VARBINARY(1024)", "dec": "DECIMAL(65,2)", "d": "DATE", "t": "TIME(3)",
        "ts": "DATETIME(3)",
    },
}  # fmt: skip


def test_type_mapping_and_values(target: Target) -> None:
    t = target.table()
    schema = from_avro(ALL_TYPES)
    value = {
        "i8": -5, "i16": 300, "i32": 70000, "i64": 2**40, "f32": 1.5, "f64": 2.25, "b": True,
        "s": "naïve 'quoted'", "by": b"\x00\x01\xff", "dec": Decimal("12.34"),
        "d": dt.date(2026, 3, 1), "t": dt.time(13, 45, 1, 500000),
        "ts": dt.datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    }  # fmt: skip
    with JdbcSink(target.sink_name(), target.config(t, auto_create="true")) as sink:
        write(sink, [SinkRecord(t, value, schema)])
    assert target.column_types(t) == EXPECTED_TYPES[target.kind]
    (row,) = target.query(f"SELECT * FROM {target.dialect.quote(t)}")
    got = dict(zip(schema.names, row, strict=True))
    assert (got["i8"], got["i16"], got["i32"], got["i64"]) == (-5, 300, 70000, 2**40)
    assert (got["f32"], got["f64"], got["s"]) == (1.5, 2.25, "naïve 'quoted'")
    assert bytes(got["by"]) == b"\x00\x01\xff"
    assert bool(got["b"]) is True
    if target.kind == "sqlite":  # ISO text; NUMERIC keeps the decimal as a number
        assert (got["d"], got["t"], got["ts"]) == (
            "2026-03-01",
            "13:45:01.500000",
            "2026-03-01 10:00:00.250",
        )
        assert got["dec"] == 12.34
    else:  # the instant in UTC (db.timezone), without a zone, as Confluent's sink writes it
        assert got["dec"] == Decimal("12.34")
        assert got["d"] == dt.date(2026, 3, 1)
        assert got["ts"] == dt.datetime(2026, 3, 1, 10, 0, 0, 250000)
        t_value = got["t"]
        if isinstance(t_value, dt.timedelta):  # PyMySQL reads TIME as a duration
            t_value = (dt.datetime.min + t_value).time()
        assert t_value == dt.time(13, 45, 1, 500000)


def test_timestamps_in_db_timezone(target: Target) -> None:
    t = target.table()
    schema = RecordSchema(
        (FieldSchema("id", "int64"), FieldSchema("at", "int64", logical="Timestamp"))
    )
    config = target.config(t, auto_create="true", extra={"db.timezone": "Europe/London"})
    at = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)  # 13:00 in London (summer time)
    with JdbcSink(target.sink_name(), config) as sink:
        write(sink, [SinkRecord(t, {"id": 1, "at": at}, schema)])
        write(sink, [SinkRecord(t, {"id": 2, "at": int(at.timestamp() * 1000)}, schema)])
    values = [r[1] for r in target.rows(t)]
    expected = dt.datetime(2026, 7, 1, 13, 0)
    if target.kind == "sqlite":
        assert values == [expected.isoformat(sep=" ", timespec="milliseconds")] * 2
    else:
        assert values == [expected, expected]


def test_several_topics_one_batch_one_transaction(target: Target) -> None:
    a, b = target.table(), target.table()
    config = target.config(f"{a},{b}", auto_create="true")
    with JdbcSink(target.sink_name(), config) as sink:
        write(sink, [rec(a, {"id": 1, "name": "a"}), rec(b, {"id": 2, "name": "b"})])
        real = sink.dialect.insert
        calls = 0

        def fail_second(*args: Any) -> None:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise RuntimeError("the database went away")
            real(*args)

        sink.dialect.insert = fail_second  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            write(sink, [rec(a, {"id": 3, "name": "a"}), rec(b, {"id": 4, "name": "b"})])
        assert sink.stored_position() == 2
    assert (target.count(a), target.count(b)) == (1, 1)


def test_record_key_mode_refuses_a_null_key_naming_the_record(target: Target) -> None:
    t = target.table()
    key_schema = FieldSchema("", "int64")
    value = RecordSchema((FieldSchema("name", "string"),))
    config = target.config(t, auto_create="true", pk_mode="record_key", pk_fields="id")
    with JdbcSink(target.sink_name(), config) as sink:
        batch = [
            SinkRecord(t, {"name": "a"}, value, 1, key_schema),
            SinkRecord(t, {"name": "b"}, value, None, key_schema),
        ]
        with pytest.raises(RecordError, match="null") as err:
            write(sink, batch)
        assert err.value.index == 1
        assert sink.stored_position() is None


def test_postgres_current_schema_from_the_url(pg_url: str) -> None:
    """``?currentSchema=`` (pgJDBC's) puts the tables and the offsets in that schema."""
    schema = f"sink_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        host = pg_url.split("@", 1)[1]
        url = f"jdbc:postgresql://{host}?user=postgres&currentSchema={schema}"
        config = parse_config(
            {"connector.class": "JdbcSinkConnector", "connection.url": url, "topics": "bets",
             "auto.create": "true"}
        )  # fmt: skip
        with JdbcSink("sink-schema", config) as sink:
            sink.write([rec("bets", {"id": 1, "name": "a"})], after=0, position=1)
        with psycopg.connect(pg_url) as conn:
            assert conn.execute(f'SELECT id, name FROM "{schema}".bets').fetchall() == [(1, "a")]
            offsets = conn.execute(f'SELECT name, position FROM "{schema}".oddstream_sink_offsets')
            assert offsets.fetchall() == [("sink-schema", 1)]
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


# --- review: the offsets row, reserved tables, defaults, identifiers ----------------------


def test_sink_names_differing_in_case_accent_or_trailing_space_are_distinct(
    target: Target,
) -> None:
    """Connector names are compared exactly: on MariaDB the default collation made
    ``Sales`` and ``sales`` one offsets row, so the second sink's batch was taken as
    already written and its rows were never written."""
    t = target.table()
    config = target.config(t, auto_create="true")
    base = target.sink_name()
    names = [base + "-Sales", base + "-sales", base + "-sales ", base + "-salés"]
    target.sinks.extend(names)
    for i, name in enumerate(names):
        with JdbcSink(name, config) as sink:
            assert sink.stored_position() is None
            result = sink.write([rec(t, {"id": i, "name": name})], after=0, position=1)
            assert not result.already_written
            assert result.rows == 1
    assert target.count(t) == len(names)


@pytest.mark.parametrize(
    "table",
    [
        "oddstream_sink_offsets",
        "ODDSTREAM_SINK_OFFSETS",
        "other.oddstream_sink_offsets",
        "oddstream_stage_1",
        "Oddstream_Stage_7",
    ],
)
def test_the_sinks_own_tables_are_never_targets(target: Target, table: str) -> None:
    """A topic (or table.name.format) naming the offsets table would let records set any
    sink's position; a staging table's name is hidden by PostgreSQL's temporary table."""
    schema = RecordSchema((FieldSchema("name", "string"), FieldSchema("position", "int64")))
    config = target.config(
        "t",
        auto_create="true",
        insert_mode="upsert",
        pk_mode="record_value",
        pk_fields="name",
        extra={"table.name.format": table},
    )
    victim = target.sink_name()
    with JdbcSink(target.sink_name(), config) as sink:
        with pytest.raises(InvalidIdentifier, match="reserved"):
            sink.write([SinkRecord("t", {"name": victim, "position": 10**6}, schema)], after=0,
                       position=1)  # fmt: skip
        assert sink.stored_position() is None
    with JdbcSink(victim, target.config("t")) as sink:
        assert sink.stored_position() is None


ODD_DEFAULT = "it's a \\ back\\slash \\' and \\\\ ; --"


def test_defaults_are_literals_of_each_database(target: Target) -> None:
    """Booleans, numbers and strings (quotes, backslashes) as defaults: the table is
    created and evolved, and a row that leaves the columns out reads the defaults back."""
    t = target.table()
    schema = RecordSchema(
        (
            FieldSchema("id", "int64"),
            FieldSchema("yes", "boolean", default=True),
            FieldSchema("no", "boolean", default=False),
            FieldSchema("n", "int32", default=-7),
            FieldSchema("x", "float64", default=2.5),
            FieldSchema("s", "string", default=ODD_DEFAULT),
        )
    )
    wider = RecordSchema((*schema.fields, FieldSchema("s2", "string", default=ODD_DEFAULT)))
    config = target.config(t, auto_create="true", auto_evolve="true")
    with JdbcSink(target.sink_name(), config) as sink:
        value = {"id": 1, "yes": True, "no": False, "n": 1, "x": 1.0, "s": "v"}
        write(sink, [rec(t, value, schema)])
        write(sink, [rec(t, {**value, "id": 2, "s2": "w"}, wider)])
    q = target.dialect.quote
    cur = target.conn.cursor()
    target.dialect.begin(target.conn)
    cur.execute(f"INSERT INTO {q(t)} ({q('id')}) VALUES (3)")
    target.dialect.commit(target.conn)
    row = target.query(
        f"SELECT {q('yes')}, {q('no')}, {q('n')}, {q('x')}, {q('s')}, {q('s2')} FROM {q(t)} "
        f"WHERE {q('id')} = 3"
    )[0]
    assert (bool(row[0]), bool(row[1]), row[2], row[3]) == (True, False, -7, 2.5)
    assert row[4] == ODD_DEFAULT
    assert row[5] == ODD_DEFAULT
    assert target.rows(t)[1][6] == "w"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), b"\x00", [1]])
def test_a_default_with_no_sql_literal_is_refused(target: Target, bad: Any) -> None:
    t = target.table()
    schema = RecordSchema((FieldSchema("id", "int64"), FieldSchema("f", "float64", default=bad)))
    with JdbcSink(target.sink_name(), target.config(t, auto_create="true")) as sink:
        with pytest.raises(UnsupportedSchema):
            write(sink, [rec(t, {"id": 1, "f": 1.0}, schema)])
        assert sink.stored_position() is None


def test_postgres_default_cannot_end_its_literal_without_standard_strings(pg_url: str) -> None:
    """With standard_conforming_strings off (a database or role may set it), a backslash
    in '…' escapes the quote that follows: a default from a producer's schema then ended
    the literal and ran its own SQL. E'…' with the backslash doubled never ends early."""
    suffix = uuid.uuid4().hex[:10]
    table, pwned = f"dflt_{suffix}", f"pwned_{suffix}"
    host = pg_url.split("@", 1)[1]
    url = f"jdbc:postgresql://{host}?user=postgres&options=-c%20standard_conforming_strings%3Doff"
    evil = f"a\\' NOT NULL); CREATE TABLE {pwned} (a int); --"
    schema = RecordSchema((FieldSchema("id", "int64"), FieldSchema("s", "string", default=evil)))
    config = parse_config(
        {"connector.class": "JdbcSinkConnector", "connection.url": url, "topics": "t",
         "table.name.format": table, "auto.create": "true"}
    )  # fmt: skip
    name = f"sink-{suffix}"
    try:
        with JdbcSink(name, config) as sink:
            sink.write([SinkRecord("t", {"id": 1, "s": "v"}, schema)], after=0, position=1)
        with psycopg.connect(pg_url) as conn:
            assert conn.execute("SELECT to_regclass(%s)", (pwned,)).fetchone() == (None,)
            conn.execute(f'INSERT INTO "{table}" (id) VALUES (2)')
            got = conn.execute(f'SELECT s FROM "{table}" WHERE id = 2').fetchone()
            assert got == (evil,)
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP TABLE IF EXISTS "{table}", "{pwned}"')
            conn.execute("DELETE FROM oddstream_sink_offsets WHERE name = %s", (name,))


def test_mariadb_identifiers_beyond_the_bmp_refused_before_any_sql() -> None:
    """MariaDB identifiers hold Basic Multilingual Plane characters only: refused as
    InvalidIdentifier, not a driver error half way through."""
    with pytest.raises(InvalidIdentifier, match="U\\+FFFF"):
        MysqlDialect().quote("bets_🎲")
    assert MysqlDialect().quote("bets_é") == "`bets_é`"
    assert PostgresDialect().quote("bets_🎲") == '"bets_🎲"'


def test_mariadb_offsets_table_of_an_earlier_version_made_exact(mariadb_url: str) -> None:
    """An offsets table created with a text ``name`` (the database's case- and
    accent-insensitive collation) is made binary when a sink opens: its rows are kept and
    names differing only in case are two sinks."""
    url = parse_connection_url(mariadb_url)
    db = f"sinkdb_{uuid.uuid4().hex[:10]}"
    admin = pymysql.connect(
        host=url.host, port=url.port or 3306, user=url.user or "root",
        password=url.password or "", autocommit=True,
    )  # fmt: skip
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
            cur.execute(
                f"CREATE TABLE `{db}`.oddstream_sink_offsets (name VARCHAR(255) NOT NULL "
                "PRIMARY KEY, position BIGINT NOT NULL) ENGINE=InnoDB"
            )
            cur.execute(f"INSERT INTO `{db}`.oddstream_sink_offsets VALUES ('Sales', 5)")
        jdbc = f"jdbc:mysql://{url.host}:{url.port}/{db}?user={url.user or 'root'}"
        config = parse_config(
            {"connector.class": "JdbcSinkConnector", "connection.url": jdbc, "topics": "bets",
             "auto.create": "true"}
        )  # fmt: skip
        with JdbcSink("Sales", config) as sales:
            assert sales.stored_position() == 5
        with JdbcSink("sales", config) as other:
            assert other.stored_position() is None
            result = other.write([rec("bets", {"id": 1, "name": "a"})], after=0, position=1)
            assert (result.rows, result.already_written) == (1, False)
        with admin.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM `{db}`.bets")
            assert cur.fetchone() == (1,)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        admin.close()
