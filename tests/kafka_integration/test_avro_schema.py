"""Parsing, validation and the canonical text of Avro schemas."""

from __future__ import annotations

import orjson
import pytest

from oddstream.integrations.kafka.avro_schema import AvroSchemaError, parse_avro, parse_avro_json
from oddstream.integrations.kafka.schema_registry import TOTE_WIN_BETS_VALUE


def canon(value: object) -> str:
    return parse_avro_json(value).canonical


def test_the_poc_schema_is_canonical_and_stable() -> None:
    schema = parse_avro(TOTE_WIN_BETS_VALUE)
    assert parse_avro(schema.canonical).canonical == schema.canonical
    root = orjson.loads(schema.canonical)
    assert root["name"] == "io.confluent.ksql.avro_schemas.KsqlDataSourceSchema"
    assert [f["name"] for f in root["fields"]] == ["RUNNER_ID", "RACE_ID", "AMOUNT"]
    assert all(f["default"] is None for f in root["fields"])


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ('"string"', '{"type": "string"}'),
        ('  {"type" : "int"}  ', '"int"'),
        (
            '{"type":"record","name":"X","namespace":"a.b","fields":[]}',
            '{"fields":[],"name":"a.b.X","type":"record"}',
        ),
        (
            '{"type":"record","name":"X","fields":[{"name":"f","type":{"type":"long"}}]}',
            '{"type":"record","name":"X","fields":[{"type":"long","name":"f"}]}',
        ),
        (
            '{"type":"record","name":"X","fields":[{"name":"f","type":"int","order":"ascending"}]}',
            '{"type":"record","name":"X","fields":[{"name":"f","type":"int"}]}',
        ),
        (
            # a name used inside a namespace resolves in it
            '{"type":"record","name":"O","namespace":"n","fields":['
            '{"name":"a","type":{"type":"enum","name":"E","symbols":["A"]}},'
            '{"name":"b","type":"E"}]}',
            '{"type":"record","name":"n.O","fields":['
            '{"name":"a","type":{"type":"enum","name":"n.E","symbols":["A"]}},'
            '{"name":"b","type":"n.E"}]}',
        ),
    ],
)
def test_equal_meaning_gives_equal_canonical_text(a: str, b: str) -> None:
    assert parse_avro(a).canonical == parse_avro(b).canonical
    assert parse_avro(a) == parse_avro(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            '{"type":"record","name":"X","fields":[{"name":"f","type":"int"}]}',
            '{"type":"record","name":"X","fields":[{"name":"f","type":"int","default":1}]}',
        ),
        (
            '{"type":"record","name":"X","fields":[{"name":"f","type":"int"}]}',
            '{"type":"record","name":"Y","fields":[{"name":"f","type":"int"}]}',
        ),
        ('{"type":"int","logicalType":"date"}', '"int"'),
        ('["null","int"]', '["int","null"]'),
    ],
)
def test_different_meaning_gives_different_text(a: str, b: str) -> None:
    assert parse_avro(a).canonical != parse_avro(b).canonical


def test_properties_are_kept_in_a_fixed_order() -> None:
    a = canon({"type": "bytes", "scale": 2, "precision": 9, "logicalType": "decimal"})
    b = canon({"logicalType": "decimal", "precision": 9, "type": "bytes", "scale": 2})
    assert a == b
    assert orjson.loads(a)["logicalType"] == "decimal"


def test_recursive_types_parse() -> None:
    schema = parse_avro(
        '{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},'
        '{"name":"next","type":["null","Node"],"default":null}]}'
    )
    assert schema.kind("Node") == "record"
    assert schema.kind(schema.root["fields"][1]["type"]) == "union"


