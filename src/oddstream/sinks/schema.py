"""Records and their schemas as a Kafka Connect sink sees them.

A record's value is a struct (a mapping of field names to values) described by a
:class:`RecordSchema` of primitive fields (Connect's ``int8`` … ``bytes``, and the logical
types ``Decimal``, ``Date``, ``Time``, ``Timestamp``). Schemas come from Avro
(:func:`from_avro`, as Confluent's AvroConverter maps them) or from Connect's JSON schema
envelope (:func:`from_connect_json`, as the JsonConverter with ``schemas.enable`` sends it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from .errors import UnsupportedSchema

PrimitiveType = Literal[
    "int8", "int16", "int32", "int64", "float32", "float64", "boolean", "string", "bytes"
]
PRIMITIVE_TYPES: Final = frozenset(
    {"int8", "int16", "int32", "int64", "float32", "float64", "boolean", "string", "bytes"}
)
LogicalType = Literal["Decimal", "Date", "Time", "Timestamp"]
#: Connect's logical type names, as schemas carry them.
LOGICAL_NAMES: Final[Mapping[str, LogicalType]] = {
    "org.apache.kafka.connect.data.Decimal": "Decimal",
    "org.apache.kafka.connect.data.Date": "Date",
    "org.apache.kafka.connect.data.Time": "Time",
    "org.apache.kafka.connect.data.Timestamp": "Timestamp",
}
#: The primitive type underneath each logical type.
LOGICAL_BASE: Final[Mapping[LogicalType, PrimitiveType]] = {
    "Decimal": "bytes",
    "Date": "int32",
    "Time": "int32",
    "Timestamp": "int64",
}


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Final = _NoDefault()


@dataclass(frozen=True, slots=True)
class FieldSchema:
    """One primitive field (or a primitive key, with ``name`` empty)."""

    name: str
    type: PrimitiveType
    optional: bool = False
    logical: LogicalType | None = None
    scale: int = 0  # Decimal only
    default: Any = NO_DEFAULT

    def __post_init__(self) -> None:
        if self.type not in PRIMITIVE_TYPES:
            raise UnsupportedSchema(f"field {self.name!r}: unsupported type {self.type!r}")
        if self.logical is not None and LOGICAL_BASE.get(self.logical) != self.type:
            raise UnsupportedSchema(
                f"field {self.name!r}: logical type {self.logical} is carried by "
                f"{LOGICAL_BASE.get(self.logical)}, not {self.type}"
            )

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT


@dataclass(frozen=True, slots=True)
class RecordSchema:
    """A struct of primitive fields, in order."""

    fields: tuple[FieldSchema, ...]
    name: str | None = None
    _by_name: Mapping[str, FieldSchema] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, FieldSchema] = {}
        for f in self.fields:
            if not f.name:
                raise UnsupportedSchema("a struct's fields have names")
            if f.name in by_name:
                raise UnsupportedSchema(f"field {f.name!r} appears twice")
            by_name[f.name] = f
        object.__setattr__(self, "_by_name", by_name)

    def __getitem__(self, name: str) -> FieldSchema:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


KeySchema = RecordSchema | FieldSchema


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """One record for the sink: ``value`` ``None`` is a tombstone (a delete of ``key``
    when ``delete.enabled``). ``key`` is a primitive or a mapping (a struct key)."""

    topic: str
    value: Mapping[str, Any] | None
    value_schema: RecordSchema | None
    key: Any = None
    key_schema: KeySchema | None = None


# --- Avro ------------------------------------------------------------------------------

_AVRO_PRIMITIVES: Final[Mapping[str, PrimitiveType]] = {
    "int": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "boolean": "boolean",
    "string": "string",
    "bytes": "bytes",
    "fixed": "bytes",
    "enum": "string",
}
_CONNECT_TYPES: Final = {"int8", "int16"}


def _avro_field(name: str, schema: Any, default: Any) -> FieldSchema:
    optional = False
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        if len(branches) != 1:
            raise UnsupportedSchema(
                f"field {name!r}: only a union of null and one type maps to a column"
            )
        optional = len(branches) < len(schema)
        schema = branches[0]
    if isinstance(schema, str):
        schema = {"type": schema}
    if not isinstance(schema, Mapping):
        raise UnsupportedSchema(f"field {name!r}: not an Avro schema")
    avro_type = schema.get("type")
    logical = schema.get("logicalType")
    if isinstance(avro_type, Mapping | list):
        raise UnsupportedSchema(f"field {name!r}: nested types do not map to a column")
    if logical == "decimal" and avro_type in ("bytes", "fixed"):
        scale = int(schema.get("scale", 0))
        return FieldSchema(name, "bytes", optional, "Decimal", scale, _default(default))
    if logical == "date" and avro_type == "int":
        return FieldSchema(name, "int32", optional, "Date", default=_default(default))
    if logical == "time-millis" and avro_type == "int":
        return FieldSchema(name, "int32", optional, "Time", default=_default(default))
    # timestamp-micros (like time-micros) stays a plain int64, as Confluent's AvroData
    # leaves it: Connect's Timestamp is milliseconds, and a micros value read as one is
    # 1000 times too far in the future
    if logical == "timestamp-millis" and avro_type == "long":
        return FieldSchema(name, "int64", optional, "Timestamp", default=_default(default))
    if not isinstance(avro_type, str) or avro_type not in _AVRO_PRIMITIVES:
        raise UnsupportedSchema(f"field {name!r}: Avro type {avro_type!r} does not map to a column")
    primitive = _AVRO_PRIMITIVES[avro_type]
    connect_type = schema.get("connect.type")
    if avro_type == "int" and connect_type in _CONNECT_TYPES:
        primitive = connect_type
    return FieldSchema(name, primitive, optional, default=_default(default))


def _default(value: Any) -> Any:
    return NO_DEFAULT if value is _MISSING else value


_MISSING: Final = object()


def from_avro(schema: Mapping[str, Any]) -> RecordSchema:
    """The Connect schema of an Avro record schema (parsed JSON), as Confluent's
    AvroConverter makes it: ``int``→int32 (int8/int16 with ``connect.type``), ``long``→
    int64, ``float``/``double``→float32/64, ``bytes``/``fixed``→bytes, ``enum``→string,
    ``["null", T]``→optional T, and the decimal / date / time-millis / timestamp-millis
    logical types (``time-micros`` and ``timestamp-micros`` stay int64, as Confluent's).
    Nested records, arrays and maps are refused (they map to no column)."""
    if not isinstance(schema, Mapping) or schema.get("type") != "record":
        raise UnsupportedSchema("a sink's value schema is an Avro record")
    fields = tuple(
        _avro_field(f["name"], f["type"], f.get("default", _MISSING)) for f in schema["fields"]
    )
    return RecordSchema(fields, name=schema.get("name"))


# --- Connect JSON envelope -------------------------------------------------------------


def _connect_field(spec: Mapping[str, Any], name: str) -> FieldSchema:
    ctype = spec.get("type")
    if ctype not in PRIMITIVE_TYPES:
        raise UnsupportedSchema(f"field {name!r}: Connect type {ctype!r} does not map to a column")
    logical = LOGICAL_NAMES.get(spec.get("name") or "")
    scale = 0
    if logical == "Decimal":
        scale = int((spec.get("parameters") or {}).get("scale", 0))
    default = spec.get("default", NO_DEFAULT)
    return FieldSchema(name, ctype, bool(spec.get("optional", False)), logical, scale, default)


def from_connect_json(schema: Mapping[str, Any]) -> KeySchema:
    """The schema of Connect's JSON envelope (``{"type": "struct", "fields": [...]}``,
    or a primitive key's ``{"type": "int64"}``)."""
    if schema.get("type") == "struct":
        fields: Sequence[Mapping[str, Any]] = schema.get("fields") or ()
        return RecordSchema(
            tuple(_connect_field(f, f.get("field", "")) for f in fields),
            name=schema.get("name"),
        )
    return _connect_field(schema, "")


def from_avro_key(schema: Any) -> KeySchema:
    """A record key's schema from Avro: a record is a struct key (:func:`from_avro`),
    anything else a primitive key (a :class:`FieldSchema` with no name)."""
    if isinstance(schema, Mapping) and schema.get("type") == "record":
        return from_avro(schema)
    return _avro_field("", schema, _MISSING)
