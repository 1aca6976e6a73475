"""Decode values in Avro's JSON encoding into plain JSON values, validating them.

Avro's JSON encoding wraps a union's non-null value in an object naming its branch
(``{"int": 1}``; named types by full or, when unambiguous, short name); everything else
is plain JSON. :func:`compile_decoder` turns a schema into a function (a tree of small
closures, built once per schema) that checks a value and returns it unwrapped:
``{"RUNNER_ID": {"int": 1}}`` → ``{"RUNNER_ID": 1}``.

Choices: a record's missing field takes its default (error if it has none); a field the
schema does not know is an error (a typo would otherwise become a silent default);
``bytes`` and ``fixed`` values (JSON strings of code points 0–255) are returned as
base64 text, so that every decoded value stays JSON (and free of NUL characters,
which the event store refuses); ``float``/``double`` accept JSON integers.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from typing import Any

from .avro_schema import AvroSchema, short_name

Decoder = Callable[[Any], Any]

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_FLOAT_MAX = 3.4028234663852886e38


class AvroJsonError(ValueError):
    """A value does not match its schema; ``path`` says where (field names, indexes)."""

    def __init__(self, message: str, path: list[str] | None = None) -> None:
        super().__init__(message)
        self.reason = message
        self.path = path if path is not None else []

    def __str__(self) -> str:
        where = "/".join(self.path)
        return f"{where}: {self.reason}" if where else self.reason


def compile_decoder(schema: AvroSchema) -> Decoder:
    """A function that validates one value in Avro's JSON encoding and unwraps it."""
    return _Compiler(schema, wrapped=True).node(schema.root)


def decode(schema: AvroSchema, value: Any) -> Any:
    """Decode one value (compiles the schema each call: use :func:`compile_decoder`)."""
    return compile_decoder(schema)(value)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    text = repr(value)
    kind = type(value).__name__
    kind = {"dict": "object", "list": "array", "str": "string", "bool": "boolean"}.get(kind, kind)
    return f"{kind} {text if len(text) <= 60 else text[:57] + '...'}"


def _fail(expected: str, value: Any) -> AvroJsonError:
    return AvroJsonError(f"expected {expected}, got {_describe(value)}")


