"""Conformance: Confluent's own Python client against a real HTTP server.

The Schema Registry app runs under uvicorn in a background thread (its own event loop,
an SQLite store) on a free port of 127.0.0.1; each test builds a fresh
``SchemaRegistryClient`` (it caches aggressively) and uses subjects of its own.
"""

from __future__ import annotations

import asyncio
import io
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pytest
import uvicorn

from oddstream.eventstore.sqlite import SqliteEventStore
from oddstream.integrations.kafka.schema_registry import (
    SchemaRegistry,
    ensure_tote_subjects,
    schema_registry_app,
)

confluent = pytest.importorskip("confluent_kafka.schema_registry")
avro_serde = pytest.importorskip("confluent_kafka.schema_registry.avro")
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient  # noqa: E402
from confluent_kafka.schema_registry.error import SchemaRegistryError  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402

from .conftest import record_schema  # noqa: E402


class ServerThread:
    """uvicorn serving the Schema Registry app in a thread of its own."""

    def __init__(self, db: Path) -> None:
        self.db = db
        # proto=IPPROTO_TCP: asyncio only disables Nagle on sockets that say they are
        # TCP; without it every keep-alive answer waits ~40 ms for a delayed ACK.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server: uvicorn.Server | None = None
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="schema-registry", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start()
            self.failure = exc

    async def _serve(self) -> None:
        store = await SqliteEventStore.open(self.db, synchronous="NORMAL")
        try:
            registry = await SchemaRegistry.open(store)
            await ensure_tote_subjects(registry)
            config = uvicorn.Config(
                schema_registry_app(registry), log_level="warning", lifespan="off"
            )
            self.server = uvicorn.Server(config)
            await self.server.serve(sockets=[self.sock])
        finally:
            await store.close()

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not (self.server is not None and self.server.started):
            if self.failure is not None or not self.thread.is_alive():
                raise RuntimeError(f"the server did not start: {self.failure!r}")
            assert time.monotonic() < deadline, "the server did not start in 10 s"
            time.sleep(0.01)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    thread = ServerThread(tmp_path_factory.mktemp("sr") / "registry.db")
    thread.start()
    yield thread
    thread.stop()


@pytest.fixture
def client(server: ServerThread) -> Iterator[SchemaRegistryClient]:
    c = SchemaRegistryClient({"url": server.url})
    yield c
    c.close()


@pytest.fixture
def subject() -> str:
    return f"t{uuid.uuid4().hex[:10]}-value"


PAYMENT = record_schema(
    "Payment",
    {"name": "id", "type": "string"},
    {"name": "amount", "type": "double"},
    namespace="oddstream.test",
)
PAYMENT_V2 = record_schema(
    "Payment",
    {"name": "id", "type": "string"},
    {"name": "amount", "type": "double"},
    {"name": "currency", "type": ["null", "string"], "default": None},
    namespace="oddstream.test",
)
PAYMENT_BAD = record_schema(
    "Payment",
    {"name": "id", "type": "string"},
    {"name": "amount", "type": "double"},
    {"name": "region", "type": "string"},
    namespace="oddstream.test",
)


def test_the_poc_subject(client: SchemaRegistryClient) -> None:
    latest = client.get_latest_version("tote_win_bets-value")
    assert latest.schema_id == 1
    assert latest.version == 1
    names = [f["name"] for f in orjson.loads(latest.schema.schema_str)["fields"]]
    assert names == ["RUNNER_ID", "RACE_ID", "AMOUNT"]
    assert "tote_win_bets-value" in client.get_subjects()


def test_register_get_lookup_versions(
    server: ServerThread, client: SchemaRegistryClient, subject: str
) -> None:
    schema_id = client.register_schema(subject, Schema(PAYMENT, "AVRO"))
    assert client.register_schema(subject, Schema(PAYMENT, "AVRO")) == schema_id
    fetched = client.get_schema(schema_id)
    assert fetched.schema_type == "AVRO"
    assert (
        fastavro.parse_schema(orjson.loads(fetched.schema_str))["name"] == "oddstream.test.Payment"
    )
    v2_id = client.register_schema(subject, Schema(PAYMENT_V2, "AVRO"))
    assert v2_id != schema_id
    assert client.get_versions(subject) == [1, 2]
    latest = client.get_latest_version(subject)
    assert (latest.schema_id, latest.version, latest.subject) == (v2_id, 2, subject)
    assert client.get_version(subject, 1).schema_id == schema_id
    found = client.lookup_schema(subject, Schema(PAYMENT, "AVRO"))
    assert (found.schema_id, found.version) == (schema_id, 1)
    # the same schema in another subject keeps its id
    fresh = SchemaRegistryClient({"url": server.url})
    assert fresh.register_schema(subject + "-copy", Schema(PAYMENT, "AVRO")) == schema_id
    fresh.close()
    assert client.get_schema_types() == ["AVRO"]


def test_not_found_errors(client: SchemaRegistryClient, subject: str) -> None:
    with pytest.raises(SchemaRegistryError) as info:
        client.get_latest_version(subject)
    assert (info.value.http_status_code, info.value.error_code) == (404, 40401)
    with pytest.raises(SchemaRegistryError) as info:
        client.get_schema(999_999)
    assert (info.value.http_status_code, info.value.error_code) == (404, 40403)
    client.register_schema(subject, Schema(PAYMENT, "AVRO"))
    with pytest.raises(SchemaRegistryError) as info:
        client.lookup_schema(subject, Schema(PAYMENT_BAD, "AVRO"))
    assert info.value.error_code == 40403


