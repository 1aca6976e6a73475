"""Fixtures for the Confluent-compatible surfaces.

``registry``/``proxy`` and their HTTP clients run on a fast embedded store (the HTTP
contract does not depend on the backend); the persistence tests ask for the shared
``store`` fixture, which runs them on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from oddstream.eventstore import EventStore
from oddstream.eventstore.sqlite import SqliteEventStore
from oddstream.integrations.kafka.rest_proxy import EventStoreTopics, RestProxy, rest_proxy_app
from oddstream.integrations.kafka.schema_registry import SchemaRegistry, schema_registry_app

SR_JSON = "application/vnd.schemaregistry.v1+json"
AVRO_V2 = "application/vnd.kafka.avro.v2+json"
JSON_V2 = "application/vnd.kafka.json.v2+json"
BINARY_V2 = "application/vnd.kafka.binary.v2+json"


def record_schema(name: str, *fields: dict[str, Any], namespace: str | None = None) -> str:
    """An Avro record schema's text."""
    schema: dict[str, Any] = {"type": "record", "name": name, "fields": list(fields)}
    if namespace is not None:
        schema["namespace"] = namespace
    return orjson.dumps(schema).decode()


@pytest.fixture
async def fast_store(tmp_path) -> AsyncIterator[EventStore]:
    store = await SqliteEventStore.open(tmp_path / "compat.db", synchronous="NORMAL")
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def registry(fast_store: EventStore) -> SchemaRegistry:
    return await SchemaRegistry.open(fast_store)


@pytest.fixture
async def sr(registry: SchemaRegistry) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the dedicated Schema Registry app."""
    transport = httpx.ASGITransport(app=schema_registry_app(registry))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sr", headers={"Content-Type": SR_JSON}
    ) as client:
        yield client


@pytest.fixture
async def topics(fast_store: EventStore) -> EventStoreTopics:
    return await EventStoreTopics.open(fast_store)


@pytest.fixture
def proxy(topics: EventStoreTopics, registry: SchemaRegistry) -> RestProxy:
    return RestProxy(topics, registry)


@pytest.fixture
async def rp(proxy: RestProxy) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the dedicated REST Proxy app."""
    transport = httpx.ASGITransport(app=rest_proxy_app(proxy))
    async with httpx.AsyncClient(transport=transport, base_url="http://rp") as client:
        yield client
