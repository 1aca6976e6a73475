"""SIGKILL a writing process at random moments: every acknowledged append survives
exactly once and no append is ever partly stored."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from oddstream.eventstore.postgres import PostgresEventStore
from oddstream.eventstore.sqlite import SqliteEventStore

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("crash_child.py")
ROUNDS = 4


def _run_and_kill(args: list[str], rng: random.Random) -> list[tuple[str, int, int]]:
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if first.strip() != "ready":
        proc.kill()
        raise AssertionError(f"child did not start: {first!r} {proc.stderr.read()}")
    time.sleep(rng.uniform(0.2, 1.0))
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    acked = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:  # the last line may have been cut by the kill
            acked.append((parts[0], int(parts[1]), int(parts[2])))
    return acked


async def _verify(store, acked: list[tuple[str, int, int]]) -> None:
    by_batch: dict[str, list] = defaultdict(list)
    after = 0
    while page := await store.read_all(after=after, limit=5000):
        for e in page:
            by_batch[e.data["batch"]].append(e)
        after = page[-1].position
    # no batch is partly present
    for batch, events in by_batch.items():
        assert len(events) == events[0].data["n"], f"batch {batch} is partly stored"
        assert sorted(e.data["i"] for e in events) == list(range(len(events)))
    # every acknowledged batch is present exactly once, where the ack said
    for batch, first, n in acked:
        events = by_batch.get(batch)
        assert events, f"acknowledged batch {batch} is missing"
        assert len(events) == n
        assert [e.position for e in events] == list(range(first, first + n))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_acknowledged_appends_survive_sigkill(
    backend: str, tmp_path, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(1234)
    if backend == "sqlite":
        path = str(tmp_path / "crash.db")
        target = ["sqlite", path]
    else:
        url = request.getfixturevalue("pg_url")
        schema = request.getfixturevalue("pg_schema")
        target = ["postgres", url, schema]
    acked: list[tuple[str, int, int]] = []
    for round_no in range(ROUNDS):
        got = _run_and_kill([*target, f"r{round_no}"], rng)
        assert got, "the child acknowledged nothing before the kill"
        acked += got
    if backend == "sqlite":
        store = await SqliteEventStore.open(path)
    else:
        store = await PostgresEventStore.open(url, schema=schema)
    try:
        await _verify(store, acked)
    finally:
        await store.close()
