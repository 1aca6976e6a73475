"""Topics over the event store: the catalogue, hooks, reading and derived records."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import orjson
import pytest

from oddstream.eventstore import EventStore
from oddstream.integrations.kafka.rest_proxy import (
    CATALOG_STREAM,
    EventStoreTopics,
    PartitionNotFound,
    ProducedRecord,
    RecordError,
    RestProxy,
    TopicHandler,
    TopicNotFound,
    TopicRecord,
    rest_proxy_app,
    topic_stream,
    valid_topic_name,
)
from oddstream.integrations.kafka.schema_registry import SchemaRegistry, ensure_tote_subjects

from .conftest import AVRO_V2


def test_the_default_handler_is_a_topic_handler(fast_store: EventStore) -> None:
    assert isinstance(EventStoreTopics(fast_store), TopicHandler)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("tote_win_bets", True),
        ("a.b-c_D9", True),
        ("a" * 194, True),
        ("a" * 195, False),
        ("", False),
        (".", False),
        ("..", False),
        ("with space", False),
        ("slash/", False),
        ("é", False),
    ],
)
def test_topic_names(name: str, ok: bool) -> None:
    assert valid_topic_name(name) is ok


async def test_catalogue_is_shared_and_idempotent(store_factory) -> None:
    one_store, two_store = await store_factory(), await store_factory()
    try:
        one = await EventStoreTopics.open(one_store, topics=["x", "y"])
        two = await EventStoreTopics.open(two_store, topics=["y", "x"])
        await one.declare("x")
        assert await two.topics() == ["x", "y"]
        await two.append("z", [ProducedRecord({"n": 1})])
        assert await one.topics() == ["x", "y", "z"]
        assert await one.exists("z")
        events = await one_store.read_stream(CATALOG_STREAM)
        assert sorted(e.data["topic"] for e in events) == ["x", "y", "z"]
        with pytest.raises(ValueError, match="legal"):
            await one.declare("no spaces")
    finally:
        await one_store.close()
        await two_store.close()


async def test_read_and_append(store: EventStore) -> None:
    topics = await EventStoreTopics.open(store)
    with pytest.raises(TopicNotFound):
        await topics.read("odds")
    stored = await topics.append(
        "odds", [ProducedRecord({"odds": n / 2}, key=f"r{n}") for n in range(5)]
    )
    assert [r.offset for r in stored] == [0, 1, 2, 3, 4]
    assert await topics.end_offset("odds") == 5
    read = await topics.read("odds", from_offset=3)
    assert [(r.offset, r.key, r.value) for r in read] == [
        (3, "r3", {"odds": 1.5}),
        (4, "r4", {"odds": 2.0}),
    ]
    assert read[0].timestamp > 1_600_000_000_000
    assert read[0].format == "json"
    assert [r["offset"] for r in await topics.read_topic("odds", 1, limit=2)] == [1, 2]
    assert await topics.read_topic("odds", 5) == []
    first = (await topics.read_topic("odds"))[0]
    assert first == {
        "topic": "odds",
        "partition": 0,
        "offset": 0,
        "timestamp": first["timestamp"],
        "key": "r0",
        "value": {"odds": 0.0},
        "key_schema_id": None,
        "value_schema_id": None,
        "format": "json",
    }
    with pytest.raises(ValueError, match="from_offset"):
        await topics.read("odds", from_offset=-1)
    with pytest.raises(PartitionNotFound):
        await topics.append("odds", [ProducedRecord(1, partition=1)])
    assert await topics.append("odds", []) == []
    with pytest.raises(TopicNotFound):
        await topics.append("new", [ProducedRecord(1)], create=False)


class FakeBets:
    """A stand-in for the app's tote routing: records what it saw, rejects zero bets."""

    def __init__(self) -> None:
        self.seen: list[TopicRecord] = []

    async def __call__(
        self, topic: str, records: Sequence[TopicRecord]
    ) -> list[RecordError | None]:
        self.seen.extend(records)
        return [
            RecordError(2, "a bet needs an amount") if not r.value["AMOUNT"] else None
            for r in records
        ]


