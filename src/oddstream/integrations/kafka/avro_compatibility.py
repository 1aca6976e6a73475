"""Schema compatibility by Avro's schema-resolution rules.

A *reader* schema can read data written with a *writer* schema when (Avro
specification, "Schema Resolution"):

* both are the same primitive, or the writer's type promotes to the reader's:
  ``int`` → ``long``/``float``/``double``, ``long`` → ``float``/``double``,
  ``float`` → ``double``, ``string`` ↔ ``bytes``;
* both are records with the same unqualified name (or the writer's full name is among
  the reader's aliases, which are full names: an unqualified alias is in the reader's
  namespace), every reader field is either in the writer (by name or one
  of the reader field's aliases) with a readable type, or has a default; writer fields
  the reader lacks are skipped;
* both are enums with the same name, and every writer symbol is a reader symbol unless
  the reader has a default symbol;
* both are fixed with the same name and size; arrays with readable items; maps with
  readable values;
* the writer is a union: the reader can read every branch; the reader is a union (and
  the writer not): some branch of the reader can read the writer.

Logical types are ignored (their underlying types decide), as Avro's Java checker does.

The levels: ``BACKWARD`` – the new schema reads data of the latest one; ``FORWARD`` –
the latest reads the new; ``FULL`` – both; the ``*_TRANSITIVE`` variants check against
every earlier schema instead of the latest; ``NONE`` checks nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .avro_schema import AvroSchema, short_name

_PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


class Level(enum.StrEnum):
    """A subject's compatibility level."""

    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"
    NONE = "NONE"

    @classmethod
    def parse(cls, value: object) -> Level | None:
        """The level named by ``value`` (any case), or ``None``."""
        if not isinstance(value, str):
            return None
        try:
            return cls(value.strip().upper())
        except ValueError:
            return None

    @property
    def transitive(self) -> bool:
        """Whether the check covers every earlier schema, not only the latest."""
        return self.name.endswith("_TRANSITIVE")

    @property
    def backward(self) -> bool:
        """Whether the new schema must read data written with the old ones."""
        return self.name.startswith(("BACKWARD", "FULL"))

    @property
    def forward(self) -> bool:
        """Whether the old schemas must read data written with the new one."""
        return self.name.startswith(("FORWARD", "FULL"))


@dataclass(frozen=True, slots=True)
class Incompatibility:
    """One reason a reader cannot read a writer's data.

    ``kind`` is one of ``TYPE_MISMATCH``, ``NAME_MISMATCH``, ``FIXED_SIZE_MISMATCH``,
    ``MISSING_ENUM_SYMBOLS``, ``READER_FIELD_MISSING_DEFAULT_VALUE`` and
    ``MISSING_UNION_BRANCH``; ``path`` points into the reader schema (``/fields/1/type``).
    """

    kind: str
    path: str
    detail: str


@dataclass(frozen=True, slots=True)
class Violation:
    """An incompatibility between the new schema and ``previous[index]``.

    ``direction`` is ``BACKWARD`` (the new schema cannot read the old one's data) or
    ``FORWARD`` (the old schema cannot read the new one's data).
    """

    index: int
    direction: str
    problem: Incompatibility


def incompatibilities(reader: AvroSchema, writer: AvroSchema) -> list[Incompatibility]:
    """Every reason ``reader`` cannot read data written with ``writer`` (empty: it can)."""
    return _Checker(reader, writer).check(reader.root, writer.root, "")


def can_read(reader: AvroSchema, writer: AvroSchema) -> bool:
    """Whether ``reader`` can read data written with ``writer``."""
    return not incompatibilities(reader, writer)


def check_compatibility(
    level: Level, new: AvroSchema, previous: Sequence[AvroSchema]
) -> list[Violation]:
    """What makes ``new`` incompatible under ``level`` with ``previous`` (oldest first;
    a non-transitive level looks at the last one only). Empty: compatible."""
    if level is Level.NONE or not previous:
        return []
    indexes = range(len(previous)) if level.transitive else [len(previous) - 1]
    found: list[Violation] = []
    for i in indexes:
        old = previous[i]
        if level.backward:
            found += [Violation(i, "BACKWARD", p) for p in incompatibilities(new, old)]
        if level.forward:
            found += [Violation(i, "FORWARD", p) for p in incompatibilities(old, new)]
    return found


