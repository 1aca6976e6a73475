"""The event store's rules, checked identically against every adapter."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from oddstream.eventstore import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    CheckpointConflict,
    DuplicateEventId,
    EventStore,
    FollowerWake,
    InvalidEvent,
    NewEvent,
    ProjectionFailed,
    SqlStatement,
    StoreClosed,
    StreamAppend,
    WrongExpectedVersion,
)


def ev(n: int = 0, **kw) -> NewEvent:
    return NewEvent(kw.pop("type", "Happened"), {"n": n}, **kw)


def evs(count: int, start: int = 0) -> list[NewEvent]:
    return [ev(start + i) for i in range(count)]


# ----------------------------------------------------------------------------- appends


async def test_first_append_creates_stream(store: EventStore) -> None:
    result = await store.append("order-1", evs(3), NO_STREAM)
    assert (result.version, result.first_position, result.last_position) == (3, 1, 3)
    assert list(result.positions) == [1, 2, 3]
    assert not result.idempotent_retry
    assert await store.stream_version("order-1") == 3
    assert await store.head_position() == 3


async def test_versions_and_positions_across_streams(store: EventStore) -> None:
    await store.append("a-1", evs(2))
    r = await store.append("b-1", evs(1))
    assert (r.version, r.first_position) == (1, 3)
    r = await store.append("a-1", evs(1), 2)
    assert (r.version, r.first_position) == (3, 4)
    stored = await store.read_stream("a-1")
    assert [e.version for e in stored] == [1, 2, 3]
    assert [e.position for e in stored] == [1, 2, 4]


@pytest.mark.parametrize(
    ("setup", "expected", "actual"),
    [
        (0, 1, 0),  # exact on a missing stream
        (2, 1, 2),  # exact, stale
        (2, 3, 2),  # exact, ahead
        (2, NO_STREAM, 2),
        (0, STREAM_EXISTS, 0),
    ],
)
async def test_wrong_expected_version_names_both_and_writes_nothing(
    store: EventStore, setup: int, expected, actual: int
) -> None:
    if setup:
        await store.append("s-1", evs(setup))
    head = await store.head_position()
    with pytest.raises(WrongExpectedVersion) as info:
        await store.append("s-1", evs(2), expected)
    assert info.value.expected == expected
    assert info.value.actual == actual
    assert info.value.stream_id == "s-1"
    assert str(expected) in str(info.value)
    assert await store.head_position() == head
    assert await store.stream_version("s-1") == setup


async def test_expected_version_forms_that_succeed(store: EventStore) -> None:
    assert (await store.append("s-1", evs(1), 0)).version == 1  # 0 means "no stream yet"
    assert (await store.append("s-1", evs(1), STREAM_EXISTS)).version == 2
    assert (await store.append("s-1", evs(1), ANY)).version == 3
    assert (await store.append("s-1", evs(1), 3)).version == 4
    assert (await store.append("s-2", evs(1), ANY)).version == 1


async def test_envelope_round_trip(store: EventStore) -> None:
    eid = uuid.uuid4()
    before = datetime.now(UTC) - timedelta(seconds=5)
    data = {"amount": 1250, "nested": {"list": [1, "two", None, True]}, "text": "é ü 漢"}
    meta = {"correlation_id": "corr-1", "causation_id": "cause-1", "who": "tester"}
    await store.append(
        "bet-9",
        [NewEvent("BetPlaced", data, meta, event_id=eid, schema_version=3)],
        NO_STREAM,
    )
    (got,) = await store.read_stream("bet-9")
    assert got.event_id == eid
    assert got.type == "BetPlaced"
    assert got.schema_version == 3
    assert got.data == data
    assert got.metadata == meta
    assert got.correlation_id == "corr-1"
    assert got.causation_id == "cause-1"
    assert (got.stream_id, got.version, got.position) == ("bet-9", 1, 1)
    assert got.recorded_at.tzinfo is not None
    assert before <= got.recorded_at <= datetime.now(UTC) + timedelta(seconds=5)
    as_dict = got.to_dict()
    assert as_dict["event_id"] == str(eid)
    assert as_dict["data"] == data


async def test_generated_event_ids_are_unique_and_time_ordered(store: EventStore) -> None:
    await store.append("s-1", evs(50))
    ids = [e.event_id for e in await store.read_stream("s-1")]
    assert len(set(ids)) == 50
    assert all(i.version == 7 for i in ids)


# ----------------------------------------------------------------------------- idempotence


@pytest.mark.parametrize("expected", [NO_STREAM, 0, ANY])
async def test_retry_with_same_ids_returns_original_result(store: EventStore, expected) -> None:
    batch = [ev(i, event_id=uuid.uuid4()) for i in range(3)]
    first = await store.append("s-1", batch, expected)
    await store.append("other-1", evs(2))
    again = await store.append("s-1", batch, expected)
    assert again.idempotent_retry
    assert (again.version, again.first_position, again.last_position) == (
        first.version,
        first.first_position,
        first.last_position,
    )
    assert await store.stream_version("s-1") == 3
    assert await store.head_position() == 5


async def test_retry_after_stream_moved_on_is_still_idempotent(store: EventStore) -> None:
    await store.append("s-1", evs(2))
    batch = [ev(9, event_id=uuid.uuid4())]
    first = await store.append("s-1", batch, 2)
    await store.append("s-1", evs(3), 3)
    again = await store.append("s-1", batch, 2)
    assert again.idempotent_retry
    assert again.version == first.version == 3


async def test_stored_ids_at_other_versions_are_duplicates(store: EventStore) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    await store.append("s-1", [ev(1, event_id=a), ev(2, event_id=b)], NO_STREAM)
    for expected in (2, 5):
        with pytest.raises(DuplicateEventId, match=r"versions 1\.\.2, not from") as info:
            await store.append("s-1", [ev(1, event_id=a), ev(2, event_id=b)], expected)
        assert info.value.event_id == a
    assert await store.stream_version("s-1") == 2


async def test_id_stored_in_another_stream_is_rejected(store: EventStore) -> None:
    eid = uuid.uuid4()
    await store.append("s-1", [ev(1, event_id=eid)])
    head = await store.head_position()
    with pytest.raises(DuplicateEventId) as info:
        await store.append("s-2", [ev(1, event_id=eid)])
    assert info.value.stream_id == "s-2"
    assert await store.head_position() == head


async def test_partly_stored_append_is_rejected(store: EventStore) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    await store.append("s-1", [ev(1, event_id=a)])
    with pytest.raises(DuplicateEventId):
        await store.append("s-1", [ev(1, event_id=a), ev(2, event_id=b)])
    assert await store.stream_version("s-1") == 1


async def test_ids_in_another_order_are_rejected(store: EventStore) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    await store.append("s-1", [ev(1, event_id=a), ev(2, event_id=b)])
    with pytest.raises(DuplicateEventId):
        await store.append("s-1", [ev(2, event_id=b), ev(1, event_id=a)])


async def test_same_id_twice_in_one_append_is_invalid(store: EventStore) -> None:
    a = uuid.uuid4()
    with pytest.raises(InvalidEvent):
        await store.append("s-1", [ev(1, event_id=a), ev(2, event_id=a)])


async def test_concurrent_retries_in_one_group_write_once(store: EventStore) -> None:
    batch = [ev(i, event_id=uuid.uuid4()) for i in range(2)]
    results = await asyncio.gather(*(store.append("s-1", batch, ANY) for _ in range(5)))
    assert sum(not r.idempotent_retry for r in results) == 1
    assert {r.first_position for r in results} == {1}
    assert await store.head_position() == 2


# ----------------------------------------------------------------------------- multi-stream


async def test_multi_stream_append_is_atomic(store: EventStore) -> None:
    await store.append("wallet-1", evs(1))
    results = await store.append_multi(
        [
            StreamAppend("race-1", evs(2), NO_STREAM),
            StreamAppend("wallet-1", evs(1), 1),
        ]
    )
    assert [(r.stream_id, r.version) for r in results] == [("race-1", 2), ("wallet-1", 2)]
    assert results[0].last_position + 1 == results[1].first_position
    with pytest.raises(WrongExpectedVersion) as info:
        await store.append_multi(
            [
                StreamAppend("race-1", evs(1), 2),
                StreamAppend("wallet-1", evs(1), 1),  # stale
            ]
        )
    assert info.value.stream_id == "wallet-1"
    assert await store.stream_version("race-1") == 2
    assert await store.head_position() == 4


async def test_multi_stream_retry_is_idempotent(store: EventStore) -> None:
    parts = [
        StreamAppend("a-1", [ev(1, event_id=uuid.uuid4())], NO_STREAM),
        StreamAppend("b-1", [ev(2, event_id=uuid.uuid4())], NO_STREAM),
    ]
    first = await store.append_multi(parts)
    again = await store.append_multi(parts)
    assert all(r.idempotent_retry for r in again)
    assert [r.first_position for r in again] == [r.first_position for r in first]
    assert await store.head_position() == 2


async def test_multi_stream_with_one_part_already_stored_is_rejected(store: EventStore) -> None:
    stored = StreamAppend("a-1", [ev(1, event_id=uuid.uuid4())])
    await store.append_multi([stored])
    with pytest.raises(DuplicateEventId):
        await store.append_multi([stored, StreamAppend("b-1", evs(1))])
    assert await store.stream_version("b-1") == 0


async def test_multi_stream_rejects_the_same_stream_twice(store: EventStore) -> None:
    with pytest.raises(InvalidEvent):
        await store.append_multi([StreamAppend("a-1", evs(1)), StreamAppend("a-1", evs(1))])


async def test_group_members_fail_on_their_own(store: EventStore) -> None:
    await store.append("s-1", evs(1))
    outcomes = await asyncio.gather(
        store.append("s-2", evs(1)),
        store.append("s-1", evs(1), 5),  # wrong version
        store.append("s-3", evs(2), NO_STREAM),
        store.append("s-3", evs(1), NO_STREAM),  # loses to the previous one
        return_exceptions=True,
    )
    assert not isinstance(outcomes[0], Exception)
    assert isinstance(outcomes[1], WrongExpectedVersion)
    assert not isinstance(outcomes[2], Exception)
    assert isinstance(outcomes[3], WrongExpectedVersion)
    assert outcomes[3].actual == 2
    positions = await store.read_all()
    assert [e.position for e in positions] == [1, 2, 3, 4]


# ----------------------------------------------------------------------------- many appends


async def test_append_many_appends_each_on_its_own(store: EventStore) -> None:
    """A conflict, a duplicate id and bad input fail their own append only; the others
    are stored exactly once, in the order given, and answered as if appended alone."""
    await store.append("s-1", evs(2))
    taken = uuid.uuid4()
    await store.append("x-1", [ev(0, event_id=taken)])
    outcomes = await store.append_many(
        [
            StreamAppend("s-2", evs(2), NO_STREAM),
            StreamAppend("s-1", evs(1), 1),  # stale: s-1 is at 2
            StreamAppend("s-3", [ev(5, event_id=taken)]),  # the id is stored in x-1
            StreamAppend("s-4", [NewEvent("", {})]),  # invalid
            StreamAppend("s-1", evs(1, start=10), 2),
        ]
    )
    assert [type(o).__name__ for o in outcomes] == [
        "AppendResult",
        "WrongExpectedVersion",
        "DuplicateEventId",
        "InvalidEvent",
        "AppendResult",
    ]
    first, stale, _, _, last = outcomes
    assert isinstance(first, AppendResult)
    assert isinstance(last, AppendResult)
    assert (first.stream_id, first.version, first.first_position, first.last_position) == (
        "s-2",
        2,
        4,
        5,
    )
    assert (last.stream_id, last.version, last.first_position) == ("s-1", 3, 6)
    assert isinstance(stale, WrongExpectedVersion)
    assert stale.actual == 2
    stored = await store.read_all()
    assert [(e.stream_id, e.version, e.position) for e in stored[3:]] == [
        ("s-2", 1, 4),
        ("s-2", 2, 5),
        ("s-1", 3, 6),
    ]
    assert [e.data["n"] for e in stored[3:]] == [0, 1, 10]
    assert await store.stream_version("s-3") == 0
    assert await store.stream_version("s-4") == 0


async def test_append_many_sees_its_own_earlier_appends(store: EventStore) -> None:
    """Two appends to one stream in one call: the second is checked against the first."""
    outcomes = await store.append_many(
        [
            StreamAppend("s-1", evs(1), NO_STREAM),
            StreamAppend("s-1", evs(1), NO_STREAM),  # loses to the first
            StreamAppend("s-1", evs(2), 1),
        ]
    )
    assert isinstance(outcomes[0], AppendResult)
    assert isinstance(outcomes[1], WrongExpectedVersion)
    assert outcomes[1].actual == 1
    assert isinstance(outcomes[2], AppendResult)
    assert outcomes[2].version == 3
    assert await store.head_position() == 3


async def test_append_many_retries_are_idempotent_per_append(store: EventStore) -> None:
    a = StreamAppend("a-1", [ev(1, event_id=uuid.uuid4())], NO_STREAM)
    b = StreamAppend("b-1", [ev(2, event_id=uuid.uuid4())], NO_STREAM)
    (first,) = await store.append_many([a])
    again = await store.append_many([a, b])
    assert isinstance(again[0], AppendResult)
    assert again[0].idempotent_retry
    assert again[0].first_position == first.first_position  # type: ignore[union-attr]
    assert isinstance(again[1], AppendResult)
    assert not again[1].idempotent_retry
    assert await store.head_position() == 2


async def test_append_many_shares_groups_with_other_appends(store: EventStore) -> None:
    """Concurrent with single appends: positions stay dense and every answer matches
    what is stored."""
    calls = [
        store.append_many([StreamAppend(f"m{c}-{i}", evs(2)) for i in range(20)]) for c in range(3)
    ]
    singles = [store.append(f"one-{i}", evs(1)) for i in range(10)]
    *many, _ = await asyncio.gather(*calls, asyncio.gather(*singles))
    stored = {(e.stream_id, e.version): e.position for e in await store.read_all(limit=10_000)}
    assert sorted(stored.values()) == list(range(1, 131))
    for outcomes in many:
        for result in outcomes:
            assert isinstance(result, AppendResult)
            assert stored[(result.stream_id, 1)] == result.first_position
            assert stored[(result.stream_id, 2)] == result.last_position


async def test_append_many_of_nothing_and_on_a_closed_store(store_factory) -> None:
    s = await store_factory()
    assert await s.append_many([]) == []
    await s.close()
    with pytest.raises(StoreClosed):
        await s.append_many([StreamAppend("s-1", evs(1))])


async def test_read_requests_many_answers_each_stream(store: EventStore) -> None:
    def tagged(rid: str, n: int) -> NewEvent:
        return NewEvent("T", {"n": n}, metadata={"request_id": rid})

    await store.append("w-1", [tagged("a", 1), tagged("a", 2), tagged("b", 3)])
    await store.append("w-2", [tagged("a", 4), tagged("c", 5)])
    await store.append("w-3", [tagged("z", 6)])
    found = await store.read_requests_many({"w-1": ["a", "x"], "w-2": ["c", "a"], "w-3": ["q"]})
    assert sorted(found) == ["w-1", "w-2"]  # w-3 holds none of its ids
    assert [e.data["n"] for e in found["w-1"]] == [1, 2]  # in version order
    assert [e.data["n"] for e in found["w-2"]] == [4, 5]
    assert found["w-1"] == await store.read_requests("w-1", ["a", "x"])
    assert await store.read_requests_many({}) == {}
    assert await store.read_requests_many({"w-1": []}) == {}
    with pytest.raises(InvalidEvent):
        await store.read_requests_many({"w-1": [""]})
    with pytest.raises(InvalidEvent):
        await store.read_requests_many({"": ["a"]})


# ----------------------------------------------------------------------------- reads


async def test_read_stream_directions_and_limits(store: EventStore) -> None:
    await store.append("s-1", evs(10))
    await store.append("s-2", evs(1))
    fwd = await store.read_stream("s-1", from_version=4, limit=3)
    assert [e.version for e in fwd] == [4, 5, 6]
    back = await store.read_stream("s-1", backwards=True, limit=3)
    assert [e.version for e in back] == [10, 9, 8]
    back_from = await store.read_stream("s-1", backwards=True, from_version=2)
    assert [e.version for e in back_from] == [2, 1]
    assert [e.data["n"] for e in await store.read_stream("s-1")] == list(range(10))
    assert await store.read_stream("missing-1") == []
    assert await store.stream_version("missing-1") == 0


async def test_read_all_pages_and_filters(store: EventStore) -> None:
    await store.append("race-1", [ev(1, type="BetPlaced"), ev(2, type="OddsChanged")])
    await store.append("wallet-1", [ev(3, type="Credited")])
    await store.append("race-2", [ev(4, type="BetPlaced")])
    await store.append("racecourse-1", [ev(5, type="Opened")])
    everything = await store.read_all()
    assert [e.position for e in everything] == [1, 2, 3, 4, 5]
    assert [e.position for e in await store.read_all(after=2, limit=2)] == [3, 4]
    assert [e.stream_id for e in await store.read_all(category="race")] == [
        "race-1",
        "race-1",
        "race-2",
    ]
    assert [e.position for e in await store.read_all(stream_prefix="race")] == [1, 2, 4, 5]
    assert [e.position for e in await store.read_all(types=["BetPlaced"])] == [1, 4]
    both = await store.read_all(category="race", types={"OddsChanged", "Opened"})
    assert [e.position for e in both] == [2]
    assert await store.read_all(after=5) == []


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("stream_id", "events", "expected", "message"),
    [
        ("", [ev()], ANY, "empty"),
        ("x" * 201, [ev()], ANY, "limit"),
        ("bad\nid", [ev()], ANY, "control"),
        ("bad\x00id", [ev()], ANY, "control"),
        (" padded", [ev()], ANY, "white space"),
        (42, [ev()], ANY, "string"),
        ("s-1", [], ANY, "no events"),
        ("s-1", [{"type": "x"}], ANY, "NewEvent"),
        ("s-1", [NewEvent("T", ["not", "an", "object"])], ANY, "JSON object"),
        ("s-1", [NewEvent("T", {"x": object()})], ANY, "JSON-serializable"),
        ("s-1", [NewEvent("T", {1: "non-string key"})], ANY, "JSON-serializable"),
        ("s-1", [NewEvent("T", {}, metadata="nope")], ANY, "metadata"),
        ("s-1", [NewEvent("", {})], ANY, "event type"),
        ("s-1", [NewEvent("T\t", {})], ANY, "event type"),
        ("s-1", [NewEvent("T", {}, schema_version=0)], ANY, "schema_version"),
        ("s-1", [NewEvent("T", {}, event_id="not-a-uuid")], ANY, "UUID"),
        ("s-1", [ev()], -1, "negative"),
        ("s-1", [ev()], "any", "expected version"),
        ("s-1", [ev()], True, "expected version"),
        ("s-1", [ev()], None, "expected version"),
    ],
)
async def test_bad_input_is_rejected_and_nothing_is_written(
    store: EventStore, stream_id, events, expected, message: str
) -> None:
    await store.append("seed-1", evs(1))
    with pytest.raises(InvalidEvent, match=message):
        await store.append(stream_id, events, expected)
    assert await store.head_position() == 1


async def test_oversized_event_is_rejected(store: EventStore) -> None:
    with pytest.raises(InvalidEvent, match="limit"):
        await store.append("s-1", [NewEvent("T", {"blob": "x" * (1 << 20)})])
    assert await store.head_position() == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.read_all(after=-1),
        lambda s: s.read_all(limit=0),
        lambda s: s.read_all(category="a-b"),
        lambda s: s.read_all(category="a", stream_prefix="a-"),
        lambda s: s.read_all(types=[]),
        lambda s: s.read_stream("", limit=1),
        lambda s: s.read_stream("s-1", limit=-5),
        lambda s: s.get_checkpoint(""),
        lambda s: s.save_checkpoint("p", -1),
    ],
)
async def test_bad_read_arguments_raise_invalid_event(store: EventStore, call) -> None:
    with pytest.raises(InvalidEvent):
        await call(store)


# ----------------------------------------------------------------------------- subscriptions


async def _take(iterator, count: int, timeout: float = 10.0) -> list:
    got = []
    async with asyncio.timeout(timeout):
        async for item in iterator:
            got.append(item)
            if len(got) == count:
                break
    return got


async def test_subscribe_all_catches_up_then_goes_live(store: EventStore) -> None:
    await store.append("s-1", evs(5))
    sub = store.subscribe_all(after=2, batch_size=2)
    reader = asyncio.create_task(_take(sub, 8))
    await asyncio.sleep(0.05)
    await store.append("s-2", evs(3))
    await asyncio.sleep(0.05)
    await store.append("s-1", evs(2), 5)
    got = await reader
    assert [e.position for e in got] == list(range(3, 11))


async def test_subscribe_all_with_filter_skips_other_events(store: EventStore) -> None:
    sub = store.subscribe_all(category="race", types=["BetPlaced"], batch_size=3)
    reader = asyncio.create_task(_take(sub, 3))
    for i in range(10):
        await store.append(f"wallet-{i}", [ev(i, type="Credited")])
        await store.append(f"race-{i % 2}", [ev(i, type="BetPlaced" if i % 3 == 0 else "X")])
    got = await reader
    assert [e.data["n"] for e in got] == [0, 3, 6]


async def _pages(
    sub, stop_at: int, out: list[tuple[float, int]], got: asyncio.Event | None = None
) -> None:
    loop = asyncio.get_running_loop()
    async for page in sub:
        out.append((loop.time(), page.position))
        if got is not None:
            got.set()
        if page.position >= stop_at:
            return


async def test_a_paced_follower_reads_many_commits_in_one_page(store_factory) -> None:
    """Under a stream of another process's commits a follower with a pace reads a page
    per pace, not per commit; nothing is skipped (the last page reaches the last
    commit). (SQLite has no wake-ups across processes: a short re-check stands in.)"""
    s = await store_factory(follow_pace=0.2, idle_recheck=0.005)
    other = await store_factory()
    try:
        pages: list[tuple[float, int]] = []
        reader = asyncio.create_task(_pages(s.subscribe_pages(), 40, pages))
        await asyncio.sleep(0.05)  # caught up at 0
        for i in range(40):
            await other.append(f"s-{i}", [ev(i)])
            await asyncio.sleep(0.005)
        await asyncio.wait_for(reader, 10)
        assert pages[-1][1] == 40
        # 40 commits over >= 0.2 s: one page at once, then one per 0.2 s
        assert len(pages) <= 5, pages
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(pages)]
        assert all(gap >= 0.15 for gap in gaps), gaps
    finally:
        await other.close()
        await s.close()


async def test_a_paced_follower_reads_its_own_process_commits_at_once(store_factory) -> None:
    """A commit of the follower's own process is read at once, even right after a
    read: a client reading right after its write finds it."""
    s = await store_factory(follow_pace=1.0)
    try:
        loop = asyncio.get_running_loop()
        pages: list[tuple[float, int]] = []
        reader = asyncio.create_task(_pages(s.subscribe_pages(), 3, pages))
        started = loop.time()
        for i in range(3):
            await s.append(f"s-{i}", [ev(i)])
            await asyncio.sleep(0.01)
        await asyncio.wait_for(reader, 5)
        assert pages[-1][1] == 3
        assert pages[-1][0] - started < 0.5  # three reads inside one pace
    finally:
        await s.close()


async def test_a_paced_follower_reads_at_once_after_a_quiet_spell(store_factory) -> None:
    """After a quiet spell a follower woken by another process's commit reads at once,
    not a pace later."""
    s = await store_factory(follow_pace=0.5, idle_recheck=0.005)
    other = await store_factory()
    try:
        loop = asyncio.get_running_loop()
        pages: list[tuple[float, int]] = []
        reader = asyncio.create_task(_pages(s.subscribe_pages(), 1, pages))
        await asyncio.sleep(0.6)  # longer than the pace since its last read
        appended = loop.time()
        await other.append("s-1", [ev()])
        await asyncio.wait_for(reader, 5)
        waited = pages[-1][0] - appended
        assert waited < 0.25, waited  # well inside the pace
    finally:
        await other.close()
        await s.close()


async def test_hurry_followers_cuts_a_paced_wait_short(store_factory) -> None:
    s = await store_factory(follow_pace=1.0, idle_recheck=0.005)
    other = await store_factory()
    try:
        loop = asyncio.get_running_loop()
        pages: list[tuple[float, int]] = []
        got = asyncio.Event()
        reader = asyncio.create_task(_pages(s.subscribe_pages(), 2, pages, got))
        await other.append("s-1", [ev()])
        await asyncio.wait_for(got.wait(), 5)  # read at once: the first that found one
        await other.append("s-2", [ev()])  # unhurried, read a pace (1 s) after that one
        await asyncio.sleep(0.05)
        asked = loop.time()
        s.hurry_followers()
        await asyncio.wait_for(reader, 5)
        assert pages[-1][1] == 2
        assert pages[-1][0] - asked < 0.5
    finally:
        await other.close()
        await s.close()


async def test_a_follower_wake_ends_that_subscription_s_pace_only(store_factory) -> None:
    """A hint beyond a follower's position (the velocity bus's high tier) ends that
    subscription's pace, not another's: hurrying every follower would undo the pacing.
    Hints coalesce (one pending wake-up at most) and one at or below the position read
    wakes nothing."""
    s = await store_factory(follow_pace=1.0, idle_recheck=0.005)
    other = await store_factory()
    try:
        loop = asyncio.get_running_loop()
        woken: list[tuple[float, int]] = []
        paced: list[tuple[float, int]] = []
        got_woken, got_paced = asyncio.Event(), asyncio.Event()
        wake = FollowerWake()
        reader = asyncio.create_task(_pages(s.subscribe_pages(wake=wake), 2, woken, got_woken))
        control = asyncio.create_task(_pages(s.subscribe_pages(), 2, paced, got_paced))
        await other.append("s-1", [ev()])
        # both read it at once (the first that found one); now both are paced
        await asyncio.wait_for(asyncio.gather(got_woken.wait(), got_paced.wait()), 5)
        assert wake.position == 1
        assert not wake.hint(1)  # read already: nothing to wake for
        await other.append("s-2", [ev()])
        await asyncio.sleep(0.05)
        asked = loop.time()
        assert wake.hint(2)
        assert not wake.hint(2)  # coalesced: a wake-up is pending
        await asyncio.wait_for(reader, 5)
        assert woken[-1][1] == 2
        assert woken[-1][0] - asked < 0.5  # well inside the pace
        # the other subscription was not woken: still at 1, a pace after its read
        assert paced[-1][1] == 1
        await asyncio.wait_for(control, 5)
        assert paced[-1][1] == 2
        assert paced[-1][0] - paced[0][0] >= 0.8, paced
        assert (wake.hints, wake.wakes) == (3, 1)
    finally:
        await other.close()
        await s.close()


async def test_a_follower_wake_hinted_before_the_commit_wakes_it_is_kept(
    store_factory,
) -> None:
    """A hint that comes before the store's own wake-up (the bus beat LISTEN/NOTIFY) is
    kept: the read that wake-up brings does not wait for the pace, and takes the hint
    (one beyond the head, a wrong position, costs that one read and is forgotten)."""
    s = await store_factory(follow_pace=1.0, idle_recheck=0.005)
    other = await store_factory()
    try:
        wake = FollowerWake()
        pages: list[tuple[float, int]] = []
        got = asyncio.Event()
        reader = asyncio.create_task(_pages(s.subscribe_pages(wake=wake), 2, pages, got))
        await other.append("s-1", [ev()])
        await asyncio.wait_for(got.wait(), 5)
        assert wake.hint(5)  # beyond the head (a wrong position)
        assert wake.pending
        await other.append("s-2", [ev()])
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(reader, 5)
        assert pages[-1][1] == 2
        assert pages[-1][0] - started < 0.5
        assert not wake.pending  # taken by that read, not left to unpace the next ones
    finally:
        await other.close()
        await s.close()


async def test_a_follower_wake_hinted_during_a_read_is_spent_by_it_if_it_got_there(
    store_factory,
) -> None:
    """A hint that comes while the follower reads (the bus's message and the store's
    wake-up come together) is spent by that read if the read reached its position:
    kept, it would end the pace of the next read for nothing (another process's next
    commit, of any tier). One beyond what the read reached is kept for the next."""
    s = await store_factory(follow_pace=1.0, idle_recheck=0.005)
    other = await store_factory()
    try:
        wake = FollowerWake()
        # (reached, hinted): hint ``hinted`` during the read that reaches ``reached``
        during: list[tuple[int, int]] = []
        read_page = s._read_page

        async def hinting(*args, **kwargs):  # type: ignore[no-untyped-def]
            page = await read_page(*args, **kwargs)
            if during and page.scanned >= during[0][0]:
                wake.hint(during.pop(0)[1])  # the read has not returned yet
            return page

        s._read_page = hinting  # type: ignore[method-assign]
        pages: list[tuple[float, int]] = []
        got = asyncio.Event()
        reader = asyncio.create_task(_pages(s.subscribe_pages(wake=wake), 3, pages, got))
        during.append((1, 1))  # the read that finds it is hinted while it runs
        await other.append("s-1", [ev()])
        await asyncio.wait_for(got.wait(), 5)
        assert pages[-1][1] == 1
        assert not wake.pending  # spent: the next read keeps its pace
        got.clear()
        during.append((2, 5))  # beyond what the read finds (wrong, or not committed yet)
        started = asyncio.get_running_loop().time()
        await other.append("s-2", [ev()])
        await asyncio.wait_for(got.wait(), 5)
        assert pages[-1][1] == 2
        assert pages[-1][0] - started > 0.5  # read a pace after the first
        assert wake.pending  # kept for the next read
        await other.append("s-3", [ev()])
        await asyncio.wait_for(reader, 5)
        assert pages[-1][1] == 3
        assert pages[-1][0] - pages[-2][0] < 0.5  # not paced: the hint kept woke it
    finally:
        await other.close()
        await s.close()


async def test_a_subscription_in_its_paced_wait_ends_at_once_when_the_store_closes(
    store_factory,
) -> None:
    """Closing the store ends a subscription in its paced wait at once, not a pace
    (up to 1 s) later: close woke the store's wake-up waits, not the paced ones."""
    s = await store_factory(follow_pace=1.0, idle_recheck=0.005)
    other = await store_factory()
    try:
        loop = asyncio.get_running_loop()
        pages: list[tuple[float, int]] = []
        got = asyncio.Event()
        reader = asyncio.create_task(_pages(s.subscribe_pages(), 2, pages, got))
        await other.append("s-1", [ev()])
        await asyncio.wait_for(got.wait(), 5)  # read at once; the next read is paced
        await other.append("s-2", [ev()])
        await asyncio.sleep(0.1)  # woken by it (or the re-check): in its paced wait
        assert s._pacing, "the subscription is not in its paced wait"
        closed = loop.time()
        await s.close()
        await asyncio.wait_for(reader, 5)
        assert loop.time() - closed < 0.5
        assert [p for _, p in pages] == [1]
        assert not s._pacing
    finally:
        await other.close()
        await s.close()


