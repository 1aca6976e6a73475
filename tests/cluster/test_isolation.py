"""Two deployments on one NATS server never take each other's commands — also when
their logs are in two databases under the same schema name (the default, ``oddstream``,
for both: two developers' machines on a shared NATS, staging and production)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest

from oddstream.cluster import wire
from oddstream.cluster.partitions import race_partition
from oddstream.cluster.worker import Worker
from oddstream.config import Settings
from oddstream.domain.tote.events import PoolConfig, Runner
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.race import ScheduleRace

PARTITIONS = 4


@pytest.fixture
def other_database(pg_url: str) -> AsyncIterator[str]:
    """The URL of a database of its own, dropped after the test."""
    name = f"rv_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = pg_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settings(store_url: str, schema: str, redis_url: str, nats_url: str) -> Settings:
    return Settings(
        store_url=store_url,
        pg_schema=schema,
        nats_url=nats_url,
        redis_url=redis_url,
        redis_prefix=f"t{uuid.uuid4().hex[:10]}:",
        partitions=PARTITIONS,
        rebalance_seconds=60,
    )


async def test_two_databases_with_one_schema_name_are_two_deployments(
    pg_url: str, pg_schema: str, other_database: str, redis_url: str, nats_url: str
) -> None:
    a = Worker(settings(pg_url, pg_schema, redis_url, nats_url), name="a")
    b = Worker(settings(other_database, pg_schema, redis_url, nats_url), name="b")
    await a.start()
    try:
        await b.start()
        try:
            race = "r1"
            command = ScheduleRace(
                race_id=race,
                meeting="M",
                venue="V",
                post_time="2026-11-29T15:00:00Z",
                runners=(Runner(1, "One"), Runner(2, "Two")),
                pools=(PoolConfig(pool=PoolType.WIN, takeout_bps=1500),),
            )
            partition = race_partition(race, PARTITIONS)

            # deployment a's command, over NATS (as an API process of a sends it)
            await a.router.outcome(wire.Op.RACE, partition, command, request_id="x")
            assert [e.type for e in await a.store.read_stream(f"race-{race}")] == [
                "tote.RaceScheduled"
            ]
            assert await b.store.read_stream(f"race-{race}") == []  # not b's
            assert a.prefix != b.prefix
        finally:
            await b.stop()
    finally:
        await a.stop()


async def test_processes_starting_together_agree_on_the_deployment(
    pg_url: str, pg_schema: str
) -> None:
    """The first processes of a deployment start at once: each may draw an id, one
    keeps it, all use that one."""
    import asyncio

    from oddstream.cluster.worker import deployment_id
    from oddstream.eventstore.postgres import PostgresEventStore

    stores = [await PostgresEventStore.open(pg_url, schema=pg_schema) for _ in range(4)]
    try:
        ids = await asyncio.gather(*(deployment_id(store) for store in stores))
        assert len(set(ids)) == 1
        assert ids[0] > 0
        assert await deployment_id(stores[0]) == ids[0]  # and keep it
    finally:
        for store in stores:
            await store.close()