class _Checker:
    def __init__(self, reader: AvroSchema, writer: AvroSchema) -> None:
        self.reader = reader
        self.writer = writer
        # Pairs of named types being compared further up: a recursive type meets itself
        # again, and is compatible unless something else says otherwise.
        self.in_progress: set[tuple[str, str]] = set()

    def check(self, r: Any, w: Any, path: str) -> list[Incompatibility]:
        rkind, wkind = self.reader.kind(r), self.writer.kind(w)
        r, w = self.reader.resolve(r), self.writer.resolve(w)
        if wkind == "union":
            found: list[Incompatibility] = []
            for branch in w:
                found += self.check(r, branch, path)
            return found
        if rkind == "union":
            for i, branch in enumerate(r):
                if not self.check(branch, w, f"{path}/{i}"):
                    return []
            return [
                Incompatibility(
                    "MISSING_UNION_BRANCH",
                    path or "/",
                    f"the reader union lacks a type for the writer's {self.describe(w, wkind)}",
                )
            ]
        if rkind != wkind:
            if rkind in _PROMOTIONS.get(wkind, ()):
                return []
            return [
                Incompatibility(
                    "TYPE_MISMATCH",
                    path or "/",
                    f"the reader's type {self.describe(r, rkind)} cannot read the writer's "
                    f"{self.describe(w, wkind)}",
                )
            ]
        if rkind in ("record", "enum", "fixed"):
            key = (r["name"], w["name"])
            if key in self.in_progress:
                return []
            if not _names_match(r, w):
                return [
                    Incompatibility(
                        "NAME_MISMATCH",
                        f"{path}/name",
                        f"the reader's name {r['name']!r} does not match the writer's "
                        f"{w['name']!r}",
                    )
                ]
            self.in_progress.add(key)
            try:
                return getattr(self, f"check_{rkind}")(r, w, path)
            finally:
                self.in_progress.discard(key)
        if rkind == "array":
            return self.check(r["items"], w["items"], f"{path}/items")
        if rkind == "map":
            return self.check(r["values"], w["values"], f"{path}/values")
        return []

    def check_record(
        self, r: dict[str, Any], w: dict[str, Any], path: str
    ) -> list[Incompatibility]:
        writer_fields = {f["name"]: f for f in w["fields"]}
        found: list[Incompatibility] = []
        for i, rf in enumerate(r["fields"]):
            wf = writer_fields.get(rf["name"])
            if wf is None:
                for alias in rf.get("aliases", ()):
                    wf = writer_fields.get(alias)
                    if wf is not None:
                        break
            here = f"{path}/fields/{i}"
            if wf is not None:
                found += self.check(rf["type"], wf["type"], f"{here}/type")
            elif "default" not in rf:
                found.append(
                    Incompatibility(
                        "READER_FIELD_MISSING_DEFAULT_VALUE",
                        here,
                        f"the reader's field {rf['name']!r} has no default value and is "
                        "missing in the writer",
                    )
                )
        return found

    def check_enum(self, r: dict[str, Any], w: dict[str, Any], path: str) -> list[Incompatibility]:
        missing = [s for s in w["symbols"] if s not in r["symbols"]]
        if not missing or "default" in r:
            return []
        return [
            Incompatibility(
                "MISSING_ENUM_SYMBOLS",
                f"{path}/symbols",
                f"the reader's enum {r['name']!r} lacks the writer's symbols {missing}",
            )
        ]

    def check_fixed(self, r: dict[str, Any], w: dict[str, Any], path: str) -> list[Incompatibility]:
        if r["size"] == w["size"]:
            return []
        return [
            Incompatibility(
                "FIXED_SIZE_MISMATCH",
                f"{path}/size",
                f"the reader's fixed {r['name']!r} has size {r['size']}, the writer's {w['size']}",
            )
        ]

    @staticmethod
    def describe(node: Any, kind: str) -> str:
        if kind in ("record", "enum", "fixed"):
            return f"{kind} {node['name']!r}"
        return kind


def _names_match(r: dict[str, Any], w: dict[str, Any]) -> bool:
    # Names compare unqualified; an alias is a full name (the parser qualified it by the
    # reader's namespace) and matches the writer's full name only, as in the spec's
    # alias rewriting and Java's SchemaCompatibility.schemaNameEquals.
    return short_name(r["name"]) == short_name(w["name"]) or w["name"] in r.get("aliases", ())
