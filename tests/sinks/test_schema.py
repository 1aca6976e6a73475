"""Connect schemas from Avro (as Confluent's AvroConverter maps them) and from Connect's
JSON envelope; identifiers checked and quoted without a database."""

from __future__ import annotations

import pytest

from oddstream.sinks import (
    FieldSchema,
    InvalidIdentifier,
    MysqlDialect,
    PostgresDialect,
    RecordSchema,
    SqliteDialect,
    UnsupportedSchema,
    from_avro,
    from_connect_json,
)
from oddstream.sinks.schema import NO_DEFAULT


def test_from_avro_types() -> None:
    s = from_avro(
        {
            "type": "record",
            "name": "bet",
            "fields": [
                {"name": "a", "type": {"type": "int", "connect.type": "int8"}},
                {"name": "b", "type": {"type": "int", "connect.type": "int16"}},
                {"name": "c", "type": "int"},
                {"name": "d", "type": "long"},
                {"name": "e", "type": "float"},
                {"name": "f", "type": "double"},
                {"name": "g", "type": "boolean"},
                {"name": "h", "type": ["null", "string"], "default": None},
                {"name": "i", "type": "bytes"},
                {"name": "j", "type": {"type": "bytes", "logicalType": "decimal",
                                       "precision": 12, "scale": 2}},
                {"name": "k", "type": {"type": "int", "logicalType": "date"}},
                {"name": "l", "type": {"type": "int", "logicalType": "time-millis"}},
                {"name": "m", "type": {"type": "long", "logicalType": "timestamp-millis"}},
                {"name": "n", "type": {"type": "enum", "name": "E", "symbols": ["X"]}},
                {"name": "o", "type": "string", "default": "win"},
            ],
        }
    )  # fmt: skip
    kinds = {f.name: (f.type, f.logical, f.optional) for f in s.fields}
    assert kinds == {
        "a": ("int8", None, False),
        "b": ("int16", None, False),
        "c": ("int32", None, False),
        "d": ("int64", None, False),
        "e": ("float32", None, False),
        "f": ("float64", None, False),
        "g": ("boolean", None, False),
        "h": ("string", None, True),
        "i": ("bytes", None, False),
        "j": ("bytes", "Decimal", False),
        "k": ("int32", "Date", False),
        "l": ("int32", "Time", False),
        "m": ("int64", "Timestamp", False),
        "n": ("string", None, False),
        "o": ("string", None, False),
    }
    assert s["j"].scale == 2
    assert s["h"].default is None
    assert s["h"].has_default
    assert s["o"].default == "win"
    assert s["a"].default is NO_DEFAULT
    assert not s["a"].has_default


@pytest.mark.parametrize(
    "field_type",
    [
        {"type": "record", "name": "n", "fields": []},
        {"type": "array", "items": "int"},
        {"type": "map", "values": "int"},
        ["null", "int", "string"],
    ],
)
def test_from_avro_refuses_what_maps_to_no_column(field_type: object) -> None:
    with pytest.raises(UnsupportedSchema, match="'x'"):
        from_avro({"type": "record", "name": "r", "fields": [{"name": "x", "type": field_type}]})


def test_from_avro_needs_a_record() -> None:
    with pytest.raises(UnsupportedSchema):
        from_avro({"type": "string"})


def test_from_connect_json() -> None:
    s = from_connect_json(
        {
            "type": "struct",
            "fields": [
                {"type": "int64", "optional": False, "field": "id"},
                {"type": "bytes", "optional": True, "field": "amount",
                 "name": "org.apache.kafka.connect.data.Decimal", "parameters": {"scale": "2"}},
                {"type": "int64", "optional": False, "field": "at",
                 "name": "org.apache.kafka.connect.data.Timestamp"},
            ],
        }
    )  # fmt: skip
    assert isinstance(s, RecordSchema)
    assert s.names == ("id", "amount", "at")
    assert (s["amount"].logical, s["amount"].scale, s["amount"].optional) == ("Decimal", 2, True)
    key = from_connect_json({"type": "string"})
    assert isinstance(key, FieldSchema)
    assert key.type == "string"
    with pytest.raises(UnsupportedSchema):
        from_connect_json({"type": "struct", "fields": [{"type": "array", "field": "x"}]})


def test_duplicate_field_refused() -> None:
    with pytest.raises(UnsupportedSchema):
        RecordSchema((FieldSchema("a", "int32"), FieldSchema("a", "string")))


def test_logical_type_on_the_wrong_base_refused() -> None:
    with pytest.raises(UnsupportedSchema):
        FieldSchema("a", "string", logical="Date")


@pytest.mark.parametrize(
    ("dialect", "name", "quoted"),
    [
        (PostgresDialect(), 'we"ird', '"we""ird"'),
        (SqliteDialect(), 'we"ird', '"we""ird"'),
        (MysqlDialect(), "we`ird", "`we``ird`"),
        (MysqlDialect(), 'semi;colon"--', '`semi;colon"--`'),
        (PostgresDialect(), "Ünïcode tåble", '"Ünïcode tåble"'),
    ],
)
def test_identifiers_quoted(dialect: object, name: str, quoted: str) -> None:
    assert dialect.quote(name) == quoted  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "name",
    ["", "nul\x00byte", "new\nline", "tab\there", " leading", "trailing ", "x" * 65],
)
@pytest.mark.parametrize("dialect", [PostgresDialect(), SqliteDialect(), MysqlDialect()])
def test_identifiers_refused(dialect: object, name: str) -> None:
    if name == "x" * 65 and isinstance(dialect, SqliteDialect):
        name = "x" * 129
    with pytest.raises(InvalidIdentifier):
        dialect.quote(name)  # type: ignore[attr-defined]


def test_table_names_split_on_one_dot() -> None:
    d = PostgresDialect()
    assert d.table_ref("analytics.bets") == '"analytics"."bets"'
    with pytest.raises(InvalidIdentifier):
        d.table_ref("a.b.c")
    with pytest.raises(InvalidIdentifier):
        d.table_ref("a.")


def test_percent_in_identifiers_survives_parameters() -> None:
    d = PostgresDialect()
    sql = f"SELECT {d.quote('100%')} WHERE x = {d.placeholder}"
    assert d.p(sql) == 'SELECT "100%%" WHERE x = %s'
    assert SqliteDialect().p(f"SELECT {SqliteDialect().placeholder}") == "SELECT ?"


def test_jdbc_postgres_parameters_to_libpq() -> None:
    from oddstream.sinks.dialects import libpq_params

    got = libpq_params(
        {"currentSchema": "analytics", "ssl": "true", "loginTimeout": "5",
         "ApplicationName": "sink", "prepareThreshold": "0", "sslrootcert": "/ca.pem"}
    )  # fmt: skip
    assert got == {
        "options": "-c search_path=analytics",
        "sslmode": "require",
        "connect_timeout": "5",
        "application_name": "sink",
        "sslrootcert": "/ca.pem",
    }


def test_avro_micros_stay_int64_as_confluents_avrodata_leaves_them() -> None:
    """Connect's Timestamp is epoch milliseconds: a timestamp-micros field taken as one had
    its integers read as milliseconds (a date 1000 times too far, or a ValueError)."""
    s = from_avro(
        {
            "type": "record",
            "name": "r",
            "fields": [
                {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
                {"name": "t", "type": {"type": "long", "logicalType": "time-micros"}},
            ],
        }
    )
    assert [(f.type, f.logical) for f in s.fields] == [("int64", None), ("int64", None)]
    assert PostgresDialect().sql_type(s["ts"]) == "BIGINT"
