"""Producing through the REST Proxy: check a request, decode its records, hand the batch
to the :class:`~.topics.TopicHandler` in one call.

Avro schemas are parsed and compiled into decoders once per schema id (and once per
inline schema text), so a batch costs one dictionary walk per record and one append.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from dataclasses import dataclass
from typing import Any

import orjson

from ....eventstore import InvalidEvent
from ..avro_json import AvroJsonError, Decoder, compile_decoder
from ..avro_schema import AvroSchema, AvroSchemaError, parse_avro
from ..errors import ConfluentError
from ..schema_registry import SchemaRegistry
from . import errors as err
from .records import (
    PartitionNotFound,
    ProducedRecord,
    RecordError,
    TopicHandler,
    TopicNotFound,
    TopicReserved,
    ValueBatch,
)

_KAFKA_MEDIA_TYPE = re.compile(
    r"application/vnd\.kafka(?:\.(?P<format>[a-z0-9]+))??(?:\.(?P<version>v[0-9]+))?\+json\Z"
)
_INLINE_CACHE_SIZE = 256


class EmbeddedFormat(enum.StrEnum):
    """How keys and values are given: base64 bytes, plain JSON or Avro's JSON encoding."""

    BINARY = "binary"
    JSON = "json"
    AVRO = "avro"


def embedded_format(media_type: str | None) -> EmbeddedFormat:
    """The embedded format a request content type names (415 if unsupported).

    ``application/vnd.kafka.{binary|json|avro}.v2+json``; ``application/vnd.kafka+json``,
    ``application/vnd.kafka.v2+json``, ``application/json`` and no content type mean
    binary.
    """
    if media_type is None or media_type == "application/json":
        return EmbeddedFormat.BINARY
    match = _KAFKA_MEDIA_TYPE.match(media_type)
    if match is None or match["version"] not in (None, "v2"):
        raise ConfluentError(415, 415, f"HTTP 415 Unsupported Media Type: {media_type}")
    if match["format"] is None:
        return EmbeddedFormat.BINARY
    try:
        return EmbeddedFormat(match["format"])
    except ValueError:
        raise ConfluentError(
            415, 415, f"The embedded format {match['format']!r} is not supported"
        ) from None


@dataclass(frozen=True, slots=True)
class _Resolved:
    """A key or value schema of a request: its decoder, and its id once registered."""

    schema: AvroSchema
    decoder: Decoder
    id: int | None
    inline: bool


class RestProxy:
    """The produce logic of REST Proxy v2 over a topic handler and a schema registry."""

    def __init__(self, topics: TopicHandler, registry: SchemaRegistry) -> None:
        self.topics = topics
        self.registry = registry
        self._by_id: dict[int, tuple[AvroSchema, Decoder]] = {}
        self._inline: dict[str, tuple[AvroSchema, Decoder]] = {}

    async def produce(
        self, topic: str, body: Any, fmt: EmbeddedFormat, partition: int | None = None
    ) -> dict[str, Any]:
        """Produce a request's records; answers the REST Proxy v2 body.

        ``partition`` (from the path) overrides the records' own. A topic the service
        writes itself (see :meth:`.EventStoreTopics.reserve`) is refused first (403/40301),
        before anything is decoded or registered.
        """
        reserved_by = getattr(self.topics, "reserved_by", None)
        owner = reserved_by(topic) if reserved_by is not None else None
        if owner is not None:
            raise err.topic_reserved(topic, owner)
        keys, values, partitions = _columns(body, partition)
        key_id = value_id = None
        if fmt is EmbeddedFormat.AVRO:
            keys, values, key_id, value_id = await self._avro(topic, body, keys, values)
        elif fmt is EmbeddedFormat.BINARY:
            values = [_base64(v, i, "value") for i, v in enumerate(values)]
            keys = [_base64(k, i, "key") for i, k in enumerate(keys)]
        produce_batch = getattr(self.topics, "produce_batch", None)
        try:
            if produce_batch is not None:  # EventStoreTopics: no object per record
                bad = next((p for p in partitions if p != 0), None) if partitions else None
                if bad is not None:
                    raise PartitionNotFound(topic, bad)
                part = ValueBatch(
                    values,
                    keys if keys.count(None) != len(keys) else None,
                    fmt.value,
                    key_id,
                    value_id,
                )
                batch, errors = await produce_batch(topic, [part])
                offsets = _offsets_json(batch.base_offset, batch.count, errors)
            else:
                produced = [
                    ProducedRecord(v, k, p, key_id, value_id, fmt.value)
                    for k, v, p in zip(keys, values, partitions or [0] * len(values), strict=True)
                ]
                offsets = [o.to_json() for o in await self.topics.produce(topic, produced)]
        except TopicNotFound:
            raise err.topic_not_found(topic) from None
        except TopicReserved as exc:  # reserved while this request was decoded
            raise err.topic_reserved(topic, exc.owner) from None
        except PartitionNotFound as exc:
            raise err.partition_not_found(topic, exc.partition) from None
        except InvalidEvent as exc:
            raise err.invalid_payload(f"the event store refused the records: {exc}") from None
        return {
            "key_schema_id": key_id,
            "value_schema_id": value_id,
            "offsets": offsets,
        }

    async def _avro(
        self, topic: str, body: dict[str, Any], keys: list[Any], values: list[Any]
    ) -> tuple[list[Any], list[Any], int | None, int | None]:
        key_schema = await self._resolve(body, "key")
        value_schema = await self._resolve(body, "value")
        if key_schema is None and keys.count(None) != len(keys):
            raise err.key_schema_missing()
        if value_schema is None and values.count(None) != len(values):
            raise err.value_schema_missing()
        keys = _decode_all(key_schema, keys, "key")
        values = _decode_all(value_schema, values, "value")
        key_id = await self._register(topic, "key", key_schema)
        value_id = await self._register(topic, "value", value_schema)
        return keys, values, key_id, value_id

    async def _resolve(self, body: dict[str, Any], part: str) -> _Resolved | None:
        schema_id = body.get(f"{part}_schema_id")
        if schema_id is not None:
            if type(schema_id) is not int or schema_id < 1:
                raise err.invalid_schema(f"{part}_schema_id must be a positive integer")
            schema, decoder = await self._for_id(schema_id)
            return _Resolved(schema, decoder, schema_id, False)
        text = body.get(f"{part}_schema")
        if text is None:
            return None
        if isinstance(text, dict | list):
            text = orjson.dumps(text).decode()
        if not isinstance(text, str):
            raise err.invalid_schema(f"{part}_schema must be a string holding an Avro schema")
        schema, decoder = self._for_text(text)
        return _Resolved(schema, decoder, None, True)

    async def _for_id(self, schema_id: int) -> tuple[AvroSchema, Decoder]:
        cached = self._by_id.get(schema_id)
        if cached is None:
            try:
                schema = await self.registry.parsed_schema(schema_id)
            except ConfluentError as exc:
                if exc.status != 404:
                    raise
                raise err.invalid_schema(f"schema id {schema_id}: {exc.message}") from None
            cached = self._by_id[schema_id] = (schema, compile_decoder(schema))
        return cached

    def _for_text(self, text: str) -> tuple[AvroSchema, Decoder]:
        cached = self._inline.get(text)
        if cached is None:
            try:
                schema = parse_avro(text)
            except AvroSchemaError as exc:
                raise err.invalid_schema(str(exc)) from None
            if len(self._inline) >= _INLINE_CACHE_SIZE:
                self._inline.clear()
            cached = self._inline[text] = (schema, compile_decoder(schema))
        return cached

    async def _register(self, topic: str, part: str, resolved: _Resolved | None) -> int | None:
        if resolved is None:
            return None
        if not resolved.inline:
            return resolved.id
        try:
            schema_id = await self.registry.register(f"{topic}-{part}", resolved.schema.canonical)
        except ConfluentError as exc:
            if exc.status >= 500:
                raise
            subject = f"{topic}-{part}"
            raise err.invalid_schema(f"cannot register it under {subject}: {exc.message}") from None
        self._by_id.setdefault(schema_id, (resolved.schema, resolved.decoder))
        return schema_id