def test_null_namespace_inside_a_namespace_is_written_explicitly() -> None:
    text = canon(
        {
            "type": "record",
            "name": "Outer",
            "namespace": "a",
            "fields": [
                {
                    "name": "f",
                    "type": {"type": "fixed", "name": "F", "namespace": "", "size": 2},
                }
            ],
        }
    )
    inner = orjson.loads(text)["fields"][0]["type"]
    assert inner == {"type": "fixed", "name": "F", "namespace": "", "size": 2}
    assert parse_avro(text).canonical == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "not json",
        "42",
        "null",
        '"nosuchtype"',
        '{"type":"record","name":"X"}',
        '{"type":"record","fields":[]}',
        '{"type":"record","name":"1X","fields":[]}',
        '{"type":"record","name":"X","fields":[{"name":"a","type":"int"},{"name":"a","type":"int"}]}',
        '{"type":"record","name":"X","fields":[{"name":"a"}]}',
        '{"type":"record","name":"X","fields":[{"name":"a","type":"int","default":"x"}]}',
        '{"type":"record","name":"X","fields":[{"name":"a","type":"int","default":3000000000}]}',
        '{"type":"record","name":"X","fields":[{"name":"a","type":"int","order":"up"}]}',
        '{"type":"record","name":"X","fields":[{"name":"a","type":"X2"}]}',
        '{"type":"record","name":"X","fields":[{"name":"a","type":{"type":"record","name":"X","fields":[]}}]}',
        '{"type":"enum","name":"E","symbols":["A","A"]}',
        '{"type":"enum","name":"E","symbols":["1"]}',
        '{"type":"enum","name":"E","symbols":["A"],"default":"B"}',
        '{"type":"enum","name":"E"}',
        '{"type":"fixed","name":"F","size":-1}',
        '{"type":"fixed","name":"F","size":"2"}',
        '{"type":"array"}',
        '{"type":"map"}',
        '{"type":{"type":"int"}}',
        '{"type":"record","name":"int","fields":[]}',
        "[]",
        '["int","int"]',
        '["null",["int"]]',
        '[{"type":"array","items":"int"},{"type":"array","items":"long"}]',
        '{"type":"record","name":"X","fields":{}}',
        '{"type":"record","name":"X","fields":[1]}',
        '{"type":"record","name":"X","aliases":"Y","fields":[]}',
        '{"type":"record","name":"X","doc":5,"fields":[]}',
        "[" * 600 + "]" * 600,
        '{"type":"array","items":' * 300 + '"int"' + "}" * 300,
    ],
)
def test_invalid_schemas_are_refused(text: str) -> None:
    with pytest.raises(AvroSchemaError):
        parse_avro(text)


def test_non_string_input_is_refused() -> None:
    with pytest.raises(AvroSchemaError):
        parse_avro(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field_type", "default"),
    [
        (["null", "int"], None),
        (["int", "null"], 1),
        (["int", "null"], None),  # lenient, as fastavro: any branch
        ("long", 2**62),
        ("double", 1),
        ("float", 1.5),
        ("boolean", True),
        ("bytes", "\u00ff"),
        ({"type": "array", "items": "int"}, [1, 2]),
        ({"type": "map", "values": "string"}, {"a": "b"}),
        ({"type": "enum", "name": "E", "symbols": ["A", "B"]}, "B"),
        ({"type": "fixed", "name": "F", "size": 2}, "ab"),
        (
            {
                "type": "record",
                "name": "R",
                "fields": [
                    {"name": "x", "type": "int"},
                    {"name": "y", "type": "int", "default": 0},
                ],
            },
            {"x": 1},
        ),
    ],
)
def test_valid_defaults(field_type: object, default: object) -> None:
    parse_avro_json(
        {
            "type": "record",
            "name": "X",
            "fields": [{"name": "f", "type": field_type, "default": default}],
        }
    )


@pytest.mark.parametrize(
    ("field_type", "default"),
    [
        ("int", True),
        ("int", 1.5),
        ("string", 1),
        ("null", 0),
        ({"type": "array", "items": "int"}, ["a"]),
        ({"type": "map", "values": "int"}, {"a": "b"}),
        ({"type": "fixed", "name": "F", "size": 2}, "abc"),
        ({"type": "record", "name": "R", "fields": [{"name": "x", "type": "int"}]}, {}),
    ],
)
def test_invalid_defaults(field_type: object, default: object) -> None:
    with pytest.raises(AvroSchemaError):
        parse_avro_json(
            {
                "type": "record",
                "name": "X",
                "fields": [{"name": "f", "type": field_type, "default": default}],
            }
        )