async def test_follow_pace_out_of_range_is_refused(store_factory) -> None:
    with pytest.raises(ValueError, match="follow_pace"):
        await store_factory(follow_pace=-1)


async def test_subscribe_stream_sees_only_its_stream(store: EventStore) -> None:
    await store.append("s-1", evs(2))
    sub = store.subscribe_stream("s-1", after_version=1)
    reader = asyncio.create_task(_take(sub, 3))
    await store.append("s-2", evs(4))
    await store.append("s-1", evs(2, start=2), 2)
    got = await reader
    assert [(e.stream_id, e.version) for e in got] == [("s-1", 2), ("s-1", 3), ("s-1", 4)]


async def test_subscription_ends_when_store_closes(store_factory) -> None:
    s = await store_factory()
    sub = s.subscribe_all()
    reader = asyncio.create_task(_take(sub, 100, timeout=10))
    await asyncio.sleep(0.05)
    await s.close()
    assert await reader == []


async def test_wait_for_position(store: EventStore) -> None:
    assert not await store.wait_for_position(1, timeout=0.05)
    waiter = asyncio.create_task(store.wait_for_position(3, timeout=5))
    await asyncio.sleep(0.02)
    await store.append("s-1", evs(3))
    assert await waiter


# ----------------------------------------------------------------------------- checkpoints


