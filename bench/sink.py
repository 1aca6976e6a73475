"""Rows per second from the log into each database: a running SQL sink (ours) side by
side with the path's own limit, in the same run.

The log is built once: an oddstream SQLite event store in a temporary directory holding
``--rows`` records in one REST Proxy topic, produced through the REST Proxy's service
layer (``EventStoreTopics.produce``, ``--produce`` records a request) as ``json`` records
in Connect's envelope ``{"schema": …, "payload": …}`` of 8 fields (int64, int32, strings,
an optional string, a Decimal, a Timestamp).

For each database (SQLite file, PostgreSQL and MariaDB on loopback; a fresh table made
with the sink's own DDL, dropped after) and mode (``insert``; ``upsert`` into a table
already holding half the keys; primary key ``id`` from the record value):

- ``ours``: a ``SinkConsumer`` (``TopicSource``) on a ``ConsumerRunner`` from position 0,
  timed from ``start`` until the runner has handled the head of the log;
- ``limit``: a minimal pipeline doing the same job with nothing else: pages of the
  same events read with ``store.read_page`` (``batch.size`` events a page, as the runner
  reads), the records taken out of each event with the same ``records_of`` and the
  envelope's payload decoded (Decimal from its base64 bytes, Timestamp from epoch ms),
  then bulk-loaded ``batch.size`` rows a transaction with the driver's fastest plain
  method: COPY (PostgreSQL; upsert: COPY into a temporary table, one INSERT … ON
  CONFLICT from it), ``executemany`` (SQLite), PyMySQL's multi-row INSERT (MariaDB).

Each case counts the rows in the table at the end (must be ``--rows``). Rows per second is
the best of ``--repeat`` runs (3 with ``--quick``, else 2), ours and the limit taking
turns. Needs the local PostgreSQL and MariaDB (``make services``). Results:
``bench/results/sink.json``.

    python bench/sink.py [--rows 100000] [--batch 3000] [--repeat 2] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import sqlite3
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, package_version, write_results
from oddstream.consumers import ConsumerRunner, SinkCheckpoint
from oddstream.eventstore.base import EventStore
from oddstream.eventstore.sqlite import SqliteEventStore
from oddstream.integrations.kafka.rest_proxy import EventStoreTopics, ProducedRecord
from oddstream.integrations.kafka.rest_proxy.records import (
    RECORD_TYPES,
    TOPIC_STREAM_PREFIX,
    records_of,
)
from oddstream.integrations.kafka.sink_source import TopicSource
from oddstream.sinks import SinkConsumer, parse_config
from oddstream.sinks.config import parse_connection_url
from oddstream.sinks.dialects import Column, dialect_for
from oddstream.sinks.schema import RecordSchema, from_connect_json
from sink_paths import Closer, Db, Loader, Mariadb, Postgres, Sqlite

RESULTS = Path(__file__).resolve().parent / "results" / "sink.json"
TOPIC = "bench_sink_bets"
SCALE = 2
SCHEMA: dict[str, Any] = {
    "type": "struct",
    "name": "bet",
    "fields": [
        {"field": "id", "type": "int64"},
        {"field": "race", "type": "string"},
        {"field": "runner", "type": "int32"},
        {"field": "stake_cents", "type": "int64"},
        {
            "field": "odds",
            "type": "bytes",
            "name": "org.apache.kafka.connect.data.Decimal",
            "version": 1,
            "parameters": {"scale": str(SCALE)},
        },
        {"field": "customer", "type": "string", "optional": True},
        {
            "field": "placed_at",
            "type": "int64",
            "name": "org.apache.kafka.connect.data.Timestamp",
            "version": 1,
        },
        {"field": "channel", "type": "string"},
    ],
}
COLS = [f["field"] for f in SCHEMA["fields"]]
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
CHANNELS = ("web", "app", "retail", "phone")


def produced(i: int) -> ProducedRecord:
    unscaled = 150 + (i % 4000)  # odds 1.50 .. 41.49
    payload = {
        "id": i,
        "race": f"race-{i % 97}",
        "runner": i % 12,
        "stake_cents": 100 + i,
        "odds": base64.b64encode(unscaled.to_bytes(4, "big", signed=True)).decode(),
        "customer": f"c{i % 1000}" if i % 3 else None,
        "placed_at": BASE_MS + i,
        "channel": CHANNELS[i % 4],
    }
    return ProducedRecord({"schema": SCHEMA, "payload": payload}, format="json")


async def build_log(path: Path, rows: int, per_request: int) -> tuple[EventStore, int]:
    """The store holding ``rows`` records of :data:`TOPIC`, and its head position."""
    store = await SqliteEventStore.open(path)
    topics = await EventStoreTopics.open(store)
    for start in range(0, rows, per_request):
        await topics.produce(
            TOPIC, [produced(i) for i in range(start, min(rows, start + per_request))]
        )
    return store, await store.head_position()


# --- the limit: read, decode, bulk-load -------------------------------------------------

Row = tuple[Any, ...]
_UTC = dt.UTC


def decode(value: Any, *, text: bool) -> Row:
    """A record's envelope payload as the row's values (``text``: SQLite's, which holds
    decimals and timestamps as text, as the sink writes them)."""
    p = value["payload"]
    odds = Decimal(int.from_bytes(base64.b64decode(p["odds"]), "big", signed=True)).scaleb(-SCALE)
    placed = dt.datetime.fromtimestamp(p["placed_at"] / 1000, _UTC).replace(tzinfo=None)
    if text:
        return (
            p["id"],
            p["race"],
            p["runner"],
            p["stake_cents"],
            str(odds),
            p["customer"],
            placed.isoformat(sep=" ", timespec="milliseconds"),
            p["channel"],
        )
    return (
        p["id"],
        p["race"],
        p["runner"],
        p["stake_cents"],
        odds,
        p["customer"],
        placed,
        p["channel"],
    )


def loader(db: Db, table: str, upsert: bool) -> tuple[Loader, Closer]:
    return db.plain_loader(table, COLS, upsert)


async def limit(store: EventStore, head: int, db: Db, table: str, batch: int, upsert: bool) -> int:
    """Read the log from 0 to ``head``, decode, load ``batch`` rows a transaction;
    answers the rows loaded. Each load runs on a thread and is awaited, as the sink's
    writes are (no overlap of reads and writes on either side)."""
    pool = ThreadPoolExecutor(1)  # one thread for the connection (sqlite3 wants that)
    loop = asyncio.get_running_loop()
    load, close = await loop.run_in_executor(pool, loader, db, table, upsert)
    text = isinstance(db, Sqlite)
    after, loaded = 0, 0
    rows: list[Row] = []
    try:
        while after < head:
            page = await store.read_page(
                after, batch, stream_prefix=TOPIC_STREAM_PREFIX, types=RECORD_TYPES
            )
            for event in page.events:
                topic = event.stream_id[len(TOPIC_STREAM_PREFIX) :]
                for record in records_of(topic, event):
                    rows.append(decode(record.value, text=text))
                    if len(rows) >= batch:
                        await loop.run_in_executor(pool, load, rows)
                        loaded += len(rows)
                        rows = []
            after = page.position
        if rows:
            await loop.run_in_executor(pool, load, rows)
            loaded += len(rows)
    finally:
        await loop.run_in_executor(pool, close)
        pool.shutdown()
    return loaded


# --- ours ----------------------------------------------------------------------------------


async def ours(store: EventStore, head: int, db: Db, table: str, batch: int, upsert: bool) -> None:
    config = parse_config(
        {
            "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
            "connection.url": db.url,
            "topics": TOPIC,
            "table.name.format": table,
            "insert.mode": "upsert" if upsert else "insert",
            "pk.mode": "record_value",
            "pk.fields": "id",
            "batch.size": str(batch),
        }
    )
    consumer = SinkConsumer(f"bench-{table}", config, TopicSource(config))
    runner = ConsumerRunner(
        store, consumer, SinkCheckpoint(), batch_size=config.batch_size, retry_load=True
    )
    await runner.start()
    try:
        if not await runner.wait_for(head, timeout=900):
            raise RuntimeError(f"sink stuck at {runner.position} of {head}: {runner.last_error}")
    finally:
        await runner.stop()
        await consumer.close()


# --- the runs -----------------------------------------------------------------------------


def create_table(db: Db, table: str) -> None:
    """The table as the sink's ``auto.create`` would make it (same column types)."""
    schema = from_connect_json(SCHEMA)
    assert isinstance(schema, RecordSchema)
    dialect = dialect_for(parse_connection_url(db.url))
    columns = [Column(f.name, f, f.name == "id") for f in schema.fields]
    conn = db.connect()
    conn.cursor().execute(dialect.create_table(table, columns))
    conn.commit()
    conn.close()


