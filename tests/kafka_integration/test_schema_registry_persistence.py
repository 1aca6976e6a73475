"""The registry's state lives in its stream: rebuilt on open, safe with two writers.
Runs on SQLite and PostgreSQL (the shared ``store`` fixture)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from oddstream.eventstore import EventStore, NewEvent, WrongExpectedVersion
from oddstream.integrations.kafka.avro_compatibility import Level
from oddstream.integrations.kafka.errors import ConfluentError
from oddstream.integrations.kafka.schema_registry import DEFAULT_STREAM, LATEST, SchemaRegistry

from .conftest import record_schema


def schema(n: int, *extra: str) -> str:
    fields = [{"name": "a", "type": "int"}]
    fields += [{"name": f, "type": "int", "default": n} for f in extra]
    return record_schema(f"R{n}", *fields)


async def snapshot(registry: SchemaRegistry) -> dict[str, object]:
    out: dict[str, object] = {"global": (await registry.get_level()).value}
    for subject in await registry.subjects(deleted=True):
        versions = await registry.versions(subject, deleted=True)
        out[subject] = [
            (v.version, v.id, v.schema)
            for v in [await registry.get_version(subject, n, deleted=True) for n in versions]
        ]
        out[f"{subject} live"] = await registry.subjects(prefix=subject) == [subject]
        try:
            out[f"{subject} level"] = (await registry.get_level(subject)).value
        except ConfluentError:
            out[f"{subject} level"] = None
    return out


async def test_state_is_rebuilt_from_the_stream(store_factory) -> None:
    store: EventStore = await store_factory()
    try:
        registry = await SchemaRegistry.open(store)
        assert await registry.register("a", schema(1)) == 1
        assert (
            await registry.register(
                "a",
                record_schema(
                    "R1", {"name": "a", "type": "int"}, {"name": "b", "type": "int", "default": 0}
                ),
            )
            == 2
        )
        assert await registry.register("b", schema(1)) == 1
        assert await registry.register("c", schema(3)) == 3
        await registry.set_level(None, "FORWARD")
        await registry.set_level("b", "none")
        await registry.delete_version("a", 1)
        await registry.delete_subject("c")
        await registry.delete_subject("c", permanent=True)
        before = await snapshot(registry)
        version = registry.version
    finally:
        await store.close()

    reopened = await store_factory()
    try:
        again = await SchemaRegistry.open(reopened)
        assert again.version == version
        assert await snapshot(again) == before
        assert before["global"] == "FORWARD"
        assert before["b level"] == "NONE"
        assert "c" not in before
        # ids keep counting after the rebuild, and known schemas keep theirs
        assert await again.register("d", schema(3)) == 3
        assert await again.register("e", schema(9)) == 4
        assert (await again.schema(3)).text == (await again.get_version("d", LATEST)).schema
    finally:
        await reopened.close()


async def test_each_change_is_one_event_with_its_data(store: EventStore) -> None:
    registry = await SchemaRegistry.open(store)
    await registry.register("s", schema(1))
    await registry.register("s", schema(1))  # nothing new
    await registry.set_level("s", "FULL")
    await registry.set_level("s", "FULL")  # nothing new
    await registry.delete_version("s", LATEST)
    await registry.delete_subject("s", permanent=True)
    events = await store.read_stream(DEFAULT_STREAM)
    assert [e.type for e in events] == [
        "SchemaRegistered",
        "CompatibilitySet",
        "SchemaVersionDeleted",
        "SubjectDeleted",
    ]
    assert dict(events[0].data) == {
        "subject": "s",
        "version": 1,
        "id": 1,
        "schemaType": "AVRO",
        "schema": events[0].data["schema"],
    }
    assert dict(events[1].data) == {"subject": "s", "compatibility": "FULL"}
    assert dict(events[3].data) == {"subject": "s", "versions": [1], "permanent": True}


async def test_two_registries_never_hand_out_one_id_twice(store_factory) -> None:
    stores = [await store_factory(), await store_factory()]
    try:
        one, two = [await SchemaRegistry.open(s) for s in stores]
        conflicts = [count_conflicts(s) for s in stores]
        # both registries race on the same subjects and on new schemas
        jobs = []
        for n in range(12):
            for registry in (one, two):
                jobs.append(registry.register(f"subject-{n % 3}", schema(n)))
                jobs.append(registry.register(f"other-{n}", schema(100 + n)))
        statuses = await asyncio.gather(*[_ignore_incompatible(j) for j in jobs])
        assert set(statuses) <= {None, 409}

        assert sum(len(c) for c in conflicts) > 0, "the race was not exercised"
        await one.refresh()
        await two.refresh()
        assert one.version == two.version
        assert await snapshot(one) == await snapshot(two)
        # every distinct schema has exactly one id, ids are 1..n without gaps
        texts: dict[int, str] = {}
        for subject in await one.subjects():
            for version in await one.versions(subject):
                found = await one.get_version(subject, version)
                assert texts.setdefault(found.id, found.schema) == found.schema
        assert len(set(texts.values())) == len(texts)
        assert sorted(texts) == list(range(1, len(texts) + 1))
        # every subject's versions are 1..n
        for subject in await one.subjects():
            assert await one.versions(subject) == list(
                range(1, len(await one.versions(subject)) + 1)
            )
    finally:
        for s in stores:
            await s.close()


def count_conflicts(store: EventStore) -> list[WrongExpectedVersion]:
    """Record every expected-version conflict the store raises."""
    seen: list[WrongExpectedVersion] = []
    append = store.append

    async def counting(*args: Any, **kwargs: Any) -> Any:
        try:
            return await append(*args, **kwargs)
        except WrongExpectedVersion as exc:
            seen.append(exc)
            raise

    store.append = counting  # type: ignore[method-assign]
    return seen


async def _ignore_incompatible(job) -> int | None:
    """The job's status: ``None`` if it succeeded, 409 when the schema was refused (R0
    then R3 in one subject is a rename: incompatible); anything else fails the test."""
    try:
        await job
    except ConfluentError as exc:
        return exc.status
    return None


async def test_a_stale_registry_catches_up_before_writing(store_factory) -> None:
    stores = [await store_factory(), await store_factory()]
    try:
        one, two = [await SchemaRegistry.open(s) for s in stores]
        assert await one.register("x", schema(1)) == 1
        # ``two`` has not seen it, but answers from the stream, and cannot reuse id 1
        assert await two.register("y", schema(2)) == 2
        assert (await two.get_version("x", 1)).id == 1
        assert (await one.schema(2)).id == 2
        await two.set_level("x", "NONE")
        assert await one.get_level("x") is Level.NONE
    finally:
        for s in stores:
            await s.close()


async def test_unknown_events_are_skipped(store: EventStore) -> None:
    await store.append(DEFAULT_STREAM, [NewEvent("SomethingNewer", {"x": 1})])
    registry = await SchemaRegistry.open(store)
    assert registry.version == 1
    assert await registry.register("s", schema(1)) == 1


@pytest.mark.parametrize("level", ["BACKWARD", "FULL_TRANSITIVE"])
async def test_levels_survive_reopen(store_factory, level: str) -> None:
    store = await store_factory()
    try:
        await (await SchemaRegistry.open(store)).set_level(None, level)
    finally:
        await store.close()
    store = await store_factory()
    try:
        assert (await (await SchemaRegistry.open(store)).get_level()).value == level
    finally:
        await store.close()
