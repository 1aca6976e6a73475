"""Typed events: round trips through the store and upcasting of old versions."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from oddstream.eventstore import EventStore, InvalidEvent, NewEvent
from oddstream.eventstore.registry import EventRegistry, UnknownEventType, UpcastError

registry = EventRegistry()


@registry.event("BetPlaced", version=3)
class BetPlaced(msgspec.Struct, frozen=True):
    bet_id: str
    runner: int
    stake_cents: int


@registry.upcaster("BetPlaced", from_version=1)
def _v1(data: dict) -> dict:
    # v1 stored the stake in dollars as a float and called the runner "horse"
    return {"bet_id": data["id"], "horse": data["horse"], "stake_cents": round(data["stake"] * 100)}


@registry.upcaster("BetPlaced", from_version=2)
def _v2(data: dict) -> dict:
    return {"bet_id": data["bet_id"], "runner": data["horse"], "stake_cents": data["stake_cents"]}


@registry.event()
class Note(msgspec.Struct, frozen=True):
    text: str


async def test_typed_round_trip(store: EventStore) -> None:
    eid = uuid.uuid4()
    new = registry.to_new_event(BetPlaced("b-1", 4, 250), metadata={"k": "v"}, event_id=eid)
    assert (new.type, new.schema_version, new.event_id) == ("BetPlaced", 3, eid)
    await store.append("race-1", [new, registry.to_new_event(Note("hi"))])
    got = [registry.decode(e) for e in await store.read_stream("race-1")]
    assert got == [BetPlaced("b-1", 4, 250), Note("hi")]


async def test_old_versions_are_upcast_on_read(store: EventStore) -> None:
    await store.append(
        "race-1",
        [
            NewEvent("BetPlaced", {"id": "b-1", "horse": 2, "stake": 2.5}, schema_version=1),
            NewEvent("BetPlaced", {"bet_id": "b-2", "horse": 7, "stake_cents": 100}, {}, None, 2),
        ],
    )
    got = [registry.decode(e) for e in await store.read_stream("race-1")]
    assert got == [BetPlaced("b-1", 2, 250), BetPlaced("b-2", 7, 100)]


async def test_decode_errors_are_typed(store: EventStore) -> None:
    await store.append(
        "x-1",
        [
            NewEvent("Mystery", {}),
            NewEvent("BetPlaced", {"bet_id": "b", "runner": 1, "stake_cents": 1}, {}, None, 9),
            NewEvent("BetPlaced", {"bet_id": "b", "runner": "one", "stake_cents": 1}, {}, None, 3),
            NewEvent("Note", {"text": "x"}, {}, None, 0 + 1),
        ],
    )
    mystery, future, wrong, _ = await store.read_stream("x-1")
    with pytest.raises(UnknownEventType):
        registry.decode(mystery)
    with pytest.raises(UpcastError, match="newer"):
        registry.decode(future)
    with pytest.raises(InvalidEvent, match="does not fit"):
        registry.decode(wrong)


def test_registration_rules() -> None:
    r = EventRegistry()
    r.register(Note)
    with pytest.raises(ValueError, match="already registered"):
        r.register(BetPlaced, name="Note")
    with pytest.raises(TypeError):
        r.register(dict)  # type: ignore[arg-type]
    with pytest.raises(UnknownEventType):
        r.to_new_event(BetPlaced("b", 1, 1))
    assert "Note" in r
    assert "BetPlaced" not in r


class Tally(msgspec.Struct, frozen=True):
    counts: dict[int, int]


class Packed(msgspec.Struct, frozen=True, array_like=True):
    a: int


async def test_int_keyed_dicts_and_failing_upcasters(store: EventStore) -> None:
    r = EventRegistry()
    r.register(Tally, version=2)

    @r.upcaster("Tally", from_version=1)
    def _broken(data: dict) -> dict:
        return {"counts": data["missing"]}

    await store.append("t-1", [r.to_new_event(Tally({1: 2, 3: 4}))])
    await store.append("t-1", [NewEvent("Tally", {"old": 1}, schema_version=1)])
    current, old = await store.read_stream("t-1")
    assert r.decode(current) == Tally({1: 2, 3: 4})
    with pytest.raises(UpcastError, match="KeyError"):
        r.decode(old)
    with pytest.raises(TypeError, match="array_like"):
        r.register(Packed)
