"""REST Proxy v2: the POC's produce requests, the three embedded formats, every error
code, one append per batch."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from oddstream.eventstore import EventStore
from oddstream.integrations.kafka.rest_proxy import (
    EventStoreTopics,
    ProducedRecord,
    RestProxy,
    TopicReserved,
    rest_proxy_app,
    rest_proxy_router,
    topic_stream,
)
from oddstream.integrations.kafka.schema_registry import SchemaRegistry, ensure_tote_subjects

from .conftest import AVRO_V2, BINARY_V2, JSON_V2, record_schema

KAFKA_V2 = "application/vnd.kafka.v2+json"


def bet(runner: int, race: int, amount: float) -> dict[str, Any]:
    """A POC record value in Avro's JSON encoding."""
    return {"RUNNER_ID": {"int": runner}, "RACE_ID": {"int": race}, "AMOUNT": {"double": amount}}


async def post(
    client: httpx.AsyncClient, topic: str, body: Any, content_type: str = AVRO_V2
) -> httpx.Response:
    return await client.post(
        f"/topics/{topic}",
        content=orjson.dumps(body),
        headers={"Content-Type": content_type, "Accept": KAFKA_V2},
    )


def error(r: httpx.Response, status: int, code: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error_code"] == code, body
    return str(body["message"])


class Stack:
    """A registry, topics and a REST Proxy client on one store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def __aenter__(self) -> Stack:
        self.registry = await SchemaRegistry.open(self.store)
        await ensure_tote_subjects(self.registry)
        self.topics = await EventStoreTopics.open(self.store)
        self.proxy = RestProxy(self.topics, self.registry)
        transport = httpx.ASGITransport(app=rest_proxy_app(self.proxy))
        self.client = httpx.AsyncClient(transport=transport, base_url="http://rp")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()


@pytest.fixture
async def stack(store: EventStore) -> AsyncIterator[Stack]:
    """On SQLite and PostgreSQL."""
    async with Stack(store) as s:
        yield s


@pytest.fixture
async def fast(fast_store: EventStore) -> AsyncIterator[Stack]:
    """On the embedded store only: for what does not depend on the backend."""
    async with Stack(fast_store) as s:
        yield s


# ----------------------------------------------------------------- the POC request
async def test_the_poc_request_stores_records_with_offsets(stack: Stack) -> None:
    body = {"value_schema_id": 1, "records": [{"value": bet(1, 0, 25.0)}]}
    r = await post(stack.client, "tote_win_bets", body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(KAFKA_V2)
    assert r.json() == {
        "key_schema_id": None,
        "value_schema_id": 1,
        "offsets": [{"partition": 0, "offset": 0, "error_code": None, "error": None}],
    }
    body = {"value_schema_id": 1, "records": [{"value": bet(n, 0, 2.0)} for n in range(1, 4)]}
    r = await post(stack.client, "tote_win_bets", body)
    assert [o["offset"] for o in r.json()["offsets"]] == [1, 2, 3]
    records = await stack.topics.read_topic("tote_win_bets")
    assert [r["offset"] for r in records] == [0, 1, 2, 3]
    assert records[0]["value"] == {"RUNNER_ID": 1, "RACE_ID": 0, "AMOUNT": 25.0}
    assert records[0]["value_schema_id"] == 1
    assert records[0]["format"] == "avro"
    events = await stack.store.read_stream(topic_stream("tote_win_bets"))
    assert [e.type for e in events] == ["kafka.RecordBatch"] * 2  # one event a batch
    assert events[0].data["values"] == [{"RUNNER_ID": 1, "RACE_ID": 0, "AMOUNT": 25.0}]
    assert [e.data["base_offset"] for e in events] == [0, 1]
    assert [
        (t["offset"], t["value"]["RUNNER_ID"])
        for t in await stack.topics.read_topic("tote_win_bets", from_offset=2, limit=1)
    ] == [(2, 2)]


async def test_a_batch_of_1000_is_one_append(stack: Stack) -> None:
    appends: list[tuple[str, int]] = []
    append = stack.store.append

    async def counting(stream_id: str, events: Any, expected: Any = None) -> Any:
        appends.append((stream_id, len(events)))
        return await append(stream_id, events, expected)

    await post(
        stack.client, "tote_win_bets", {"value_schema_id": 1, "records": [{"value": bet(1, 1, 1)}]}
    )
    head = await stack.store.head_position()
    stack.store.append = counting  # type: ignore[method-assign]
    records = [{"value": bet(n % 14 + 1, n % 5, n / 4)} for n in range(1000)]
    r = await post(stack.client, "tote_win_bets", {"value_schema_id": 1, "records": records})
    assert r.status_code == 200, r.text
    assert [o["offset"] for o in r.json()["offsets"]] == list(range(1, 1001))
    assert appends == [(topic_stream("tote_win_bets"), 1)]  # one append of one event
    assert await stack.store.stream_version(topic_stream("tote_win_bets")) == 2
    assert await stack.store.head_position() == head + 1
    assert await stack.topics.end_offset("tote_win_bets") == 1001


# ----------------------------------------------------------------- formats
async def test_json_format(fast: Stack) -> None:
    body = {"records": [{"key": "k1", "value": {"any": ["json", 1]}}, {"value": 5}]}
    r = await post(fast.client, "events", body, JSON_V2)
    assert r.json() == {
        "key_schema_id": None,
        "value_schema_id": None,
        "offsets": [
            {"partition": 0, "offset": 0, "error_code": None, "error": None},
            {"partition": 0, "offset": 1, "error_code": None, "error": None},
        ],
    }
    stored = await fast.topics.read_topic("events")
    assert [(s["key"], s["value"], s["format"]) for s in stored] == [
        ("k1", {"any": ["json", 1]}, "json"),
        (None, 5, "json"),
    ]


@pytest.mark.parametrize(
    "content_type",
    [
        BINARY_V2,
        "application/vnd.kafka+json",
        "application/json",
        KAFKA_V2,
        "application/vnd.kafka.binary+json",
    ],
)
async def test_binary_format(fast: Stack, content_type: str) -> None:
    value = base64.b64encode(b"\x00\x01binary\xff").decode()
    key = base64.b64encode(b"key").decode()
    r = await post(fast.client, "raw", {"records": [{"key": key, "value": value}]}, content_type)
    assert r.status_code == 200, r.text
    (stored,) = await fast.topics.read_topic("raw")
    assert base64.b64decode(stored["value"]) == b"\x00\x01binary\xff"
    assert base64.b64decode(stored["key"]) == b"key"
    assert stored["format"] == "binary"


async def test_inline_schemas_are_registered_under_the_topic(fast: Stack) -> None:
    value_schema = record_schema(
        "Reading", {"name": "v", "type": ["null", "long"], "default": None}
    )
    body = {
        "key_schema": '"string"',
        "value_schema": value_schema,
        "records": [{"key": "a", "value": {"v": {"long": 7}}}, {"key": "b", "value": {}}],
    }
    r = await post(fast.client, "readings", body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["key_schema_id"] == 2
    assert answer["value_schema_id"] == 3
    assert (await fast.registry.get_version("readings-key", "latest")).id == 2
    assert (await fast.registry.get_version("readings-value", "latest")).id == 3
    stored = await fast.topics.read_topic("readings")
    assert [(s["key"], s["value"]) for s in stored] == [("a", {"v": 7}), ("b", {"v": None})]
    assert stored[0]["key_schema_id"] == 2
    # the same inline schema again: same ids, no new version
    r = await post(fast.client, "readings", body)
    assert (r.json()["key_schema_id"], r.json()["value_schema_id"]) == (2, 3)
    assert await fast.registry.versions("readings-value") == [1]
    # an inline schema given as JSON rather than text is accepted too
    r = await post(fast.client, "readings", {**body, "value_schema": orjson.loads(value_schema)})
    assert r.json()["value_schema_id"] == 3


async def test_schema_id_wins_over_inline_schema(fast: Stack) -> None:
    body = {"value_schema_id": 1, "value_schema": '"string"', "records": [{"value": bet(1, 1, 1)}]}
    r = await post(fast.client, "tote_win_bets", body)
    assert r.json()["value_schema_id"] == 1


async def test_null_values_and_partition_zero(fast: Stack) -> None:
    body = {
        "value_schema_id": 1,
        "records": [{"value": None, "partition": 0}, {"value": bet(1, 1, 1)}],
    }
    r = await post(fast.client, "tote_win_bets", body)
    assert r.status_code == 200
    assert (await fast.topics.read_topic("tote_win_bets"))[0]["value"] is None
    r = await fast.client.post(
        "/topics/tote_win_bets/partitions/0",
        content=orjson.dumps({"value_schema_id": 1, "records": [{"value": bet(2, 2, 2)}]}),
        headers={"Content-Type": AVRO_V2},
    )
    assert r.json()["offsets"][0] == {
        "partition": 0,
        "offset": 2,
        "error_code": None,
        "error": None,
    }


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        # keys without a key schema
        ({"value_schema_id": 1, "records": [{"key": "k", "value": bet(1, 1, 1)}]}, 422, 42201),
        # values without a value schema
        ({"records": [{"value": bet(1, 1, 1)}]}, 422, 42202),
        # JSON that does not convert: not wrapped, wrong branch, wrong type, unknown field
        ({"value_schema_id": 1, "records": [{"value": {"RUNNER_ID": 1}}]}, 422, 42203),
        ({"value_schema_id": 1, "records": [{"value": {"RUNNER_ID": {"long": 1}}}]}, 422, 42203),
        ({"value_schema_id": 1, "records": [{"value": {"AMOUNT": {"double": "x"}}}]}, 422, 42203),
        ({"value_schema_id": 1, "records": [{"value": {"RUNNER": {"int": 1}}}]}, 422, 42203),
        ({"value_schema_id": 1, "records": [{"value": "text"}]}, 422, 42203),
        # invalid schemas
        ({"value_schema": "{not json", "records": [{"value": 1}]}, 422, 42205),
        ({"value_schema": '{"type": "record"}', "records": [{"value": 1}]}, 422, 42205),
        ({"value_schema": 5, "records": [{"value": 1}]}, 422, 42205),
        ({"value_schema_id": 999, "records": [{"value": 1}]}, 422, 42205),
        ({"value_schema_id": "1", "records": [{"value": 1}]}, 422, 42205),
        ({"value_schema_id": True, "records": [{"value": 1}]}, 422, 42205),
        ({"value_schema_id": 0, "records": [{"value": 1}]}, 422, 42205),
        # invalid payloads
        ({"value_schema_id": 1, "records": "x"}, 422, 42206),
        ({"value_schema_id": 1, "records": [5]}, 422, 42206),
        ({"value_schema_id": 1, "records": [{"value": None, "partition": "0"}]}, 422, 42206),
        ({"value_schema_id": 1, "records": [{"value": None, "partition": -1}]}, 422, 42206),
        ([{"value": 1}], 422, 42206),
        ("records", 422, 42206),
        # no records
        ({"value_schema_id": 1, "records": []}, 422, 422),
        ({"value_schema_id": 1}, 422, 422),
        ({"value_schema_id": 1, "records": None}, 422, 422),
        # a partition the topic does not have
        ({"value_schema_id": 1, "records": [{"value": None, "partition": 3}]}, 404, 40402),
    ],
)
async def test_avro_errors(fast: Stack, body: Any, status: int, code: int) -> None:
    message = error(await post(fast.client, "tote_win_bets", body), status, code)
    assert message
    assert await fast.store.stream_version(topic_stream("tote_win_bets")) == 0


async def test_records_may_not_be_empty_message(fast: Stack) -> None:
    r = await post(fast.client, "t", {"records": []}, JSON_V2)
    assert r.json() == {"error_code": 422, "message": "records may not be empty"}


async def test_conversion_errors_say_which_record_and_field(fast: Stack) -> None:
    records = [{"value": bet(1, 1, 1)}, {"value": {"RUNNER_ID": {"int": "one"}}}]
    r = await post(fast.client, "tote_win_bets", {"value_schema_id": 1, "records": records})
    message = error(r, 422, 42203)
    assert "record 1" in message
    assert "RUNNER_ID" in message


async def test_incompatible_inline_schema_is_42205(fast: Stack) -> None:
    v1 = record_schema("V", {"name": "a", "type": "int"})
    v2 = record_schema("V", {"name": "a", "type": "int"}, {"name": "b", "type": "int"})
    assert (
        await post(fast.client, "v", {"value_schema": v1, "records": [{"value": {"a": 1}}]})
    ).status_code == 200
    r = await post(fast.client, "v", {"value_schema": v2, "records": [{"value": {"a": 1, "b": 2}}]})
    assert "incompatible" in error(r, 422, 42205)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ({"records": [{"value": "not base64!"}]}, BINARY_V2),
        ({"records": [{"value": 5}]}, BINARY_V2),
        ({"records": [{"key": ["x"], "value": None}]}, BINARY_V2),
        ({"records": [{"value": "nul \u0000 inside"}]}, JSON_V2),  # the store refuses NUL
    ],
)
async def test_invalid_payloads(fast: Stack, body: Any, content_type: str) -> None:
    error(await post(fast.client, "p", body, content_type), 422, 42206)


@pytest.mark.parametrize("content", [b"{", b"", b"\xff", b"[1,"])
async def test_broken_json_is_422(fast: Stack, content: bytes) -> None:
    r = await fast.client.post("/topics/t", content=content, headers={"Content-Type": JSON_V2})
    error(r, 422, 42206)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/vnd.kafka.protobuf.v2+json", "application/vnd.kafka.avro.v1+json"],
)
async def test_unsupported_content_types_are_415(fast: Stack, content_type: str) -> None:
    error(await post(fast.client, "t", {"records": [{"value": 1}]}, content_type), 415, 415)


async def test_topics_that_do_not_exist(fast_store: EventStore) -> None:
    registry = await SchemaRegistry.open(fast_store)
    topics = await EventStoreTopics.open(fast_store, auto_create=False, topics=["declared"])
    app = rest_proxy_app(RestProxy(topics, registry))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rp") as c:
        error(await post(c, "undeclared", {"records": [{"value": 1}]}, JSON_V2), 404, 40401)
        error(await c.get("/topics/undeclared"), 404, 40401)
        error(await c.get("/topics/undeclared/partitions"), 404, 40401)
        assert (await c.get("/topics")).json() == ["declared"]
        r = await post(c, "declared", {"records": [{"value": 1}]}, JSON_V2)
        assert r.json()["offsets"][0]["offset"] == 0
    assert await fast_store.stream_version(topic_stream("undeclared")) == 0


async def test_a_topic_the_service_writes_refuses_every_produce(fast: Stack) -> None:
    """A reserved topic is refused before anything is decoded, registered or stored;
    the service's own appends still write it."""
    await fast.topics.declare("derived")
    await fast.topics.append("derived", [ProducedRecord({"row": 1})])
    fast.topics.reserve("derived", "the test's materializer")
    inline = {
        "value_schema": record_schema("Row", {"name": "row", "type": "int"}),
        "records": [{"value": {"row": 2}}],
    }
    for path in ("/topics/derived", "/topics/derived/partitions/0"):
        r = await fast.client.post(
            path, content=orjson.dumps(inline), headers={"Content-Type": AVRO_V2}
        )
        message = error(r, 403, 40301)
        assert message == (
            "Topic 'derived' is written by the service (the test's materializer): "
            "no client may produce to it."
        )
    error(await post(fast.client, "derived", {"records": [{"value": 1}]}, JSON_V2), 403, 40301)
    assert "derived-value" not in await fast.registry.subjects()
    with pytest.raises(TopicReserved):
        await fast.topics.produce("derived", [ProducedRecord({"row": 3})])
    assert await fast.topics.end_offset("derived") == 1
    await fast.topics.append("derived", [ProducedRecord({"row": 4})])
    assert [r.value for r in await fast.topics.read("derived")] == [{"row": 1}, {"row": 4}]
    assert (await fast.client.get("/topics/derived")).status_code == 200  # reads stay open


@pytest.mark.parametrize("topic", ["bad%20name", "a" * 195, "sp%C3%A9cial"])
async def test_illegal_topic_names_are_not_found(fast: Stack, topic: str) -> None:
    error(await post(fast.client, topic, {"records": [{"value": 1}]}, JSON_V2), 404, 40401)
    error(await fast.client.get(f"/topics/{topic}"), 404, 40401)


# ----------------------------------------------------------------- topic metadata
async def test_list_and_describe_topics(fast: Stack) -> None:
    assert (await fast.client.get("/topics")).json() == []
    await post(fast.client, "b-topic", {"records": [{"value": 1}]}, JSON_V2)
    await post(fast.client, "a.topic", {"records": [{"value": 1}]}, JSON_V2)
    assert (await fast.client.get("/topics")).json() == ["a.topic", "b-topic"]
    r = await fast.client.get("/topics/a.topic")
    assert r.headers["content-type"].startswith(KAFKA_V2)
    partition = {
        "partition": 0,
        "leader": 0,
        "replicas": [{"broker": 0, "leader": True, "in_sync": True}],
    }
    assert r.json() == {"name": "a.topic", "configs": {}, "partitions": [partition]}
    assert (await fast.client.get("/topics/a.topic/partitions")).json() == [partition]
    assert (await fast.client.get("/topics/a.topic/partitions/0")).json() == partition
    error(await fast.client.get("/topics/a.topic/partitions/1"), 404, 40402)
    error(await fast.client.get("/topics/a.topic/partitions/x"), 404, 40402)
    assert (await fast.client.get("/brokers")).json() == {"brokers": [0]}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("GET", "/consumers"),
        ("PUT", "/topics"),
        ("DELETE", "/topics/t"),
        ("GET", "/v3/clusters"),
    ],
)
async def test_unknown_routes_are_json_404(fast: Stack, method: str, path: str) -> None:
    r = await fast.client.request(method, path)
    assert r.status_code == 404
    assert r.json() == {"error_code": 404, "message": "HTTP 404 Not Found"}


