"""The REST Proxy's topics as a SQL sink's records (:class:`TopicSource`).

A topic ``t`` is the stream ``topic-t`` (``kafka.RecordBatch`` events, or the old
``kafka.Record``): the sink follows every topic stream and keeps the records of the
topics its connector names (``topics`` / ``topics.regex``). Each record becomes a
:class:`~oddstream.sinks.SinkRecord` the way Kafka Connect's converters would make it:

- ``avro`` records: the schemas by id from the Schema Registry (as the AvroConverter
  reads them), values as the REST Proxy stored them (decoded from Avro's JSON; ``bytes``
  and ``fixed`` as base64 text, turned back into bytes here);
- ``json`` records: Connect's JSON envelope ``{"schema": …, "payload": …}`` (the
  JsonConverter with ``schemas.enable``); a key without an envelope is a primitive
  whose schema follows its JSON type (integer → int64, number → float64, string,
  boolean);
- ``binary`` records carry no schema: a binary value is refused (``no_schema``); a
  binary key is a ``bytes`` key.

A record that cannot be read (no schema, an unknown schema id, a schema that maps to no
columns, a bad envelope) is an item with a refusal: the sink dead-letters it or stops,
as for a record the database refuses. The payload kept for a dead letter is the record
as ``read_topic`` shows it (topic, partition, offset, timestamp, key, value, schema ids,
format), so each record is one letter; it is made from the event when a record is
dead-lettered, not for every record read.

Schemas are made once: an Avro schema per (schema id, key or value), a Connect JSON
envelope's schema per its text (sorted keys), each with how its values are converted;
records with the same schema share one schema object, which the writer's layouts are
cached by.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import orjson

from ...consumers import Subscription
from ...eventstore import RecordedEvent
from ...runtime.deadletters import Refusal
from ...sinks.config import JdbcSinkConfig
from ...sinks.consumer import NO_ITEMS, EventItems
from ...sinks.errors import UnsupportedSchema
from ...sinks.schema import (
    FieldSchema,
    KeySchema,
    RecordSchema,
    SinkRecord,
    from_avro,
    from_avro_key,
    from_connect_json,
)
from .avro_schema import PRIMITIVES
from .errors import ConfluentError
from .rest_proxy.records import (
    RECORD_TYPES,
    TOPIC_STREAM_PREFIX,
    TopicRecord,
    event_span,
    records_of,
)
from .schema_registry import SchemaRegistry

#: schemas made from Connect JSON envelopes, kept by their text (at most this many)
_CACHED = 256
_INFERRED: Mapping[type, FieldSchema] = {
    bool: FieldSchema("", "boolean"),
    int: FieldSchema("", "int64"),
    float: FieldSchema("", "float64"),
    str: FieldSchema("", "string"),
}
_BINARY_KEY = FieldSchema("", "bytes")

Convert = Callable[[Any], Any]
Found = tuple[KeySchema, Convert | None]


class _Refused(Exception):
    def __init__(self, reason: str, message: str, path: str = "") -> None:
        super().__init__(message)
        self.refusal = Refusal(reason, path, message)


class _Uncached(Exception):
    """An Avro schema not read from the registry yet: load it, then read the record
    again."""

    def __init__(self, schema_id: int, key: bool) -> None:
        super().__init__(schema_id, key)
        self.schema_id = schema_id
        self.key = key


def _is_mapping(value: Any) -> bool:
    # a JSON object is a dict: the ABC check only for anything else
    return value.__class__ is dict or isinstance(value, Mapping)


def _b64(value: Any) -> Any:
    if value is None or isinstance(value, bytes):
        return value
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError) as exc:
        raise _Refused("bad_value", f"not base64 text: {exc}") from None


def _converter(schema: KeySchema) -> Convert | None:
    """How a stored value becomes what the sink writes: bytes fields from base64."""
    if isinstance(schema, FieldSchema):
        return _b64 if schema.type == "bytes" else None
    names = [f.name for f in schema.fields if f.type == "bytes"]
    if not names:
        return None

    def convert(value: Any) -> Any:
        if not _is_mapping(value):
            return value  # the writer says what is wrong with it
        out = dict(value)
        for name in names:
            if name in out:
                out[name] = _b64(out[name])
        return out

    return convert


def _resolved(schema: Any, root: Any) -> Any:
    """The record's fields with references to named types replaced by their
    definitions (the registry's canonical text writes a named type once)."""
    if not isinstance(root, Mapping) or root.get("type") != "record":
        return schema.resolve(root)

    def one(node: Any) -> Any:
        if isinstance(node, list):
            return [one(n) for n in node]
        if isinstance(node, str) and node not in PRIMITIVES:
            return schema.resolve(node)
        return node

    return {**root, "fields": [{**f, "type": one(f["type"])} for f in root["fields"]]}


def _letter(topic: str, event: RecordedEvent, index: int) -> tuple[bytes, Mapping[str, str]]:
    """The dead letter of the event's ``index``-th record: the record as ``read_topic``
    shows it, and where it was."""
    first = event_span(event)[0] + index
    (record,) = records_of(topic, event, first, first + 1)
    context = {
        "topic": record.topic,
        "partition": str(record.partition),
        "offset": str(record.offset),
        "log_position": str(event.position),
    }
    return orjson.dumps(record.to_json()), context


class TopicSource:
    """The records of the REST Proxy topics a connector follows."""

    subscription = Subscription(stream_prefix=TOPIC_STREAM_PREFIX, types=RECORD_TYPES)

    def __init__(self, config: JdbcSinkConfig, registry: SchemaRegistry | None = None) -> None:
        self.config = config
        self.registry = registry
        # an Avro schema by (id, key?): what it maps to, or why it maps to nothing
        self._avro: dict[tuple[int, bool], Found | Refusal] = {}
        self._json: dict[bytes, Found] = {}
        self._follows: dict[str, bool] = {}

    def follows(self, topic: str) -> bool:
        found = self._follows.get(topic)
        if found is None:
            found = self._follows[topic] = self.config.follows(topic)
        return found

    async def items(self, event: RecordedEvent) -> EventItems:
        topic = event.stream_id[len(TOPIC_STREAM_PREFIX) :]
        if not self.follows(topic):
            return NO_ITEMS
        records: list[SinkRecord | None] = []
        refusals: dict[int, Refusal] = {}
        for index, record in enumerate(records_of(topic, event)):
            try:  # no coroutine per record: the schemas are cached
                records.append(self._record(record))
                continue
            except _Refused as refused:
                found: SinkRecord | Refusal = refused.refusal
            except _Uncached:
                found = await self.read(record)
            if isinstance(found, Refusal):
                records.append(None)
                refusals[index] = found
            else:
                records.append(found)
        return EventItems(records, refusals, partial(_letter, topic, event))

    async def read(self, record: TopicRecord) -> SinkRecord | Refusal:
        """``record`` as the sink's :class:`SinkRecord`, or why it cannot be one (a dead
        letter's replay reads its payload back through this)."""
        while True:
            try:
                return self._record(record)
            except _Refused as refused:
                return refused.refusal
            except _Uncached as missing:  # read it from the registry, then the record again
                await self._load_avro(missing.schema_id, key=missing.key)

    def _record(self, record: TopicRecord) -> SinkRecord:
        key: Any = record.key
        key_schema: KeySchema | None = None
        if key is not None:
            key, key_schema = self._key(record)
        value = record.value
        if value is None:
            return SinkRecord(record.topic, None, None, key, key_schema)
        if record.format == "json":
            schema, convert, value = self._envelope(value, "value")
        elif record.format == "avro":
            if record.value_schema_id is None:
                raise _Refused("no_schema", "an avro record without a value schema id")
            schema, convert = self._avro_schema(record.value_schema_id, key=False)
        else:
            raise _Refused(
                "no_schema",
                f"a {record.format} record carries no schema: a JDBC sink needs one (produce "
                "avro, or json with Connect's schema envelope)",
            )
        if not isinstance(schema, RecordSchema):
            raise _Refused("unsupported_schema", "a record's value must be a struct (a record)")
        if not _is_mapping(value):
            raise _Refused("bad_value", "the value is not an object as its schema says")
        return SinkRecord(
            record.topic, convert(value) if convert else value, schema, key, key_schema
        )

    def _key(self, record: TopicRecord) -> tuple[Any, KeySchema | None]:
        key = record.key
        if record.format == "avro" and record.key_schema_id is not None:
            schema, convert = self._avro_schema(record.key_schema_id, key=True)
            return (convert(key) if convert else key), schema
        if record.format == "binary":
            return _b64(key), _BINARY_KEY
        if _is_mapping(key) and "schema" in key and "payload" in key:
            schema, convert, value = self._envelope(key, "key")
            return (convert(value) if convert else value), schema
        inferred = _INFERRED.get(type(key))
        if inferred is None:
            return key, None  # a struct key without a schema: only usable without record_key
        return key, inferred

    def _avro_schema(self, schema_id: int, *, key: bool) -> Found:
        found = self._avro.get((schema_id, key))
        if found is None:
            raise _Uncached(schema_id, key)
        if isinstance(found, Refusal):
            # a new exception each time: one raised again and again would keep every
            # traceback (and the frames' records) it went through
            raise _Refused(found.reason, found.message, found.path)
        return found

    async def _load_avro(self, schema_id: int, *, key: bool) -> None:
        """Read schema ``schema_id`` from the registry into the cache: what it maps to,
        or why it maps to nothing (not registered, no columns)."""
        found: Found | Refusal
        if self.registry is None:
            found = Refusal("unknown_schema", "", f"schema id {schema_id}: no Schema Registry")
            self._avro[(schema_id, key)] = found
            return
        try:
            parsed = await self.registry.parsed_schema(schema_id)
        except ConfluentError as exc:
            if exc.status != 404:
                raise  # the registry's store: the runner tries again
            message = f"schema id {schema_id} is not registered"
            self._avro[(schema_id, key)] = Refusal("unknown_schema", "", message)
            return
        try:
            root = _resolved(parsed, parsed.root)
            schema: KeySchema = from_avro_key(root) if key else from_avro(root)
        except (UnsupportedSchema, KeyError, TypeError, ValueError) as exc:
            message = f"schema id {schema_id}: {exc}"
            self._avro[(schema_id, key)] = Refusal("unsupported_schema", "", message)
            return
        self._avro[(schema_id, key)] = (schema, _converter(schema))

    def _envelope(self, value: Any, side: str) -> tuple[KeySchema, Convert | None, Any]:
        if not _is_mapping(value) or "schema" not in value or "payload" not in value:
            raise _Refused(
                "no_schema",
                f'a json {side} needs Connect\'s envelope {{"schema": …, "payload": …}}',
            )
        spec = value["schema"]
        if not _is_mapping(spec):
            raise _Refused("bad_envelope", f"the {side}'s schema is not an object")
        text = orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)
        found = self._json.get(text)
        if found is None:
            try:
                schema = from_connect_json(spec)
            except (UnsupportedSchema, KeyError, TypeError, ValueError) as exc:
                raise _Refused("unsupported_schema", f"the {side}'s schema: {exc}") from None
            if len(self._json) >= _CACHED:
                self._json.clear()
            found = self._json[text] = (schema, _converter(schema))
        return found[0], found[1], value["payload"]


__all__ = ["TopicSource"]
