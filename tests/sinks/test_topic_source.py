"""TopicSource: a REST Proxy topic's records as the sink's records. Schemas are made once
and shared by the records that carry them, a new one (a new Avro id, a changed Connect
envelope) is picked up, a record that cannot be read is refused and holds nothing once
read, and a record's dead letter is made on demand exactly as ``read_topic`` shows it."""

from __future__ import annotations

import base64
import gc
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from oddstream.eventstore import RecordedEvent
from oddstream.eventstore.sqlite import SqliteEventStore
from oddstream.integrations.kafka.rest_proxy import EventStoreTopics, ProducedRecord
from oddstream.integrations.kafka.rest_proxy.records import TopicRecord, topic_stream
from oddstream.integrations.kafka.schema_registry import SchemaRegistry
from oddstream.integrations.kafka.sink_source import TopicSource
from oddstream.sinks import JdbcSinkConfig, RecordSchema, SinkRecord, parse_config

TOPIC = "bets"
DECIMAL = {
    "field": "odds",
    "type": "bytes",
    "name": "org.apache.kafka.connect.data.Decimal",
    "parameters": {"scale": "2"},
}
V1 = {"type": "struct", "fields": [{"field": "id", "type": "int64"}, DECIMAL]}
V2 = {
    "type": "struct",
    "fields": [
        {"field": "id", "type": "int64"},
        DECIMAL,
        {"field": "note", "type": "string", "optional": True},
    ],
}


def odds(unscaled: int) -> str:
    return base64.b64encode(unscaled.to_bytes(4, "big", signed=True)).decode()


def envelope(schema: dict[str, Any], i: int, **extra: Any) -> ProducedRecord:
    payload = {"id": i, "odds": odds(150 + i), **extra}
    return ProducedRecord({"schema": schema, "payload": payload}, format="json")


def config(topic: str = TOPIC) -> JdbcSinkConfig:
    return parse_config(
        {
            "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
            "connection.url": "jdbc:sqlite::memory:",
            "topics": topic,
        }
    )


class CountingRegistry(SchemaRegistry):
    """The registry, counting how often the source asks it for a schema."""

    asked: list[int]

    async def parsed_schema(self, schema_id: int) -> Any:
        self.asked.append(schema_id)
        return await super().parsed_schema(schema_id)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteEventStore]:
    s = await SqliteEventStore.open(tmp_path / "events.db")
    try:
        yield s
    finally:
        await s.close()


async def events(store: SqliteEventStore, topic: str = TOPIC) -> list[RecordedEvent]:
    return list(await store.read_stream(topic_stream(topic)))


def good(records: Any) -> list[SinkRecord]:
    assert all(r is not None for r in records)
    return list(records)


async def test_json_records_share_their_schema_and_a_changed_envelope_is_picked_up(
    store: SqliteEventStore,
) -> None:
    topics = await EventStoreTopics.open(store)
    await topics.produce(TOPIC, [envelope(V1, i) for i in range(3)])
    await topics.produce(TOPIC, [envelope(V2, 3, note="late"), envelope(V1, 4)])
    first, second = await events(store)
    source = TopicSource(config())

    a = good((await source.items(first)).records)
    b = good((await source.items(second)).records)

    v1 = a[0].value_schema
    assert isinstance(v1, RecordSchema)
    assert v1.names == ("id", "odds")
    assert all(r.value_schema is v1 for r in a)  # one schema object: the writer's layout
    assert b[1].value_schema is v1  # the same envelope again, in another event
    v2 = b[0].value_schema
    assert isinstance(v2, RecordSchema)
    assert v2.names == ("id", "odds", "note")
    assert b[0].value == {"id": 3, "odds": base64.b64decode(odds(153)), "note": "late"}
    assert [r.value["odds"] for r in a if r.value] == [
        base64.b64decode(odds(150 + i)) for i in range(3)
    ]
    # the stored values are left as they were (a dead letter shows them as stored)
    assert first.data["values"][0]["payload"]["odds"] == odds(150)