async def test_unknown_query_parameters_are_ignored(fast: Stack) -> None:
    r = await fast.client.post(
        "/topics/q?async=true&foo=bar",
        content=orjson.dumps({"records": [{"value": 1}]}),
        headers={"Content-Type": JSON_V2},
    )
    assert r.status_code == 200
    assert (await fast.client.get("/topics?x=1")).json() == ["q"]


async def test_body_limit(fast: Stack) -> None:
    app = rest_proxy_app(fast.proxy, max_body_bytes=10_000)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rp") as c:
        big = {"records": [{"value": "x" * 20_000}]}
        error(await post(c, "big", big, JSON_V2), 413, 413)
        assert (await post(c, "small", {"records": [{"value": 1}]}, JSON_V2)).status_code == 200


async def test_default_body_limit_fits_1000_records(fast: Stack) -> None:
    records = [{"value": {"payload": "y" * 4000}} for _ in range(1000)]  # ~4 MB
    r = await post(fast.client, "wide", {"records": records}, JSON_V2)
    assert r.status_code == 200, r.text[:200]


async def test_the_router_mounts_on_another_app(fast: Stack) -> None:
    from fastapi import FastAPI

    app = FastAPI()
    app.include_router(rest_proxy_router(fast.proxy))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://main"
    ) as c:
        r = await post(
            c, "tote_win_bets", {"value_schema_id": 1, "records": [{"value": bet(1, 1, 1)}]}
        )
        assert r.status_code == 200
        error(await post(c, "tote_win_bets", {"records": []}), 422, 422)


async def test_store_failures_are_5xx_json(fast: Stack) -> None:
    await fast.store.close()
    r = await post(fast.client, "t", {"records": [{"value": 1}]}, JSON_V2)
    error(r, 500, 50002)