def count(db: Db, table: str) -> int:
    conn = db.connect()
    cur = conn.cursor()
    cur.execute(f"SELECT count(*) FROM {db.quote(table)}")
    (n,) = cur.fetchone()
    conn.close()
    return int(n)


async def run_once(
    store: EventStore, head: int, rows: int, db: Db, path: str, mode: str, batch: int
) -> float:
    table = f"bench_sink_{uuid.uuid4().hex[:10]}"
    upsert = mode == "upsert"
    create_table(db, table)
    try:
        if upsert:  # half the keys there already: the other half inserted, this half updated
            load, close = loader(db, table, upsert=False)
            text = isinstance(db, Sqlite)
            try:
                load([decode(produced(i).value, text=text) for i in range(rows // 2)])
            finally:
                close()
        start = time.perf_counter()
        if path == "ours":
            await ours(store, head, db, table, batch, upsert)
        else:
            await limit(store, head, db, table, batch, upsert)
        elapsed = time.perf_counter() - start
        found = count(db, table)
        if found != rows:
            raise RuntimeError(f"{db.name} {mode} {path}: {found} rows in the table, not {rows}")
    finally:
        db.drop(table)
    return rows / elapsed


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    console = Console()
    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        store, head = await build_log(Path(tmp) / "events.db", args.rows, args.produce)
        console.print(
            f"log: {args.rows} records in {head} events, built in "
            f"{time.perf_counter() - t0:.1f}s; batches of {args.batch}, best of {args.repeat}"
        )
        try:
            dbs: list[Db] = [Sqlite(Path(tmp) / "sink.db"), Postgres(), Mariadb()]
            for db in dbs:
                for mode in ("insert", "upsert"):
                    best = {"ours": 0.0, "limit": 0.0}
                    for _ in range(args.repeat):
                        for path in ("ours", "limit"):
                            got = await run_once(store, head, args.rows, db, path, mode, args.batch)
                            best[path] = max(best[path], got)
                    case = {
                        "db": db.name,
                        "mode": mode,
                        "ours_rows_per_s": round(best["ours"]),
                        "limit_rows_per_s": round(best["limit"]),
                        "ratio": round(best["ours"] / best["limit"], 3),
                    }
                    console.print(case)
                    cases.append(case)
        finally:
            await store.close()
    return {"events": head, "cases": cases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=None, help="100,000 (--quick: 20,000)")
    parser.add_argument("--batch", type=int, default=3000, help="batch.size")
    parser.add_argument("--produce", type=int, default=500, help="records a produce request")
    parser.add_argument("--repeat", type=int, default=None, help="2 (--quick: 3)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if args.rows is None:
        args.rows = 20_000 if args.quick else 100_000
    if args.repeat is None:
        args.repeat = 3 if args.quick else 2
    started = dt.datetime.now(dt.UTC)
    got = asyncio.run(bench(args))

    table = Table(title=f"{args.rows} rows, log → database (rows/s, best of {args.repeat})")
    for name in ("db", "mode", "ours", "limit", "ratio", "≥ 50%"):
        table.add_column(name, justify="left" if name in ("db", "mode") else "right")
    for c in got["cases"]:
        table.add_row(
            c["db"],
            c["mode"],
            f"{c['ours_rows_per_s']:,}",
            f"{c['limit_rows_per_s']:,}",
            f"{c['ratio']:.2f}",
            "yes" if c["ratio"] >= 0.5 else "NO",
        )
    Console().print(table)
    if not args.no_write:
        write_results(
            RESULTS,
            {
                "when": started.isoformat(timespec="seconds"),
                "settings": {
                    "rows": args.rows,
                    "events": got["events"],
                    "records_per_produce": args.produce,
                    "batch_size": args.batch,
                    "repeat": args.repeat,
                    "quick": args.quick,
                    "log": "SqliteEventStore in a temporary directory",
                    "pk": "record_value id; upsert into a table holding half the keys",
                    "machine": machine(
                        psycopg=package_version("psycopg"),
                        pymysql=package_version("pymysql"),
                        sqlite=sqlite3.sqlite_version,
                    ),
                },
                "cases": got["cases"],
            },
        )


if __name__ == "__main__":
    main()
