"""The compatibility checker: reader/writer resolution rules and the seven levels."""

from __future__ import annotations

from typing import Any

import pytest

from oddstream.integrations.kafka.avro_compatibility import (
    Level,
    can_read,
    check_compatibility,
    incompatibilities,
)
from oddstream.integrations.kafka.avro_schema import AvroSchema, parse_avro_json


def s(value: Any) -> AvroSchema:
    return parse_avro_json(value)


def rec(*fields: dict[str, Any], name: str = "R", **extra: Any) -> AvroSchema:
    return s({"type": "record", "name": name, "fields": list(fields), **extra})


def f(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


ENUM_AB = {"type": "enum", "name": "E", "symbols": ["A", "B"]}
ENUM_ABC = {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}

# (name, reader, writer, can the reader read the writer's data?, expected kind if not)
CASES: list[tuple[str, AvroSchema, AvroSchema, bool, str | None]] = [
    ("same primitive", s("int"), s("int"), True, None),
    ("int→long", s("long"), s("int"), True, None),
    ("int→float", s("float"), s("int"), True, None),
    ("int→double", s("double"), s("int"), True, None),
    ("long→float", s("float"), s("long"), True, None),
    ("long→double", s("double"), s("long"), True, None),
    ("float→double", s("double"), s("float"), True, None),
    ("string→bytes", s("bytes"), s("string"), True, None),
    ("bytes→string", s("string"), s("bytes"), True, None),
    ("long↛int", s("int"), s("long"), False, "TYPE_MISMATCH"),
    ("double↛float", s("float"), s("double"), False, "TYPE_MISMATCH"),
    ("float↛long", s("long"), s("float"), False, "TYPE_MISMATCH"),
    ("int↛string", s("string"), s("int"), False, "TYPE_MISMATCH"),
    ("boolean↛int", s("int"), s("boolean"), False, "TYPE_MISMATCH"),
    ("null↛int", s("int"), s("null"), False, "TYPE_MISMATCH"),
    ("logical types ignored", s({"type": "int", "logicalType": "date"}), s("int"), True, None),
    # records
    ("same record", rec(f("a", "int")), rec(f("a", "int")), True, None),
    (
        "reader adds field with default",
        rec(f("a", "int"), f("b", "int", default=0)),
        rec(f("a", "int")),
        True,
        None,
    ),
    (
        "reader adds field without default",
        rec(f("a", "int"), f("b", "int")),
        rec(f("a", "int")),
        False,
        "READER_FIELD_MISSING_DEFAULT_VALUE",
    ),
    ("reader drops a field", rec(f("a", "int")), rec(f("a", "int"), f("b", "int")), True, None),
    ("field promoted", rec(f("a", "long")), rec(f("a", "int")), True, None),
    ("field narrowed", rec(f("a", "int")), rec(f("a", "long")), False, "TYPE_MISMATCH"),
    ("record renamed", rec(f("a", "int"), name="S"), rec(f("a", "int")), False, "NAME_MISMATCH"),
    (
        "namespace differs, short name same",
        rec(f("a", "int"), name="x.R"),
        rec(f("a", "int"), name="y.R"),
        True,
        None,
    ),
    (
        "reader aliases the old name",
        rec(f("a", "int"), name="S", aliases=["R"]),
        rec(f("a", "int")),
        True,
        None,
    ),
    (
        "unqualified alias is relative to the reader's namespace",
        rec(f("a", "int"), name="a.S", aliases=["R"]),
        rec(f("a", "int"), name="a.R"),
        True,
        None,
    ),
    (
        "alias naming another namespace",
        rec(f("a", "int"), name="a.S", aliases=["b.R"]),
        rec(f("a", "int"), name="b.R"),
        True,
        None,
    ),
    # an alias is a full name (spec, "Aliases"): it does not match by its last part
    (
        "alias in the reader's namespace, writer in another",
        rec(f("a", "int"), name="a.S", aliases=["R"]),
        rec(f("a", "int"), name="b.R"),
        False,
        "NAME_MISMATCH",
    ),
    (
        "alias in the reader's namespace, writer in none",
        s({"type": "fixed", "name": "a.X", "aliases": ["Y"], "size": 1}),
        s({"type": "fixed", "name": "Y", "size": 1}),
        False,
        "NAME_MISMATCH",
    ),
    ("field renamed with alias", rec(f("b", "int", aliases=["a"])), rec(f("a", "int")), True, None),
    (
        "field renamed without alias",
        rec(f("b", "int")),
        rec(f("a", "int")),
        False,
        "READER_FIELD_MISSING_DEFAULT_VALUE",
    ),
    (
        "nested record field added with default",
        rec(
            f(
                "n",
                {
                    "type": "record",
                    "name": "N",
                    "fields": [f("x", "int"), f("y", "string", default="")],
                },
            )
        ),
        rec(f("n", {"type": "record", "name": "N", "fields": [f("x", "int")]})),
        True,
        None,
    ),
    (
        "nested record field added without default",
        rec(f("n", {"type": "record", "name": "N", "fields": [f("x", "int"), f("y", "string")]})),
        rec(f("n", {"type": "record", "name": "N", "fields": [f("x", "int")]})),
        False,
        "READER_FIELD_MISSING_DEFAULT_VALUE",
    ),
    ("record vs primitive", rec(f("a", "int")), s("int"), False, "TYPE_MISMATCH"),
    # enums
    ("enum gains a symbol", s(ENUM_ABC), s(ENUM_AB), True, None),
    ("enum loses a symbol", s(ENUM_AB), s(ENUM_ABC), False, "MISSING_ENUM_SYMBOLS"),
    (
        "enum loses a symbol, reader default",
        s({**ENUM_AB, "default": "A"}),
        s(ENUM_ABC),
        True,
        None,
    ),
    ("enum renamed", s({**ENUM_AB, "name": "F"}), s(ENUM_AB), False, "NAME_MISMATCH"),
    # fixed
    (
        "fixed same",
        s({"type": "fixed", "name": "F", "size": 4}),
        s({"type": "fixed", "name": "F", "size": 4}),
        True,
        None,
    ),
    (
        "fixed resized",
        s({"type": "fixed", "name": "F", "size": 8}),
        s({"type": "fixed", "name": "F", "size": 4}),
        False,
        "FIXED_SIZE_MISMATCH",
    ),
    (
        "fixed renamed",
        s({"type": "fixed", "name": "G", "size": 4}),
        s({"type": "fixed", "name": "F", "size": 4}),
        False,
        "NAME_MISMATCH",
    ),
    # arrays and maps
    (
        "array items promoted",
        s({"type": "array", "items": "long"}),
        s({"type": "array", "items": "int"}),
        True,
        None,
    ),
    (
        "array items narrowed",
        s({"type": "array", "items": "int"}),
        s({"type": "array", "items": "long"}),
        False,
        "TYPE_MISMATCH",
    ),
    (
        "map values promoted",
        s({"type": "map", "values": "double"}),
        s({"type": "map", "values": "float"}),
        True,
        None,
    ),
    (
        "map values changed",
        s({"type": "map", "values": "string"}),
        s({"type": "map", "values": "int"}),
        False,
        "TYPE_MISMATCH",
    ),
    (
        "array vs map",
        s({"type": "array", "items": "int"}),
        s({"type": "map", "values": "int"}),
        False,
        "TYPE_MISMATCH",
    ),
    (
        "array of records",
        s({"type": "array", "items": rec(f("a", "int"), f("b", "int", default=1)).root}),
        s({"type": "array", "items": rec(f("a", "int")).root}),
        True,
        None,
    ),
    # unions
    ("reader union has writer type", s(["null", "int"]), s("int"), True, None),
    ("reader union promotes writer type", s(["null", "long"]), s("int"), True, None),
    (
        "reader union lacks writer type",
        s(["null", "string"]),
        s("int"),
        False,
        "MISSING_UNION_BRANCH",
    ),
    ("writer union, reader plain", s("int"), s(["null", "int"]), False, "TYPE_MISMATCH"),
    ("writer union, reader plain covering all", s("double"), s(["int", "float"]), True, None),
    ("reader union superset", s(["null", "int", "string"]), s(["null", "int"]), True, None),
    (
        "reader union subset",
        s(["null", "int"]),
        s(["null", "int", "string"]),
        False,
        "MISSING_UNION_BRANCH",
    ),
    ("union reordered", s(["int", "null"]), s(["null", "int"]), True, None),
    ("union branch promoted", s(["null", "double"]), s(["null", "float"]), True, None),
    (
        "field becomes nullable",
        rec(f("a", ["null", "int"], default=None)),
        rec(f("a", "int")),
        True,
        None,
    ),
    (
        "field stops being nullable",
        rec(f("a", "int")),
        rec(f("a", ["null", "int"], default=None)),
        False,
        "TYPE_MISMATCH",
    ),
    (
        "union of records by name",
        s(["null", rec(f("a", "int"), f("b", "int", default=0), name="A").root]),
        s(["null", rec(f("a", "int"), name="A").root]),
        True,
        None,
    ),
]


@pytest.mark.parametrize(
    ("reader", "writer", "ok", "kind"),
    [pytest.param(r, w, ok, k, id=name) for name, r, w, ok, k in CASES],
)
def test_reader_writer(reader: AvroSchema, writer: AvroSchema, ok: bool, kind: str | None) -> None:
    found = incompatibilities(reader, writer)
    assert can_read(reader, writer) is ok
    if ok:
        assert found == []
    else:
        assert kind in {p.kind for p in found}, found


def test_paths_point_into_the_reader() -> None:
    reader = rec(f("a", "int"), f("b", {"type": "array", "items": "int"}))
    writer = rec(f("a", "int"), f("b", {"type": "array", "items": "long"}))
    (problem,) = incompatibilities(reader, writer)
    assert problem.path == "/fields/1/type/items"


def test_every_problem_is_reported() -> None:
    reader = rec(f("a", "int"), f("b", "int"), f("c", "string"))
    writer = rec(f("a", "long"), f("c", "int"))
    kinds = sorted(p.kind for p in incompatibilities(reader, writer))
    assert kinds == ["READER_FIELD_MISSING_DEFAULT_VALUE", "TYPE_MISMATCH", "TYPE_MISMATCH"]


def test_recursive_schemas_terminate() -> None:
    def linked(value_type: str, extra: list[dict[str, Any]]) -> AvroSchema:
        return rec(f("v", value_type), f("next", ["null", "R"], default=None), *extra, name="R")

    assert can_read(linked("long", []), linked("int", []))
    assert not can_read(linked("int", []), linked("long", []))
    assert can_read(linked("int", [f("x", "int", default=0)]), linked("int", []))
    assert not can_read(linked("int", [f("x", "int")]), linked("int", []))


V1 = rec(f("a", "int"))
V2 = rec(f("a", "int"), f("b", "int", default=0))  # adds b with a default
V3 = rec(f("a", "int"), f("b", "int"))  # b loses its default
NO_DEFAULT_NEW = rec(f("a", "int"), f("c", "int"))  # adds c without default
DROPS_A = rec(f("b", "int", default=0))  # drops a (which has no default)


@pytest.mark.parametrize(
    ("level", "new", "previous", "ok"),
    [
        # BACKWARD: the new schema reads the latest
        (Level.BACKWARD, V2, [V1], True),
        (Level.BACKWARD, NO_DEFAULT_NEW, [V1], False),
        (Level.BACKWARD, DROPS_A, [V2], True),
        (Level.BACKWARD, V1, [V2], True),
        # FORWARD: the latest reads the new schema
        (Level.FORWARD, NO_DEFAULT_NEW, [V1], True),
        (Level.FORWARD, V2, [V1], True),
        (Level.FORWARD, DROPS_A, [V2], False),
        (Level.FORWARD, V1, [V3], False),
        # FULL: both
        (Level.FULL, V2, [V1], True),
        (Level.FULL, NO_DEFAULT_NEW, [V1], False),
        (Level.FULL, DROPS_A, [V2], False),
        # NONE: anything
        (Level.NONE, s("string"), [V1], True),
        (Level.NONE, DROPS_A, [V1, V2], True),
        # nothing to compare with
        (Level.FULL_TRANSITIVE, V3, [], True),
        # non-transitive levels look at the latest only...
        (Level.BACKWARD, V3, [V1, V2], True),
        (Level.FORWARD, V1, [V3, V2], True),
        (Level.FULL, V2, [s("string"), V1], True),
        # ...transitive ones at every earlier schema
        (Level.BACKWARD_TRANSITIVE, V3, [V1, V2], False),
        (Level.BACKWARD_TRANSITIVE, V2, [V1, V2], True),
        (Level.FORWARD_TRANSITIVE, V1, [V3, V2], False),
        (Level.FORWARD_TRANSITIVE, V1, [V2, V2], True),
        (Level.FULL_TRANSITIVE, V2, [s("string"), V1], False),
        (Level.FULL_TRANSITIVE, V2, [V1, V2], True),
    ],
)
def test_levels(level: Level, new: AvroSchema, previous: list[AvroSchema], ok: bool) -> None:
    violations = check_compatibility(level, new, previous)
    assert (not violations) is ok, violations


def test_violations_say_which_schema_and_direction() -> None:
    # V3 cannot read V1's data (b is missing there and has no default); V2's is fine
    violations = check_compatibility(Level.FULL_TRANSITIVE, V3, [V1, V2])
    assert [(v.index, v.direction) for v in violations] == [(0, "BACKWARD")]
    # DROPS_A reads both (a is skipped, b has a default); neither reads DROPS_A's data
    violations = check_compatibility(Level.FULL_TRANSITIVE, DROPS_A, [V1, V2])
    assert {(v.index, v.direction) for v in violations} == {(0, "FORWARD"), (1, "FORWARD")}
    violations = check_compatibility(Level.FORWARD_TRANSITIVE, V1, [V3, V2])
    assert [(v.index, v.direction) for v in violations] == [(0, "FORWARD")]


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("backward", Level.BACKWARD),
        (" FULL_TRANSITIVE ", Level.FULL_TRANSITIVE),
        ("None", Level.NONE),
        ("bogus", None),
        ("", None),
        (5, None),
        (None, None),
    ],
)
def test_level_names(text: object, level: Level | None) -> None:
    assert Level.parse(text) is level


def test_level_properties() -> None:
    assert Level.FULL.backward
    assert Level.FULL.forward
    assert not Level.FULL.transitive
    assert Level.BACKWARD_TRANSITIVE.transitive
    assert not Level.BACKWARD_TRANSITIVE.forward
    assert Level.FORWARD.forward
    assert not Level.FORWARD.backward
    assert not Level.NONE.backward
    assert not Level.NONE.forward