class _Compiler:
    """Builds decoders; ``wrapped=False`` builds the variant for default values, whose
    unions are not wrapped (a default belongs to the union's first matching branch)."""

    def __init__(self, schema: AvroSchema, *, wrapped: bool) -> None:
        self.schema = schema
        self.wrapped = wrapped
        self.named: dict[str, Decoder] = {}

    def node(self, node: Any) -> Decoder:
        if isinstance(node, str) and node in self.named:
            return self.named[node]
        kind = self.schema.kind(node)
        resolved = self.schema.resolve(node)
        if kind in ("record", "enum", "fixed"):
            name = resolved["name"]
            if name in self.named:
                return self.named[name]
            # A recursive type refers to itself before it is built: go through a cell.
            cell: list[Decoder] = []
            self.named[name] = lambda v: cell[0](v)
            built = getattr(self, kind)(resolved)
            cell.append(built)
            self.named[name] = built
            return built
        if kind == "union":
            return self.union(resolved) if self.wrapped else self.plain_union(resolved)
        if kind == "array":
            return self.array(resolved)
        if kind == "map":
            return self.map(resolved)
        return _PRIMITIVES[kind]

    def record(self, node: dict[str, Any]) -> Decoder:
        name = node["name"]
        fields: list[tuple[str, Decoder, bool, Any]] = []
        defaults = _Compiler(self.schema, wrapped=False) if self.wrapped else self
        for f in node["fields"]:
            decoder = self.node(f["type"])
            has_default = "default" in f
            default = defaults.node(f["type"])(f["default"]) if has_default else None
            fields.append((f["name"], decoder, has_default, default))
        known = frozenset(f[0] for f in fields)

        def decode_record(value: Any) -> Any:
            if type(value) is not dict:
                raise _fail(f"an object (record {name})", value)
            out = {}
            present = 0
            for fname, decoder, has_default, default in fields:
                if fname in value:
                    present += 1
                    try:
                        out[fname] = decoder(value[fname])
                    except AvroJsonError as exc:
                        exc.path.insert(0, fname)
                        raise
                elif has_default:
                    mutable = isinstance(default, dict | list)
                    out[fname] = copy.deepcopy(default) if mutable else default
                else:
                    raise AvroJsonError(f"missing field {fname!r} (it has no default)")
            if present != len(value):
                unknown = sorted(k for k in value if k not in known)
                raise AvroJsonError(f"record {name} has no field {', '.join(map(repr, unknown))}")
            return out

        if self.wrapped:
            fast = _fast_record(self.schema, node, decode_record)
            if fast is not None:
                return fast
        return decode_record

    def enum(self, node: dict[str, Any]) -> Decoder:
        symbols = frozenset(node["symbols"])
        name = node["name"]

        def decode_enum(value: Any) -> Any:
            if type(value) is not str or value not in symbols:
                raise _fail(f"a symbol of enum {name}", value)
            return value

        return decode_enum

    def fixed(self, node: dict[str, Any]) -> Decoder:
        size = node["size"]
        name = node["name"]

        def decode_fixed(value: Any) -> Any:
            data = _bytes(value)
            if len(data) != size:
                raise AvroJsonError(f"fixed {name} needs {size} bytes, got {len(data)}")
            return base64.b64encode(data).decode()

        return decode_fixed

    def array(self, node: dict[str, Any]) -> Decoder:
        items = self.node(node["items"])

        def decode_array(value: Any) -> Any:
            if type(value) is not list:
                raise _fail("an array", value)
            out = []
            for i, item in enumerate(value):
                try:
                    out.append(items(item))
                except AvroJsonError as exc:
                    exc.path.insert(0, str(i))
                    raise
            return out

        return decode_array

    def map(self, node: dict[str, Any]) -> Decoder:
        values = self.node(node["values"])

        def decode_map(value: Any) -> Any:
            if type(value) is not dict:
                raise _fail("an object (map)", value)
            out = {}
            for key, item in value.items():
                try:
                    out[key] = values(item)
                except AvroJsonError as exc:
                    exc.path.insert(0, key)
                    raise
            return out

        return decode_map

    def union(self, branches: list[Any]) -> Decoder:
        nullable = False
        by_name: dict[str, Decoder] = {}
        short: dict[str, list[str]] = {}
        for branch in branches:
            kind = self.schema.kind(branch)
            if kind == "null":
                nullable = True
                continue
            decoder = self.node(branch)
            if kind in ("record", "enum", "fixed"):
                full = self.schema.resolve(branch)["name"]
                by_name[full] = decoder
                short.setdefault(short_name(full), []).append(full)
            else:
                by_name[kind] = decoder
        for name, fulls in short.items():
            if len(fulls) == 1 and name not in by_name:
                by_name[name] = by_name[fulls[0]]
        expected = " or ".join(
            (["null"] if nullable else []) + [f'{{"{n}": ...}}' for n in by_name]
        )

        def decode_union(value: Any) -> Any:
            if value is None:
                if nullable:
                    return None
                raise _fail(expected, value)
            if type(value) is not dict or len(value) != 1:
                raise _fail(expected, value)
            for key, inner in value.items():
                decoder = by_name.get(key)
                if decoder is None:
                    raise AvroJsonError(f"the union has no branch {key!r}; expected {expected}")
                try:
                    return decoder(inner)
                except AvroJsonError as exc:
                    exc.path.insert(0, key)
                    raise
            raise _fail(expected, value)  # unreachable: the dict has one item

        return decode_union

    def plain_union(self, branches: list[Any]) -> Decoder:
        decoders = [self.node(b) for b in branches]

        def decode_plain_union(value: Any) -> Any:
            for decoder in decoders:
                try:
                    return decoder(value)
                except AvroJsonError:
                    continue
            raise _fail("a value of one of the union's types", value)

        return decode_plain_union


#: For the fast path of flat records: how a primitive's JSON value is checked (``{x}``
#: is the value); the value is returned as it is.
_FAST_CHECKS = {
    "null": "{x} is None",
    "boolean": "type({x}) is bool",
    "int": "type({x}) is int and -2147483648 <= {x} <= 2147483647",
    "long": "type({x}) is int and -9223372036854775808 <= {x} <= 9223372036854775807",
    "float": "type({x}) is float and -3.4028234663852886e38 <= {x} <= 3.4028234663852886e38",
    "double": "type({x}) is float",
    "string": "type({x}) is str",
}


