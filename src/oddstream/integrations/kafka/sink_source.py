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
format), so each record is one letter.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from ...consumers import Subscription
from ...eventstore import RecordedEvent
from ...runtime.deadletters import Refusal
from ...sinks.config import JdbcSinkConfig
from ...sinks.consumer import SourceItem
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
from .rest_proxy.records import RECORD_TYPES, TOPIC_STREAM_PREFIX, TopicRecord, records_of
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


class _Refused(Exception):
    def __init__(self, reason: str, message: str, path: str = "") -> None:
        super().__init__(message)
        self.refusal = Refusal(reason, path, message)


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
        if not isinstance(value, Mapping):
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


class TopicSource:
    """The records of the REST Proxy topics a connector follows."""

    subscription = Subscription(stream_prefix=TOPIC_STREAM_PREFIX, types=RECORD_TYPES)

    def __init__(self, config: JdbcSinkConfig, registry: SchemaRegistry | None = None) -> None:
        self.config = config
        self.registry = registry
        self._avro: dict[tuple[int, bool], tuple[KeySchema, Convert | None] | _Refused] = {}
        self._json: dict[bytes, tuple[KeySchema, Convert | None]] = {}
        self._follows: dict[str, bool] = {}

    def follows(self, topic: str) -> bool:
        found = self._follows.get(topic)
        if found is None:
            found = self._follows[topic] = self.config.follows(topic)
        return found

    async def items(self, event: RecordedEvent) -> Sequence[SourceItem]:
        topic = event.stream_id[len(TOPIC_STREAM_PREFIX) :]
        if not self.follows(topic):
            return []
        return [await self._item(event, record) for record in records_of(topic, event)]

    async def _item(self, event: RecordedEvent, record: TopicRecord) -> SourceItem:
        return await self.item_of(record, event.position)

    async def item_of(self, record: TopicRecord, position: int) -> SourceItem:
        """``record`` (of the event at log ``position``) as the sink's item: its
        :class:`SinkRecord`, or why it cannot be one (a dead letter's replay reads its
        payload back through this)."""
        context = {
            "topic": record.topic,
            "partition": str(record.partition),
            "offset": str(record.offset),
            "log_position": str(position),
        }
        payload = orjson.dumps(record.to_json())
        try:
            sink_record = await self._record(record)
        except _Refused as refused:
            return SourceItem(None, payload, context, refused.refusal)
        return SourceItem(sink_record, payload, context)

    async def _record(self, record: TopicRecord) -> SinkRecord:
        key, key_schema = await self._key(record)
        if record.value is None:
            return SinkRecord(record.topic, None, None, key, key_schema)
        if record.format == "avro":
            if record.value_schema_id is None:
                raise _Refused("no_schema", "an avro record without a value schema id")
            schema, convert = await self._avro_schema(record.value_schema_id, key=False)
            value = record.value
        elif record.format == "json":
            schema, convert, value = self._envelope(record.value, "value")
        else:
            raise _Refused(
                "no_schema",
                f"a {record.format} record carries no schema: a JDBC sink needs one (produce "
                "avro, or json with Connect's schema envelope)",
            )
        if not isinstance(schema, RecordSchema):
            raise _Refused("unsupported_schema", "a record's value must be a struct (a record)")
        if not isinstance(value, Mapping):
            raise _Refused("bad_value", "the value is not an object as its schema says")
        return SinkRecord(
            record.topic, convert(value) if convert else value, schema, key, key_schema
        )

    async def _key(self, record: TopicRecord) -> tuple[Any, KeySchema | None]:
        key = record.key
        if key is None:
            return None, None
        if record.format == "avro" and record.key_schema_id is not None:
            schema, convert = await self._avro_schema(record.key_schema_id, key=True)
            return (convert(key) if convert else key), schema
        if record.format == "binary":
            return _b64(key), _BINARY_KEY
        if isinstance(key, Mapping) and "schema" in key and "payload" in key:
            schema, convert, value = self._envelope(key, "key")
            return (convert(value) if convert else value), schema
        inferred = _INFERRED.get(type(key))
        if inferred is None:
            return key, None  # a struct key without a schema: only usable without record_key
        return key, inferred

    async def _avro_schema(self, schema_id: int, *, key: bool) -> tuple[KeySchema, Convert | None]:
        cached = self._avro.get((schema_id, key))
        if isinstance(cached, _Refused):
            raise cached
        if cached is not None:
            return cached
        if self.registry is None:
            raise _Refused("unknown_schema", f"schema id {schema_id}: no Schema Registry")
        try:
            parsed = await self.registry.parsed_schema(schema_id)
        except ConfluentError as exc:
            if exc.status != 404:
                raise  # the registry's store: the runner tries again
            refused = _Refused("unknown_schema", f"schema id {schema_id} is not registered")
            self._avro[(schema_id, key)] = refused
            raise refused from None
        try:
            root = _resolved(parsed, parsed.root)
            schema: KeySchema = from_avro_key(root) if key else from_avro(root)
        except (UnsupportedSchema, KeyError, TypeError, ValueError) as exc:
            refused = _Refused("unsupported_schema", f"schema id {schema_id}: {exc}")
            self._avro[(schema_id, key)] = refused
            raise refused from None
        found = (schema, _converter(schema))
        self._avro[(schema_id, key)] = found
        return found

    def _envelope(self, value: Any, side: str) -> tuple[KeySchema, Convert | None, Any]:
        if not isinstance(value, Mapping) or "schema" not in value or "payload" not in value:
            raise _Refused(
                "no_schema",
                f'a json {side} needs Connect\'s envelope {{"schema": …, "payload": …}}',
            )
        spec = value["schema"]
        if not isinstance(spec, Mapping):
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