async def test_checkpoints(store: EventStore) -> None:
    assert await store.get_checkpoint("board") == 0
    await store.save_checkpoint("board", 10)
    assert await store.get_checkpoint("board") == 10
    await store.save_checkpoint("board", 12, expected=10)
    with pytest.raises(CheckpointConflict) as info:
        await store.save_checkpoint("board", 15, expected=10)
    assert (info.value.expected, info.value.actual) == (10, 12)
    await store.save_checkpoint("fresh", 1, expected=0)
    assert await store.get_checkpoint("board") == 12


def _projection_sql(backend: str) -> tuple[str, str]:
    mark = "?" if backend.startswith("sqlite") else "%s"
    create = "CREATE TABLE IF NOT EXISTS proj_totals (k TEXT PRIMARY KEY, total INTEGER NOT NULL)"
    upsert = (
        f"INSERT INTO proj_totals (k, total) VALUES ({mark}, {mark}) "
        "ON CONFLICT (k) DO UPDATE SET total = proj_totals.total + excluded.total"
    )
    return create, upsert


async def test_projection_writes_and_checkpoint_commit_together(
    store: EventStore, backend: str, request: pytest.FixtureRequest
) -> None:
    create, upsert = _projection_sql(backend)
    if backend == "postgres":
        schema = request.getfixturevalue("pg_schema")
        create = create.replace("proj_totals", f"{schema}.proj_totals", 1)
        upsert = upsert.replace("INTO proj_totals", f"INTO {schema}.proj_totals")
    await store.commit_projection("totals", 0, [SqlStatement(create)])
    await store.commit_projection(
        "totals", 5, [SqlStatement(upsert, [("a", 1), ("b", 2), ("a", 3)], many=True)]
    )
    assert await store.get_checkpoint("totals") == 5
    bad = SqlStatement("INSERT INTO no_such_table VALUES (1)")
    with pytest.raises(ProjectionFailed, match="no_such_table"):
        await store.commit_projection("totals", 9, [SqlStatement(upsert, ("a", 100)), bad])
    assert await store.get_checkpoint("totals") == 5  # neither the upsert nor the move
    with pytest.raises(CheckpointConflict):
        await store.commit_projection("totals", 9, [SqlStatement(upsert, ("a", 100))], expected=4)
    await store.commit_projection("totals", 9, [SqlStatement(upsert, ("a", 10))], expected=5)
    assert await store.get_checkpoint("totals") == 9