def _fast_record(schema: AvroSchema, node: dict[str, Any], generic: Decoder) -> Decoder | None:
    """A faster decoder for a record whose fields are primitives or unions of null and
    one primitive (the shape of most event schemas, the POC's among them), or ``None``.

    It accepts only values given exactly (every field present, no other key, no int
    where a double is expected, …) and hands anything else to ``generic``, which
    decodes it or says precisely what is wrong: the two agree on every value the fast
    one accepts, and it needs no call per field.
    """
    fields = node["fields"]
    if not fields or len(fields) > 64:
        return None
    lines = [
        "def decode_flat_record(value):",
        f"    if type(value) is not dict or len(value) != {len(fields)}:",
        "        return generic(value)",
    ]
    names = []
    for i, f in enumerate(fields):
        name = f["name"]
        if not (isinstance(name, str) and name.isidentifier() and name.isascii()):
            return None
        kind = schema.kind(f["type"])
        x = f"f{i}"
        lines.append(f"    {x} = value.get({name!r}, MISSING)")
        if kind in _FAST_CHECKS:
            lines += [
                f"    if not ({_FAST_CHECKS[kind].format(x=x)}):",
                "        return generic(value)",
            ]
        elif kind == "union":
            branches = [schema.kind(b) for b in schema.resolve(f["type"])]
            others = [b for b in branches if b != "null"]
            if len(branches) != 2 or len(others) != 1 or others[0] not in _FAST_CHECKS:
                return None
            inner = others[0]
            check = _FAST_CHECKS[inner].format(x=x)
            lines += [
                f"    if {x} is not None:",
                f"        if type({x}) is not dict or len({x}) != 1:",
                "            return generic(value)",
                f"        {x} = {x}.get({inner!r}, MISSING)",
                f"        if not ({check}):",
                "            return generic(value)",
            ]
        else:
            return None
        names.append(name)
    body = ", ".join(f"{n!r}: f{i}" for i, n in enumerate(names))
    lines.append(f"    return {{{body}}}")
    namespace: dict[str, Any] = {"generic": generic, "MISSING": object()}
    exec("\n".join(lines), namespace)  # built from checked names and fixed templates
    decoder: Decoder = namespace["decode_flat_record"]
    return decoder


def _null(value: Any) -> Any:
    if value is not None:
        raise _fail("null", value)
    return None


def _boolean(value: Any) -> Any:
    if type(value) is not bool:
        raise _fail("a boolean", value)
    return value


def _int(value: Any) -> Any:
    if type(value) is not int or not _INT_MIN <= value <= _INT_MAX:
        raise _fail("an int (32-bit integer)", value)
    return value


def _long(value: Any) -> Any:
    if type(value) is not int or not _LONG_MIN <= value <= _LONG_MAX:
        raise _fail("a long (64-bit integer)", value)
    return value


def _float(value: Any) -> Any:
    kind = type(value)
    if kind is not float and kind is not int:
        raise _fail("a float", value)
    if abs(value) > _FLOAT_MAX:
        raise _fail("a float (within the 32-bit range)", value)
    return float(value)


def _double(value: Any) -> Any:
    kind = type(value)
    if kind is not float and kind is not int:
        raise _fail("a double", value)
    return float(value)


def _string(value: Any) -> Any:
    if type(value) is not str:
        raise _fail("a string", value)
    return value


def _bytes(value: Any) -> bytes:
    if type(value) is not str:
        raise _fail("bytes (a string of code points 0-255)", value)
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        raise AvroJsonError("bytes must be a string of code points 0-255") from None


def _bytes_b64(value: Any) -> Any:
    return base64.b64encode(_bytes(value)).decode()


_PRIMITIVES: dict[str, Decoder] = {
    "null": _null,
    "boolean": _boolean,
    "int": _int,
    "long": _long,
    "float": _float,
    "double": _double,
    "string": _string,
    "bytes": _bytes_b64,
}