def test_invalid_schema_is_42201(client: SchemaRegistryClient, subject: str) -> None:
    with pytest.raises(SchemaRegistryError) as info:
        client.register_schema(subject, Schema('{"type": "record"}', "AVRO"))
    assert (info.value.http_status_code, info.value.error_code) == (422, 42201)
    with pytest.raises(SchemaRegistryError) as info:
        client.register_schema(subject, Schema('{"type": "object"}', "JSON"))
    assert info.value.error_code == 42201


def test_compatibility(client: SchemaRegistryClient, subject: str) -> None:
    client.register_schema(subject, Schema(PAYMENT, "AVRO"))
    assert client.test_compatibility(subject, Schema(PAYMENT_V2, "AVRO")) is True
    assert client.test_compatibility(subject, Schema(PAYMENT_BAD, "AVRO")) is False
    assert client.test_compatibility(subject, Schema(PAYMENT_BAD, "AVRO"), version=1) is False
    assert client.test_compatibility_all_versions(subject, Schema(PAYMENT_V2, "AVRO")) is True
    with pytest.raises(SchemaRegistryError) as info:
        client.register_schema(subject, Schema(PAYMENT_BAD, "AVRO"))
    assert (info.value.http_status_code, info.value.error_code) == (409, 409)

    assert client.set_compatibility(subject, "NONE") == {"compatibility": "NONE"}
    assert client.get_compatibility(subject) == "NONE"
    assert client.test_compatibility(subject, Schema(PAYMENT_BAD, "AVRO")) is True
    client.register_schema(subject, Schema(PAYMENT_BAD, "AVRO"))
    with pytest.raises(SchemaRegistryError) as info:
        client.set_compatibility(subject, "SOMETIMES")
    assert (info.value.http_status_code, info.value.error_code) == (422, 42203)
    with pytest.raises(SchemaRegistryError) as info:
        client.get_compatibility(subject + "-none")
    assert info.value.error_code == 40408
    assert client.get_compatibility() in {"BACKWARD", "NONE", "FULL"}


def test_global_compatibility(client: SchemaRegistryClient) -> None:
    before = client.get_compatibility()
    try:
        assert client.set_compatibility(level="FULL_TRANSITIVE") == {
            "compatibility": "FULL_TRANSITIVE"
        }
        assert client.get_compatibility() == "FULL_TRANSITIVE"
    finally:
        client.set_compatibility(level=before)


def test_delete_subject_and_version(client: SchemaRegistryClient, subject: str) -> None:
    client.register_schema(subject, Schema(PAYMENT, "AVRO"))
    client.register_schema(subject, Schema(PAYMENT_V2, "AVRO"))
    assert client.delete_version(subject, 1) == 1
    assert client.get_versions(subject) == [2]
    assert client.delete_subject(subject) == [2]
    assert subject not in client.get_subjects()
    assert subject in client.get_subjects(deleted=True)
    assert client.delete_subject(subject, permanent=True) == [1, 2]
    assert subject not in client.get_subjects(deleted=True)


def _serialize(
    client: SchemaRegistryClient, schema: str, topic: str, value: dict[str, Any]
) -> bytes:
    serializer = avro_serde.AvroSerializer(client, schema)
    return bytes(serializer(value, SerializationContext(topic, MessageField.VALUE)))


def test_serializer_round_trip_and_wire_format(
    server: ServerThread, client: SchemaRegistryClient
) -> None:
    topic = f"pay{uuid.uuid4().hex[:8]}"
    value = {"id": "p-1", "amount": 12.5}
    data = _serialize(client, PAYMENT, topic, value)
    schema_id = client.get_latest_version(f"{topic}-value").schema_id
    # 0x00, the id as 4 bytes big-endian, then the Avro binary body
    assert data[0] == 0
    assert int.from_bytes(data[1:5], "big") == schema_id
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(orjson.loads(PAYMENT)), value)
    assert data[5:] == body.getvalue()

    fresh = SchemaRegistryClient({"url": server.url})
    try:
        deserializer = avro_serde.AvroDeserializer(fresh)
        assert deserializer(data, SerializationContext(topic, MessageField.VALUE)) == value
    finally:
        fresh.close()


def test_the_poc_wire_format(client: SchemaRegistryClient) -> None:
    poc = client.get_latest_version("tote_win_bets-value").schema.schema_str
    serializer = avro_serde.AvroSerializer(
        client, poc, conf={"auto.register.schemas": False, "use.latest.version": True}
    )
    value = {"RUNNER_ID": 3, "RACE_ID": 1, "AMOUNT": 25.0}
    data = bytes(serializer(value, SerializationContext("tote_win_bets", MessageField.VALUE)))
    assert data[:5] == b"\x00\x00\x00\x00\x01"
    deserializer = avro_serde.AvroDeserializer(client)
    assert deserializer(data, SerializationContext("tote_win_bets", MessageField.VALUE)) == value
