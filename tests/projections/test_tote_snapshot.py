"""The tote read model resumes from its snapshot: a restart does not replay the log, it
answers exactly what a replay would, and a snapshot of another format is replayed."""

from __future__ import annotations

import msgspec
import pytest

from oddstream.consumers import MemoryCheckpoint
from oddstream.eventstore import EventStore
from oddstream.projections import tote_view
from oddstream.projections.tote_view import ToteView
from oddstream.runtime.race_writer import RaceWriter
from runtime.wallet_helpers import bet, open_race, settle  # tests/ is on the path


def picture(view: ToteView) -> object:
    """Everything the view answers, as plain values."""
    races = view.races()
    return msgspec.to_builtins(
        {
            "races": [(r.race_id, r.status.value, len(r.bets)) for r in races],
            "boards": [view.board(r.race_id) for r in races],
            "bets": [view.bets_named(f"b{i}") for i in range(6)],
            "dividends": [view.dividends(r.race_id) for r in races],
            "position": view.position,
        }
    )


async def write_races(races: RaceWriter, names: list[str]) -> None:
    for n, race in enumerate(names):
        await open_race(races, race)
        for i in range(6):
            await races.execute(bet(race, f"b{i}", 1 + (i + n) % 4, 200 + 10 * i, None))


async def test_a_restart_restores_the_snapshot_and_follows_on(store: EventStore) -> None:
    races = RaceWriter(store)
    await write_races(races, ["r1", "r2", "r3"])
    await settle(races, "r1", 2)
    first = ToteView(store, keep_finished=1)
    await first.start()
    assert await first.wait_for(await store.head_position(), 5)
    await first.stop()  # snapshot at stop
    before = picture(first)

    second = ToteView(store, keep_finished=1)
    handled: list[int] = []
    apply = second.apply
    second.apply = lambda recorded: (handled.append(recorded.position), apply(recorded))[1]  # type: ignore[method-assign]
    await second.start()
    try:
        assert await second.wait_caught_up(5)
        assert handled == []  # nothing replayed
        assert picture(second) == before
        await write_races(races, ["r4"])
        await settle(races, "r2", 1)
        head = await store.head_position()
        assert await second.wait_for(head, 5)
        assert handled  # followed on from the snapshot
        replayed = ToteView(store, keep_finished=1, snapshot_every=None)
        await replayed.rebuild()
        assert picture(second) == picture(replayed)
    finally:
        await second.stop()


async def test_a_snapshot_of_another_format_is_replayed(store: EventStore) -> None:
    races = RaceWriter(store)
    await write_races(races, ["r1"])
    head = await store.head_position()
    await store.save_snapshot("tote-view", head, b"tote-view:0000000000000000\n\x90")
    view = ToteView(store)
    await view.start()
    try:
        assert await view.wait_for(head, 5)
        assert [r.race_id for r in view.races()] == ["r1"]  # from the log, not the blob
        assert len(view.bets_named("b0")) == 1
    finally:
        await view.stop()


async def test_a_restart_with_fewer_finished_races_kept_lets_the_oldest_go(
    store: EventStore,
) -> None:
    """Review: restore() kept every finished race of the snapshot, more than the
    restarted process's ``keep_finished`` (a replay would have let them go)."""
    races = RaceWriter(store)
    names = ["r1", "r2", "r3"]
    await write_races(races, names)
    for race in names:
        await settle(races, race, 1)
    first = ToteView(store, keep_finished=3)
    await first.start()
    assert await first.wait_for(await store.head_position(), 5)
    await first.stop()
    assert [r.race_id for r in first.races()] == names
    second = ToteView(store, keep_finished=1)
    await second.start()
    try:
        assert await second.wait_caught_up(5)
        replayed = ToteView(store, keep_finished=1, snapshot_every=None)
        await replayed.rebuild()
        assert [r.race_id for r in second.races()] == ["r3"]
        assert picture(second) == picture(replayed)
        assert await second.archived("r1") is not None  # still readable from its stream
    finally:
        await second.stop()


def states(view: ToteView) -> object:
    """The races' whole states (bets included) and every bet, as plain values."""
    return msgspec.to_builtins(
        {
            "races": view.races(),
            "bets": [view.bet(r.race_id, f"b{i}") for r in view.races() for i in range(6)],
        }
    )


async def started(store: EventStore) -> tuple[ToteView, list[int]]:
    """A view started on ``store`` and the positions it handled (none: restored)."""
    view = ToteView(store, keep_finished=5)
    handled: list[int] = []
    apply = view.apply
    view.apply = lambda recorded: (handled.append(recorded.position), apply(recorded))[1]  # type: ignore[method-assign]
    await view.start()
    assert await view.wait_caught_up(5)
    return view, handled


async def test_a_snapshot_in_many_parts_restores_what_a_replay_holds(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tote_view, "PART_BETS", 4)  # races of 6 bets: split across parts
    races = RaceWriter(store)
    await write_races(races, ["r1", "r2", "r3"])
    await settle(races, "r1", 2)
    first = ToteView(store, keep_finished=5)
    await first.start()
    assert await first.wait_for(await store.head_position(), 5)
    await first.stop()
    found = await store.load_snapshot("tote-view")
    assert found is not None
    assert len(found.parts) >= 5
    second, handled = await started(store)
    try:
        assert handled == []
        replayed = ToteView(store, keep_finished=5, snapshot_every=None)
        await replayed.rebuild()
        assert picture(second) == picture(first) == picture(replayed)
        assert states(second) == states(replayed)
    finally:
        await second.stop()


async def test_a_snapshot_written_whole_by_the_last_release_is_restored(
    store: EventStore,
) -> None:
    races = RaceWriter(store)
    await write_races(races, ["r1", "r2"])
    await settle(races, "r1", 2)
    replayed = ToteView(store, keep_finished=5, snapshot_every=None)
    await replayed.rebuild()
    whole = tote_view._State(  # as releases before parts encoded it
        races=replayed.races(),
        finished=["r1"],
        bets={
            r.race_id: [b for i in range(6) if (b := replayed.bet(r.race_id, f"b{i}"))]
            for r in replayed.races()
        },
        dividends={"r1": d} if (d := replayed.dividends("r1")) else {},
    )
    data = tote_view._WHOLE_HEADER + msgspec.msgpack.encode(whole)
    assert data.startswith(b"tote-view:dbb7223883f24623\n")  # what that release wrote
    await store.save_snapshot("tote-view", replayed.position, data)
    view, handled = await started(store)
    try:
        assert handled == []
        assert picture(view) == picture(replayed)
        assert states(view) == states(replayed)
    finally:
        await view.stop()


async def test_a_damaged_part_is_replayed(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tote_view, "PART_BETS", 4)
    races = RaceWriter(store)
    await write_races(races, ["r1", "r2"])
    first = ToteView(store)
    await first.start()
    assert await first.wait_for(await store.head_position(), 5)
    await first.stop()
    found = await store.load_snapshot("tote-view")
    assert found is not None
    assert len(found.parts) >= 3
    for damage in (  # a part cut short; a race's first part left out; the last left out
        [*found.parts[:2], found.parts[2][:-3], *found.parts[3:]],
        [found.parts[0], *found.parts[2:]],
        list(found.parts[:-1]),
    ):
        await store.save_snapshot("tote-view", found.position, damage)
        view, handled = await started(store)
        try:
            assert handled  # replayed
            assert picture(view) == picture(first)
        finally:
            view.runner.checkpoint = MemoryCheckpoint()  # keep the damaged one for the next
            await view.stop()
