"""Decoding Avro's JSON encoding into plain values."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from oddstream.integrations.kafka.avro_json import AvroJsonError, compile_decoder, decode
from oddstream.integrations.kafka.avro_schema import parse_avro, parse_avro_json
from oddstream.integrations.kafka.schema_registry import TOTE_WIN_BETS_VALUE

POC = compile_decoder(parse_avro(TOTE_WIN_BETS_VALUE))


def test_the_poc_records_unwrap() -> None:
    value = {"RUNNER_ID": {"int": 1}, "RACE_ID": {"int": 0}, "AMOUNT": {"double": 25.0}}
    assert POC(value) == {"RUNNER_ID": 1, "RACE_ID": 0, "AMOUNT": 25.0}
    assert POC({"RUNNER_ID": None, "RACE_ID": None, "AMOUNT": {"double": 3}}) == {
        "RUNNER_ID": None,
        "RACE_ID": None,
        "AMOUNT": 3.0,
    }


def test_missing_fields_take_their_default() -> None:
    assert POC({}) == {"RUNNER_ID": None, "RACE_ID": None, "AMOUNT": None}


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"RUNNER_ID": 1}, "RUNNER_ID"),  # not wrapped
        ({"RUNNER_ID": {"long": 1}}, "RUNNER_ID"),  # wrong branch
        ({"RUNNER_ID": {"int": 1, "long": 2}}, "RUNNER_ID"),
        ({"RUNNER_ID": {"int": "1"}}, "RUNNER_ID/int"),
        ({"RUNNER_ID": {"int": 2**31}}, "RUNNER_ID/int"),
        ({"RUNNER_ID": {"int": True}}, "RUNNER_ID/int"),
        ({"AMOUNT": {"double": "25"}}, "AMOUNT/double"),
        ({"AMOUNT": {"double": None}}, "AMOUNT/double"),
        ({"RUNNERID": {"int": 1}}, ""),  # unknown field (a typo)
        ([], ""),
        ("x", ""),
    ],
)
def test_bad_values_say_where(value: Any, where: str) -> None:
    with pytest.raises(AvroJsonError) as info:
        POC(value)
    assert "/".join(info.value.path) == where
    assert str(info.value)


def schema(value: Any) -> Any:
    return parse_avro_json(value)


@pytest.mark.parametrize(
    ("type_", "value", "decoded"),
    [
        ("null", None, None),
        ("boolean", False, False),
        ("int", -(2**31), -(2**31)),
        ("long", 2**63 - 1, 2**63 - 1),
        ("float", 1, 1.0),
        ("double", 2.5, 2.5),
        ("string", "héllo", "héllo"),
        ("bytes", "\u0000\u00ff", base64.b64encode(b"\x00\xff").decode()),
        ({"type": "fixed", "name": "F", "size": 2}, "ab", base64.b64encode(b"ab").decode()),
        ({"type": "enum", "name": "E", "symbols": ["A", "B"]}, "B", "B"),
        ({"type": "array", "items": ["null", "int"]}, [None, {"int": 3}], [None, 3]),
        ({"type": "map", "values": "long"}, {"a": 1}, {"a": 1}),
        (["null", "string", "long"], {"long": 5}, 5),
        (
            ["null", {"type": "record", "name": "x.P", "fields": [{"name": "a", "type": "int"}]}],
            {"x.P": {"a": 1}},
            {"a": 1},
        ),
        (
            ["null", {"type": "record", "name": "x.P", "fields": [{"name": "a", "type": "int"}]}],
            {"P": {"a": 1}},  # short name, unambiguous
            {"a": 1},
        ),
        (["null", {"type": "array", "items": "int"}], {"array": [1]}, [1]),
        (["null", {"type": "map", "values": "int"}], {"map": {"k": 1}}, {"k": 1}),
        ({"type": "int", "logicalType": "date"}, 19000, 19000),
    ],
)
def test_types(type_: Any, value: Any, decoded: Any) -> None:
    assert decode(schema(type_), value) == decoded


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        ("null", 0),
        ("boolean", 1),
        ("int", 1.0),
        ("long", 2**63),
        ("float", 1e39),
        ("float", "1"),
        ("double", True),
        ("string", 1),
        ("bytes", "\u0100"),
        ("bytes", 5),
        ({"type": "fixed", "name": "F", "size": 2}, "abc"),
        ({"type": "enum", "name": "E", "symbols": ["A"]}, "C"),
        ({"type": "array", "items": "int"}, {"a": 1}),
        ({"type": "array", "items": "int"}, [1, "2"]),
        ({"type": "map", "values": "int"}, [1]),
        ({"type": "map", "values": "int"}, {"a": "b"}),
        (["string", "int"], None),
        (["null", "int"], {"string": "x"}),
        (["null", "int"], {}),
    ],
)
def test_type_errors(type_: Any, value: Any) -> None:
    with pytest.raises(AvroJsonError):
        decode(schema(type_), value)


def test_defaults_are_plain_values_of_the_first_matching_branch() -> None:
    s = schema(
        {
            "type": "record",
            "name": "R",
            "fields": [
                {"name": "a", "type": ["int", "null"], "default": 7},
                {"name": "b", "type": {"type": "array", "items": "int"}, "default": [1]},
                {"name": "c", "type": "bytes", "default": "\u00ff"},
                {
                    "name": "d",
                    "type": {
                        "type": "record",
                        "name": "In",
                        "fields": [{"name": "x", "type": ["null", "int"], "default": None}],
                    },
                    "default": {},
                },
            ],
        }
    )
    decoder = compile_decoder(s)
    first = decoder({})
    assert first == {"a": 7, "b": [1], "c": base64.b64encode(b"\xff").decode(), "d": {"x": None}}
    first["b"].append(2)
    assert decoder({})["b"] == [1], "a mutable default is copied per record"


def test_recursive_types_decode() -> None:
    s = schema(
        {
            "type": "record",
            "name": "Node",
            "fields": [
                {"name": "v", "type": "int"},
                {"name": "next", "type": ["null", "Node"], "default": None},
            ],
        }
    )
    value = {"v": 1, "next": {"Node": {"v": 2, "next": None}}}
    assert decode(s, value) == {"v": 1, "next": {"v": 2, "next": None}}
    with pytest.raises(AvroJsonError) as info:
        decode(s, {"v": 1, "next": {"Node": {"v": "x"}}})
    assert info.value.path == ["next", "Node", "v"]


# ----------------------------------------------------------------- the flat-record fast path
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FLAT = parse_avro(
    '{"type": "record", "name": "Flat", "fields": ['
    '{"name": "i", "type": ["null", "int"]}, {"name": "d", "type": ["null", "double"]},'
    '{"name": "s", "type": "string"}, {"name": "l", "type": "long"},'
    '{"name": "f", "type": ["float", "null"]}, {"name": "b", "type": "boolean"},'
    '{"name": "n", "type": ["null", "string"], "default": null}]}'
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=False),
    st.text(max_size=3),
)
_wrapped = st.one_of(
    _scalars,
    st.dictionaries(st.sampled_from(["int", "double", "float", "string", "long"]), _scalars,
                    max_size=2),
)  # fmt: skip
_flat_values = st.one_of(
    st.fixed_dictionaries(
        {"i": _wrapped, "d": _wrapped, "f": _wrapped, "s": _scalars, "l": _scalars},
        optional={"b": _scalars, "n": _wrapped, "x": _scalars},
    ),
    _scalars,
)


def _outcome(decoder, value):
    try:
        return ("ok", decoder(value))
    except AvroJsonError as exc:
        return ("error", str(exc))


@settings(max_examples=400, deadline=None)
@given(_flat_values)
def test_the_flat_record_fast_path_agrees_with_the_general_decoder(value) -> None:
    import oddstream.integrations.kafka.avro_json as module

    fast = compile_decoder(FLAT)
    assert fast.__name__ == "decode_flat_record"
    original = module._fast_record
    module._fast_record = lambda *a: None
    try:
        general = compile_decoder(FLAT)
    finally:
        module._fast_record = original
    assert general.__name__ == "decode_record"
    assert _outcome(fast, value) == _outcome(general, value)