def _offsets_json(base: int, count: int, errors: dict[int, RecordError]) -> list[dict[str, Any]]:
    """The ``offsets`` of a produce answer for records at ``base ..`` (all partition 0)."""
    out: list[dict[str, Any]] = [
        {"partition": 0, "offset": offset, "error_code": None, "error": None}
        for offset in range(base, base + count)
    ]
    for offset, e in errors.items():
        item = out[offset - base]
        item["error_code"] = e.error_code
        item["error"] = e.error
    return out


def _columns(body: Any, partition: int | None) -> tuple[list[Any], list[Any], list[int] | None]:
    """The request's records as columns ``(keys, values, partitions)``, shape-checked;
    ``partitions`` is ``None`` when every record goes to partition 0."""
    if not isinstance(body, dict):
        raise err.invalid_payload("the request body must be a JSON object")
    records = body.get("records")
    if records is None or records == []:
        raise err.records_empty()
    if not isinstance(records, list):
        raise err.invalid_payload("records must be an array")
    keys: list[Any] = []
    values: list[Any] = []
    partitions: list[int] | None = None
    for i, record in enumerate(records):
        if type(record) is not dict:
            raise err.invalid_payload(f"record {i} must be an object")
        keys.append(record.get("key"))
        values.append(record.get("value"))
        p = record.get("partition") if partition is None else partition
        if type(p) is float and p.is_integer():  # 1.0 is an integer in JSON (Schema)
            p = int(p)
        if p is None or (p == 0 and type(p) is int):
            if partitions is not None:
                partitions.append(0)
            continue
        if type(p) is not int or p < 0:
            raise err.invalid_payload(f"record {i}: partition must be a non-negative integer")
        if partitions is None:
            partitions = [0] * i
        partitions.append(p)
    return keys, values, partitions


def _decode_all(resolved: _Resolved | None, items: list[Any], part: str) -> list[Any]:
    if resolved is None:
        return items
    decoder = resolved.decoder
    out: list[Any] = []
    for i, item in enumerate(items):
        if item is None:
            out.append(None)
            continue
        try:
            out.append(decoder(item))
        except AvroJsonError as exc:
            raise err.conversion_failed(f"record {i} {part}: {exc}") from None
    return out


def _base64(value: Any, index: int, part: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise err.invalid_payload(f"record {index} {part}: binary data must be base64 text")
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise err.invalid_payload(f"record {index} {part}: not valid base64") from None
    return value
