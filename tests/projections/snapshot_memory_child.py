"""Child process of ``test_snapshot_memory.py``: a large tote view snapshotted several
times into a store (as ``SnapshotCheckpoint`` does it), then its snapshot read back.
Prints, as JSON, the resident memory measured around each (MiB above the memory held
before the first snapshot): the peak during it and what stays after it.

A process of its own, so the test runner's heap does not blur the figures.

    python snapshot_memory_child.py sqlite:///path/events.db
    python snapshot_memory_child.py postgresql://... SCHEMA
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from pathlib import Path
from typing import Any

from oddstream.consumers.checkpoints import SnapshotCheckpoint, release_free_memory
from oddstream.domain.tote.events import BetPlaced, PoolConfig, Runner
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.race import OpenBetting, RaceState, ScheduleRace, decide, evolve
from oddstream.eventstore import EventStore, RecordedEvent
from oddstream.eventstore.postgres import PostgresEventStore
from oddstream.eventstore.sqlite import SqliteEventStore
from oddstream.projections.tote_view import ToteView
from oddstream.runtime.codec import registry

RACES = 40
BETS_PER_RACE = 4000  # 160,000 bets: a snapshot of about 35 MB
SAVES = 4
MIB = 1 << 20
_NO_ID = bytes(16)


def rss() -> int:
    """Resident memory now, bytes."""
    return _status("VmRSS")


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key}")


def reset_peak() -> None:
    """Start VmHWM (the peak resident memory) again from now."""
    Path("/proc/self/clear_refs").write_text("5")


def build(view: ToteView) -> int:
    """Apply :data:`RACES` open races of :data:`BETS_PER_RACE` bets each (as the log
    would bring them); returns the last position."""
    position = 0

    def apply(stream: str, version: int, event: Any) -> None:
        nonlocal position
        position += 1
        new = registry.to_new_event(event)
        view.apply(RecordedEvent(position, stream, version, _NO_ID, new.type, 1, new.data, {}, 0))

    bet_type = registry.name_of(BetPlaced)
    for number in range(RACES):
        race_id = f"r{number:03d}"
        stream = f"race-{race_id}"
        state = RaceState()
        commands = (
            ScheduleRace(
                race_id=race_id,
                meeting="Flemington",
                venue="Flemington",
                post_time="2026-11-21T15:00:00+11:00",
                runners=tuple(Runner(n, f"Runner {n}") for n in range(1, 13)),
                pools=(PoolConfig(pool=PoolType.WIN, takeout_bps=1500, profile="tabcorp"),),
            ),
            OpenBetting(race_id),
        )
        version = 0
        for command in commands:
            for event in decide(state, command):
                evolve(state, event)
                version += 1
                apply(stream, version, event)
        for n in range(BETS_PER_RACE):  # placed bets, as the race's writer records them
            version += 1
            position += 1
            data = {
                "race_id": race_id,
                "bet_id": f"{number:03d}-{n:06d}",
                "pool": PoolType.WIN.value,
                "selection": [1 + n % 12],
                "stake_cents": 200 + 100 * (n % 7),
                "wallet_id": f"w{n % 500}" if n % 3 else None,
            }
            view.apply(RecordedEvent(position, stream, version, _NO_ID, bet_type, 1, data, {}, 0))
    return position


async def settle() -> int:
    """Let go of what is garbage, give the free heap back; the resident memory then."""
    await asyncio.sleep(0)
    gc.collect()
    release_free_memory()
    return rss()


async def measure(store: EventStore) -> dict[str, Any]:
    view = ToteView(store, snapshot_every=0)
    position = build(view)
    checkpoint = SnapshotCheckpoint(every=0)
    base = await settle()
    result: dict[str, Any] = {"held_mib": base / MIB, "save_peak_mib": [], "after_save_mib": []}
    for n in range(SAVES):
        reset_peak()
        await checkpoint.save(store, view, position + n, now=True)
        result["save_peak_mib"].append((_status("VmHWM") - base) / MIB)
        result["after_save_mib"].append((await settle() - base) / MIB)
    reset_peak()
    found = await store.load_snapshot(view.name)
    assert found is not None
    assert found.position == position + SAVES - 1
    result["snapshot_mib"] = found.size / MIB
    result["parts"] = len(found.parts)
    del found
    result["load_peak_mib"] = (_status("VmHWM") - base) / MIB
    result["after_load_mib"] = (await settle() - base) / MIB
    return result


async def main(url: str, schema: str | None) -> None:
    store: EventStore
    if url.startswith("postgresql://"):
        store = await PostgresEventStore.open(url, schema=schema or "oddstream")
    else:
        store = await SqliteEventStore.open(url.removeprefix("sqlite:///"))
    try:
        print(json.dumps(await measure(store)))
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