async def test_avro_schema_ids_are_read_once_and_a_new_id_is_picked_up(
    store: SqliteEventStore,
) -> None:
    registry = await CountingRegistry.open(store)
    registry.asked = []
    fields: list[dict[str, Any]] = [
        {"name": "id", "type": "long"},
        {"name": "blob", "type": "bytes"},
    ]
    v1 = await registry.register(
        "bets-value", json.dumps({"type": "record", "name": "bet", "fields": fields})
    )
    topics = await EventStoreTopics.open(store)
    blob = base64.b64encode(b"\x00\x01").decode()

    def avro(i: int, schema_id: int, **extra: Any) -> ProducedRecord:
        value = {"id": i, "blob": blob, **extra}
        return ProducedRecord(value, format="avro", value_schema_id=schema_id)

    await topics.produce(TOPIC, [avro(i, v1) for i in range(3)])
    evolved = [*fields, {"name": "note", "type": ["null", "string"], "default": None}]
    v2 = await registry.register(
        "bets-value", json.dumps({"type": "record", "name": "bet", "fields": evolved})
    )
    assert v2 != v1
    await topics.produce(TOPIC, [avro(3, v2, note="n"), avro(4, v1)])  # two events
    first, *rest = await events(store)
    source = TopicSource(config(), registry)

    a = good((await source.items(first)).records)
    again = good((await source.items(first)).records)
    b = [r for event in rest for r in good((await source.items(event)).records)]

    assert registry.asked == [v1, v2]  # each id read once, however many records
    schema1, schema2 = a[0].value_schema, b[0].value_schema
    assert isinstance(schema1, RecordSchema)
    assert isinstance(schema2, RecordSchema)
    assert schema1.names == ("id", "blob")
    assert schema2.names == ("id", "blob", "note")
    assert all(r.value_schema is schema1 for r in [*a, *again, b[1]])
    assert b[0].value == {"id": 3, "blob": b"\x00\x01", "note": "n"}


async def test_an_unknown_schema_id_is_refused_and_keeps_no_record_alive(
    store: SqliteEventStore,
) -> None:
    """A refusal is cached per schema id; raising one cached exception for every record
    grew its traceback by the frames it went through, each holding its record, for as
    long as the sink ran."""
    registry = await CountingRegistry.open(store)
    registry.asked = []
    topics = await EventStoreTopics.open(store)
    await topics.produce(
        TOPIC,
        [ProducedRecord({"id": i}, format="avro", value_schema_id=999) for i in range(50)],
    )
    (event,) = await events(store)
    source = TopicSource(config(), registry)

    def live_records() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, TopicRecord))

    before = live_records()
    for _ in range(20):
        items = await source.items(event)
        assert list(items.records) == [None] * 50
        assert {r.reason for r in items.refusals.values()} == {"unknown_schema"}
        assert sorted(items.refusals) == list(range(50))
        del items
    assert registry.asked == [999]
    assert live_records() == before


async def test_the_dead_letter_is_the_record_as_read_topic_shows_it(
    store: SqliteEventStore,
) -> None:
    topics = await EventStoreTopics.open(store)
    await topics.produce(TOPIC, [envelope(V1, 0), envelope(V1, 1)])
    await topics.produce(
        TOPIC,
        [envelope(V1, 2), ProducedRecord({"id": 3}, format="json"), envelope(V1, 4)],
    )
    await topics.produce(TOPIC, [ProducedRecord("aGk=", key="a2V5", format="binary")])
    _, event, binary = await events(store)
    source = TopicSource(config())
    items = await source.items(event)

    assert [r is None for r in items.records] == [False, True, False]
    assert {i: r.reason for i, r in items.refusals.items()} == {1: "no_schema"}
    assert {i: r.reason for i, r in (await source.items(binary)).refusals.items()} == {
        0: "no_schema"
    }
    shown = await topics.read_topic(TOPIC, 2)
    assert [r["offset"] for r in shown] == [2, 3, 4, 5]
    lettered = [(event, i) for i in range(3)] + [(binary, 0)]
    for record, (where, index) in zip(shown, lettered, strict=True):
        payload, context = (await source.items(where)).letter(index)
        assert payload == orjson.dumps(record)
        assert context == {
            "topic": TOPIC,
            "partition": "0",
            "offset": str(record["offset"]),
            "log_position": str(where.position),
        }