# ----------------------------------------------------------------------------- lifecycle


async def test_closed_store_refuses_calls(store_factory) -> None:
    s = await store_factory()
    await s.append("s-1", evs(1))
    await s.close()
    with pytest.raises(StoreClosed):
        await s.append("s-1", evs(1))
    with pytest.raises(StoreClosed):
        await s.read_all()


async def test_data_survives_reopen(store_factory) -> None:
    s = await store_factory()
    await s.append("s-1", evs(3))
    await s.close()
    s = await store_factory()
    try:
        assert await s.stream_version("s-1") == 3
        r = await s.append("s-1", evs(1), 3)
        assert r.first_position == 4
    finally:
        await s.close()


async def test_pending_appends_complete_on_close(store_factory) -> None:
    s = await store_factory()
    tasks = [asyncio.create_task(s.append(f"s-{i}", evs(1))) for i in range(20)]
    await asyncio.sleep(0)
    await s.close()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(not isinstance(r, BaseException) for r in results)
    s = await store_factory()
    try:
        assert await s.head_position() == 20
    finally:
        await s.close()


async def test_sparse_matches_beyond_one_scan_window(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oddstream.eventstore import postgres

    monkeypatch.setattr(postgres, "FILTER_WINDOW", 5)
    await store.append("noise-1", evs(40))
    await store.append("race-1", [ev(1, type="BetPlaced")])
    await store.append("noise-1", evs(40))
    await store.append("race-2", [ev(2, type="BetPlaced")])
    found = await store.read_all(category="race", limit=2)
    assert [e.position for e in found] == [41, 82]
    assert [e.position for e in await store.read_all(types=["BetPlaced"], limit=1)] == [41]
    sub = store.subscribe_all(category="race", batch_size=1)
    assert [e.position for e in await _take(sub, 2)] == [41, 82]
    assert [e.position for e in await store.read_all(after=10, limit=3)] == [11, 12, 13]


async def test_scan_all_stops_at_the_head_it_started_with(store: EventStore) -> None:
    await store.append("race-1", evs(7))
    await store.append("wallet-1", evs(3))
    seen = []
    async for event in store.scan_all(after=2, batch_size=3):
        seen.append(event.position)
        if event.position == 5:
            await store.append("race-1", evs(1))  # arrives during the scan: not included
    assert seen == list(range(3, 11))
    racing = [e.position async for e in store.scan_all(category="race", batch_size=2)]
    assert racing == [1, 2, 3, 4, 5, 6, 7, 11]


async def test_snapshots_are_kept_with_their_checkpoint(store: EventStore) -> None:
    assert await store.load_snapshot("view") is None
    await store.save_snapshot("view", 3, b"\x00state at 3")
    found = await store.load_snapshot("view")
    assert found is not None
    assert (found.position, found.data) == (3, b"\x00state at 3")
    assert await store.get_checkpoint("view") == 3
    await store.save_snapshot("view", 7, b"state at 7", expected=3)  # the last replaces
    found = await store.load_snapshot("view")
    assert found is not None
    assert (found.position, found.data) == (7, b"state at 7")
    with pytest.raises(CheckpointConflict):
        await store.save_snapshot("view", 9, b"stale", expected=3)
    found = await store.load_snapshot("view")
    assert found is not None
    assert found.position == 7  # neither the data nor the checkpoint moved
    assert await store.get_checkpoint("view") == 7
    with pytest.raises(InvalidEvent):
        await store.save_snapshot("view", 9, "not bytes")  # type: ignore[arg-type]


async def test_snapshots_are_kept_in_parts(store: EventStore) -> None:
    parts = [bytes([n]) * (1000 + n) for n in range(5)]
    drawn: list[int] = []

    def lazily() -> Iterator[bytes]:
        for n, part in enumerate(parts):
            drawn.append(n)
            yield part

    await store.save_snapshot("view", 4, lazily())
    assert drawn == [0, 1, 2, 3, 4]
    found = await store.load_snapshot("view")
    assert found is not None
    assert (found.position, found.parts) == (4, tuple(parts))
    assert found.data == b"".join(parts)
    assert found.size == len(found.data)
    await store.save_snapshot("view", 5, iter([b"a", b"b"]))  # fewer parts: all replaced
    found = await store.load_snapshot("view")
    assert found is not None
    assert (found.position, found.parts) == (5, (b"a", b"b"))
    await store.save_snapshot("view", 6, [])  # no parts reads back as one empty part
    found = await store.load_snapshot("view")
    assert found is not None
    assert (found.position, found.parts) == (6, (b"",))


async def test_a_snapshot_whose_parts_fail_keeps_the_last(store: EventStore) -> None:
    await store.save_snapshot("view", 3, [b"one", b"two"])

    def failing() -> Iterator[bytes]:
        yield b"new one"
        raise RuntimeError("the state could not be encoded")

    with pytest.raises(RuntimeError, match="encoded"):
        await store.save_snapshot("view", 8, failing())
    with pytest.raises(InvalidEvent):
        await store.save_snapshot("view", 8, [b"new one", "not bytes"])  # type: ignore[list-item]
    found = await store.load_snapshot("view")
    assert found is not None
    assert (found.position, found.parts) == (3, (b"one", b"two"))
    assert await store.get_checkpoint("view") == 3
    await store.save_snapshot("view", 9, [b"after"])  # nothing was left locked
    assert await store.get_checkpoint("view") == 9


async def test_concurrent_snapshots_never_mix_their_parts(store_factory) -> None:
    first, second = await store_factory(), await store_factory()
    try:
        for round_ in range(3):
            await asyncio.gather(
                first.save_snapshot("view", 10 + round_, [b"a%d" % n for n in range(40)]),
                second.save_snapshot("view", 20 + round_, [b"b%d" % n for n in range(25)]),
            )
            found = await first.load_snapshot("view")
            assert found is not None
            letter = b"a" if found.position < 20 else b"b"
            count = 40 if letter == b"a" else 25
            assert found.parts == tuple(letter + b"%d" % n for n in range(count))
    finally:
        await first.close()
        await second.close()


async def test_a_snapshot_written_whole_by_an_earlier_release_is_one_part(
    store: EventStore,
) -> None:
    await store.save_snapshot("view", 2, [b"stale", b"parts"])
    # what releases before parts wrote: the whole state in the snapshot row
    if store.backend == "postgres":
        table = f'"{store.schema}".snapshots'  # type: ignore[attr-defined]
        sql = f"UPDATE {table} SET position = %s, data = %s WHERE name = %s"
    else:
        sql = "UPDATE snapshots SET position = ?, data = ? WHERE name = ?"
    await store.commit_projection("other", 1, [SqlStatement(sql, (4, b"whole state", "view"))])
    found = await store.load_snapshot("view")
    assert found is not None
    assert (found.position, found.parts) == (4, (b"whole state",))


def test_a_re_check_that_finds_nothing_does_not_spend_a_pending_wake() -> None:
    """Regression (CI, under load): a hint beyond what a read reached was kept, then an
    idle re-check that found nothing new spent it, and the hinted commit was read a
    whole pace later. A read that moves the follower nowhere now spends no wake-up."""
    wake = FollowerWake()
    wake._at = 2
    wake._reading()
    wake.hint(5)  # during the read, beyond what it reaches
    wake._read(2)
    assert wake.pending
    wake._reading()  # a re-check: nothing new
    wake._read(2)
    assert wake.pending  # still pending: the commit hinted is not read yet
    wake._reading()
    wake._read(5)  # the read that finds it spends it
    assert not wake.pending
