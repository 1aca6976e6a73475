"""Random append scripts give the same outcomes on SQLite (Python planner) and on
PostgreSQL (the append_group function), whether appends run one by one or as one group.

The two adapters implement the append rules in two places; this keeps them one rule set.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oddstream.eventstore import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    EventStoreError,
    NewEvent,
    StreamAppend,
)
from oddstream.eventstore.postgres import PostgresEventStore
from oddstream.eventstore.sqlite import SqliteEventStore

IDS = [uuid.UUID(int=i + 1) for i in range(6)]

expectations = st.one_of(st.integers(0, 4), st.sampled_from([ANY, NO_STREAM, STREAM_EXISTS]))
events = st.lists(st.one_of(st.none(), st.sampled_from(IDS)), min_size=1, max_size=3)
parts = st.tuples(st.sampled_from(["a-1", "a-2", "b-1"]), events, expectations)
requests = st.lists(parts, min_size=1, max_size=2)
scripts = st.lists(st.tuples(requests, st.booleans()), min_size=1, max_size=8)


def _build(request) -> list[StreamAppend]:
    return [
        StreamAppend(
            stream, [NewEvent("E", {"i": i}, event_id=eid) for i, eid in enumerate(ids)], exp
        )
        for stream, ids, exp in request
    ]


def _describe(outcome) -> object:
    if isinstance(outcome, EventStoreError):
        return type(outcome).__name__, getattr(outcome, "actual", None)
    return [
        (r.stream_id, r.version, r.first_position, r.last_position, r.idempotent_retry)
        for r in outcome
    ]


async def _run(store, script) -> list:
    """Requests flagged True are sent concurrently with the next one (one group)."""
    out: list = []
    pending: list = []
    for request, grouped in script:
        pending.append(store.append_multi(_build(request)))
        if not grouped:
            out += await asyncio.gather(*pending, return_exceptions=True)
            pending = []
    out += await asyncio.gather(*pending, return_exceptions=True)
    final = [
        (e.stream_id, e.version, e.position, e.event_id if e.event_id in IDS else "generated")
        for e in await store.read_all()
    ]
    return [_describe(o) for o in out] + [final]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=scripts)
def test_adapters_agree(pg_url: str, script) -> None:
    schema = f"d_{uuid.uuid4().hex[:12]}"

    async def both():
        with tempfile.TemporaryDirectory() as d:
            lite = await SqliteEventStore.open(Path(d) / "e.db")
            try:
                a = await _run(lite, script)
            finally:
                await lite.close()
        pg = await PostgresEventStore.open(pg_url, schema=schema)
        try:
            b = await _run(pg, script)
        finally:
            await pg.close()
        return a, b

    try:
        a, b = asyncio.run(both())
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    assert a == b