async def test_the_hook_gets_decoded_records_and_can_flag_them(fast_store: EventStore) -> None:
    registry = await SchemaRegistry.open(fast_store)
    await ensure_tote_subjects(registry)
    topics = await EventStoreTopics.open(fast_store)
    bets = FakeBets()
    topics.add_hook("tote_win_bets", bets)
    app = rest_proxy_app(RestProxy(topics, registry))
    records = [
        {"value": {"RUNNER_ID": {"int": 3}, "RACE_ID": {"int": 1}, "AMOUNT": {"double": 25.0}}},
        {"value": {"RUNNER_ID": {"int": 4}, "RACE_ID": {"int": 1}, "AMOUNT": {"double": 0.0}}},
    ]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rp") as c:
        r = await c.post(
            "/topics/tote_win_bets",
            content=orjson.dumps({"value_schema_id": 1, "records": records}),
            headers={"Content-Type": AVRO_V2},
        )
        # other topics do not reach the hook
        await c.post(
            "/topics/other",
            content=orjson.dumps({"value_schema_id": 1, "records": records}),
            headers={"Content-Type": AVRO_V2},
        )
    assert r.status_code == 200
    assert r.json()["offsets"] == [
        {"partition": 0, "offset": 0, "error_code": None, "error": None},
        {"partition": 0, "offset": 1, "error_code": 2, "error": "a bet needs an amount"},
    ]
    assert [(b.offset, b.value) for b in bets.seen] == [
        (0, {"RUNNER_ID": 3, "RACE_ID": 1, "AMOUNT": 25.0}),
        (1, {"RUNNER_ID": 4, "RACE_ID": 1, "AMOUNT": 0.0}),
    ]
    assert all(b.topic == "tote_win_bets" and b.value_schema_id == 1 for b in bets.seen)
    # both records are stored: the topic is the record of what was sent
    assert await topics.end_offset("tote_win_bets") == 2
    assert await fast_store.stream_version(topic_stream("tote_win_bets")) == 1  # one batch


async def test_hooks_run_only_on_produce_and_can_be_removed(fast_store: EventStore) -> None:
    topics = await EventStoreTopics.open(fast_store)
    bets = FakeBets()
    topics.add_hook("t", bets)
    await topics.append("t", [ProducedRecord({"AMOUNT": 1})])  # derived: no hook
    assert bets.seen == []
    offsets = await topics.produce("t", [ProducedRecord({"AMOUNT": 1})])
    assert [o.offset for o in offsets] == [1]
    assert len(bets.seen) == 1
    topics.remove_hook("t", bets)
    await topics.produce("t", [ProducedRecord({"AMOUNT": 1})])
    assert len(bets.seen) == 1


async def test_a_failing_hook_flags_the_batch(fast_store: EventStore) -> None:
    topics = await EventStoreTopics.open(fast_store)

    async def broken(topic: str, records: Sequence[TopicRecord]) -> None:
        raise RuntimeError("downstream is down")

    async def miscounting(topic: str, records: Sequence[TopicRecord]) -> list[None]:
        return []

    async def fine(topic: str, records: Sequence[TopicRecord]) -> None:
        return None

    topics.add_hook("t", fine)
    assert [o.error_code for o in await topics.produce("t", [ProducedRecord(1)])] == [None]
    topics.add_hook("t", broken)
    offsets = await topics.produce("t", [ProducedRecord(1), ProducedRecord(2)])
    assert [(o.offset, o.error_code) for o in offsets] == [(1, 2), (2, 2)]
    assert "downstream is down" in (offsets[0].error or "")
    topics.remove_hook("t", broken)
    topics.add_hook("t", miscounting)
    assert [o.error_code for o in await topics.produce("t", [ProducedRecord(1)])] == [2]
    assert await topics.end_offset("t") == 4
