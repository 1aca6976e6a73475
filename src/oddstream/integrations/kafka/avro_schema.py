"""Avro schemas: parse, validate, and reduce to one canonical text.

Two schemas that mean the same thing get the same canonical text, so the registry can
give them the same global id: whitespace and key order do not matter, ``{"type":
"int"}`` is ``"int"``, names are written fully qualified (``"name": "a.b.X"`` and
``{"name": "X", "namespace": "a.b"}`` are equal), a named type is written out at its
first use and referred to by full name after. Unlike Avro's Parsing Canonical Form the
canonical text keeps what changes meaning for readers or people (defaults, aliases,
docs, logical types and other properties), so it is also the text the registry serves.

Validation is two-fold: this module checks the structure the Avro specification asks
for (names, duplicate fields and symbols, union rules, defaults that fit their type),
and ``fastavro.parse_schema`` must accept the result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import fastavro
import orjson

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "error", "enum", "fixed"})
COMPLEX = NAMED | {"array", "map"}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MAX_DEPTH = 200
_INT_RANGE = (-(2**31), 2**31 - 1)
_LONG_RANGE = (-(2**63), 2**63 - 1)
_FIELD_KEYS = ("name", "type", "default", "doc", "order", "aliases")
_ORDERS = frozenset({"ascending", "descending", "ignore"})


class AvroSchemaError(ValueError):
    """The text is not a valid Avro schema; the message says why."""


@dataclass(frozen=True, slots=True)
class AvroSchema:
    """A parsed, validated Avro schema.

    ``root`` is the canonical JSON structure: a primitive name or a full type name (a
    reference to a named type), a list (a union) or a dict (a complex type, or a
    primitive with properties). ``names`` maps every full name to its definition.
    Equality is equality of the canonical text.
    """

    canonical: str
    root: Any = field(compare=False)
    names: Mapping[str, dict[str, Any]] = field(compare=False, repr=False)

    def resolve(self, node: Any) -> Any:
        """``node`` with a reference to a named type replaced by its definition."""
        if isinstance(node, str) and node not in PRIMITIVES:
            return self.names[node]
        return node

    def kind(self, node: Any) -> str:
        """What ``node`` is: a primitive name, ``record``, ``enum``, ``fixed``,
        ``array``, ``map`` or ``union``."""
        node = self.resolve(node)
        if isinstance(node, str):
            return node
        if isinstance(node, list):
            return "union"
        kind: str = node["type"]
        return "record" if kind == "error" else kind


def parse_avro(text: str) -> AvroSchema:
    """Parse a schema given as JSON text; raise :class:`AvroSchemaError` if invalid."""
    if not isinstance(text, str):
        raise AvroSchemaError("the schema must be a string holding JSON")
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise AvroSchemaError(f"the schema is not valid JSON: {exc}") from None
    return parse_avro_json(value)


def parse_avro_json(value: Any) -> AvroSchema:
    """Parse a schema given as decoded JSON; raise :class:`AvroSchemaError` if invalid."""
    normalizer = _Normalizer()
    try:
        root = normalizer.node(value, "", 0)
    except RecursionError:
        raise AvroSchemaError("the schema is nested too deeply") from None
    canonical = orjson.dumps(root).decode()
    try:
        fastavro.parse_schema(orjson.loads(canonical))
    except Exception as exc:  # fastavro raises several types, all meaning "invalid"
        raise AvroSchemaError(f"fastavro rejects the schema: {exc}") from None
    return AvroSchema(canonical, root, normalizer.names)


def full_name(name: str, namespace: str) -> str:
    """``name`` qualified by ``namespace`` unless it already holds a dot."""
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def short_name(name: str) -> str:
    """The last part of a full name."""
    return name.rsplit(".", 1)[-1]


def _check_full_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise AvroSchemaError(f"{what} must be a non-empty string")
    if not all(_NAME.match(part) for part in name.split(".")):
        raise AvroSchemaError(f"{what} {name!r} is not a valid Avro name")
    return name


def _check_namespace(namespace: object) -> str | None:
    if namespace is None:
        return None
    if not isinstance(namespace, str):
        raise AvroSchemaError("a namespace must be a string")
    if namespace and not all(_NAME.match(part) for part in namespace.split(".")):
        raise AvroSchemaError(f"namespace {namespace!r} is not a valid Avro namespace")
    return namespace


class _Normalizer:
    def __init__(self) -> None:
        self.names: dict[str, dict[str, Any]] = {}

    def node(self, value: Any, namespace: str, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise AvroSchemaError("the schema is nested too deeply")
        if isinstance(value, str):
            return self.reference(value, namespace)
        if isinstance(value, list):
            return self.union(value, namespace, depth)
        if isinstance(value, dict):
            return self.complex(value, namespace, depth)
        raise AvroSchemaError(f"a schema must be a string, an array or an object, not {value!r}")

    def reference(self, name: str, namespace: str) -> str:
        if name in PRIMITIVES:
            return name
        if "." not in name and namespace and f"{namespace}.{name}" in self.names:
            return f"{namespace}.{name}"
        if name in self.names:
            return name
        raise AvroSchemaError(f"unknown type {name!r}")

    def union(self, branches: list[Any], namespace: str, depth: int) -> list[Any]:
        if not branches:
            raise AvroSchemaError("a union needs at least one type")
        out: list[Any] = []
        seen: set[str] = set()
        for branch in branches:
            node = self.node(branch, namespace, depth + 1)
            if isinstance(node, list):
                raise AvroSchemaError("a union may not directly contain another union")
            key = self.union_key(node)
            if key in seen:
                raise AvroSchemaError(f"a union may not contain {key!r} twice")
            seen.add(key)
            out.append(node)
        return out

    def union_key(self, node: Any) -> str:
        if isinstance(node, str):
            return node
        kind = node["type"]
        return node["name"] if kind in NAMED else kind

    def complex(self, value: dict[str, Any], namespace: str, depth: int) -> Any:
        kind = value.get("type")
        if not isinstance(kind, str):
            raise AvroSchemaError(f"'type' must be a string in {_short(value)}")
        if kind in PRIMITIVES:
            props = {k: value[k] for k in sorted(value) if k != "type"}
            return {"type": kind, **props} if props else kind
        if kind in ("record", "error"):
            return self.record(kind, value, namespace, depth)
        if kind == "enum":
            return self.enum(value, namespace)
        if kind == "fixed":
            return self.fixed(value, namespace)
        if kind == "array":
            if "items" not in value:
                raise AvroSchemaError("an array needs 'items'")
            items = self.node(value["items"], namespace, depth + 1)
            return {"type": "array", "items": items, **self.extra(value, {"type", "items"})}
        if kind == "map":
            if "values" not in value:
                raise AvroSchemaError("a map needs 'values'")
            values = self.node(value["values"], namespace, depth + 1)
            return {"type": "map", "values": values, **self.extra(value, {"type", "values"})}
        return self.reference(kind, namespace)

    def extra(self, value: dict[str, Any], known: set[str]) -> dict[str, Any]:
        return {k: value[k] for k in sorted(value) if k not in known}

    def define(self, value: dict[str, Any], namespace: str) -> tuple[dict[str, Any], str]:
        """Start a named type's definition; answers it and the namespace inside it."""
        name = _check_full_name(value.get("name"), "a name")
        own = _check_namespace(value.get("namespace"))
        space = namespace if own is None else own
        full = full_name(name, space)
        if short_name(full) in PRIMITIVES:
            raise AvroSchemaError(f"{full!r} may not redefine a primitive type")
        if full in self.names:
            raise AvroSchemaError(f"the name {full!r} is defined twice")
        inner = full.rsplit(".", 1)[0] if "." in full else ""
        out: dict[str, Any] = {"type": value["type"], "name": full}
        if not inner and namespace:
            out["namespace"] = ""
        if "doc" in value:
            out["doc"] = _string(value["doc"], "a doc")
        if "aliases" in value:
            out["aliases"] = self.aliases(value["aliases"], inner)
        self.names[full] = out
        return out, inner

    def aliases(self, aliases: object, namespace: str) -> list[str]:
        if not isinstance(aliases, list):
            raise AvroSchemaError("'aliases' must be an array of names")
        return [full_name(_check_full_name(a, "an alias"), namespace) for a in aliases]

    def record(self, kind: str, value: dict[str, Any], namespace: str, depth: int) -> Any:
        out, inner = self.define(value, namespace)
        fields = value.get("fields")
        if not isinstance(fields, list):
            raise AvroSchemaError(f"record {out['name']!r} needs a 'fields' array")
        seen: set[str] = set()
        out_fields: list[dict[str, Any]] = []
        out["fields"] = out_fields
        for f in fields:
            if not isinstance(f, dict):
                raise AvroSchemaError(f"a field of {out['name']!r} must be an object")
            name = f.get("name")
            if not isinstance(name, str) or not _NAME.match(name):
                raise AvroSchemaError(f"invalid field name {name!r} in {out['name']!r}")
            if name in seen:
                raise AvroSchemaError(f"field {name!r} appears twice in {out['name']!r}")
            seen.add(name)
            if "type" not in f:
                raise AvroSchemaError(f"field {name!r} of {out['name']!r} has no type")
            node = self.node(f["type"], inner, depth + 1)
            field_out: dict[str, Any] = {"name": name, "type": node}
            if "default" in f:
                if not self.valid_default(node, f["default"], 0):
                    raise AvroSchemaError(
                        f"the default of field {name!r} in {out['name']!r} does not match "
                        f"its type: {f['default']!r}"
                    )
                field_out["default"] = f["default"]
            if "doc" in f:
                field_out["doc"] = _string(f["doc"], "a doc")
            order = f.get("order", "ascending")
            if order not in _ORDERS:
                raise AvroSchemaError(f"invalid order {order!r} for field {name!r}")
            if order != "ascending":
                field_out["order"] = order
            if "aliases" in f:
                aliases = f["aliases"]
                if not isinstance(aliases, list) or not all(
                    isinstance(a, str) and _NAME.match(a) for a in aliases
                ):
                    raise AvroSchemaError(f"invalid aliases for field {name!r}")
                field_out["aliases"] = list(aliases)
            field_out.update(self.extra(f, set(_FIELD_KEYS)))
            out_fields.append(field_out)
        out.update(self.extra(value, {"type", "name", "namespace", "doc", "aliases", "fields"}))
        return out

    def enum(self, value: dict[str, Any], namespace: str) -> Any:
        out, _ = self.define(value, namespace)
        symbols = value.get("symbols")
        if not isinstance(symbols, list):
            raise AvroSchemaError(f"enum {out['name']!r} needs a 'symbols' array")
        for s in symbols:
            if not isinstance(s, str) or not _NAME.match(s):
                raise AvroSchemaError(f"invalid symbol {s!r} in enum {out['name']!r}")
        if len(set(symbols)) != len(symbols):
            raise AvroSchemaError(f"enum {out['name']!r} repeats a symbol")
        out["symbols"] = list(symbols)
        if "default" in value:
            if value["default"] not in symbols:
                raise AvroSchemaError(f"the default of enum {out['name']!r} is not a symbol")
            out["default"] = value["default"]
        known = {"type", "name", "namespace", "doc", "aliases", "symbols", "default"}
        out.update(self.extra(value, known))
        return out

    def fixed(self, value: dict[str, Any], namespace: str) -> Any:
        out, _ = self.define(value, namespace)
        size = value.get("size")
        if type(size) is not int or size < 0:
            raise AvroSchemaError(f"fixed {out['name']!r} needs a non-negative integer 'size'")
        out["size"] = size
        out.update(self.extra(value, {"type", "name", "namespace", "doc", "aliases", "size"}))
        return out

    def valid_default(self, node: Any, value: Any, depth: int) -> bool:
        """Whether ``value`` is a valid default for ``node`` (a union's default may match
        any branch, as fastavro and lenient Avro parsers accept)."""
        if depth > _MAX_DEPTH:
            return False
        if isinstance(node, list):
            return any(self.valid_default(b, value, depth + 1) for b in node)
        if isinstance(node, str) and node not in PRIMITIVES:
            node = self.names[node]
        kind = node if isinstance(node, str) else node["type"]
        return _valid_default_of(self, kind, node, value, depth)


def _valid_default_of(n: _Normalizer, kind: str, node: Any, value: Any, depth: int) -> bool:
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("int", "long"):
        low, high = _INT_RANGE if kind == "int" else _LONG_RANGE
        return type(value) is int and low <= value <= high
    if kind in ("float", "double"):
        return type(value) in (int, float)
    if kind in ("string", "bytes"):
        return isinstance(value, str)
    if kind == "fixed":
        return isinstance(value, str) and len(value) == node["size"]
    if kind == "enum":
        return value in node["symbols"]
    if kind == "array":
        return isinstance(value, list) and all(
            n.valid_default(node["items"], v, depth + 1) for v in value
        )
    if kind == "map":
        return isinstance(value, dict) and all(
            n.valid_default(node["values"], v, depth + 1) for v in value.values()
        )
    if kind in ("record", "error"):
        if not isinstance(value, dict):
            return False
        return all(
            n.valid_default(f["type"], value[f["name"]], depth + 1)
            if f["name"] in value
            else "default" in f
            for f in node.get("fields", ())
        )
    return False


def _string(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise AvroSchemaError(f"{what} must be a string")
    return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
