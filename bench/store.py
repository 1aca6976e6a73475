"""Benchmark oddstream's event store against the ``eventsourcing`` package, side by side.

Both sides run the same workloads in one process, on the same machine and disk, against
the same backends: SQLite (a fresh file each) and PostgreSQL (a fresh schema each, dropped
at the end). The peer is ``eventsourcing`` (>= 9.3) used through its public API: an
``Application`` configured by its environment variables and an ``Aggregate`` with an
``@event`` method; replay uses ``app.recorder.select_notifications`` and
``app.mapper.to_domain_event``.

Workloads (see ``bench/README.md``):

a) single-event appends to one stream, one after the other;
b) 64 concurrent clients, each appending single events to its own stream;
c) large appends: batches of 1,000 events to one stream;
d) replay of everything the other cases wrote, decoding every event.

Only the store call is timed: the events (oddstream ``NewEvent`` lists, the peer's
triggered aggregate events) are built before the clock starts, on both sides.

Run ``.venv/bin/python bench/store.py [--quick] [--backend sqlite|postgres|all]
[--only a,b,c,d]``. Results go to ``bench/results/store.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, DomainEventProtocol, event
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from rich.console import Console
from rich.table import Table

from common import machine, package_version, write_results
from oddstream.eventstore import NO_STREAM, EventStore, NewEvent
from oddstream.eventstore.postgres import PostgresEventStore
from oddstream.eventstore.sqlite import SqliteEventStore

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
RESULTS = Path(__file__).resolve().parent / "results" / "store.json"
BACKENDS = ("sqlite", "postgres")
CASES = ("a", "b", "c", "d")
CASE_NAMES = {
    "a": "a) single appends, 1 stream",
    "b": "b) concurrent clients",
    "c": "c) batches of 1,000",
    "d": "d) replay all + decode",
}
TIMED_REGION = (
    "only the store call is timed (append / app.save / read); events are built "
    "beforehand on both sides (NewEvent lists; the peer's aggregate @event triggers)"
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much each workload writes or reads."""

    sequential: int  # a) single-event appends
    clients: int  # b) concurrent clients ...
    per_client: int  # ... each appending this many single events
    batched: int  # c) events in total ...
    batch: int  # ... appended this many at a time
    page: int  # d) events per read


#: case a runs in this many alternating rounds of ours, then the peer's
A_ROUNDS = 10

FULL = Sizes(sequential=10_000, clients=64, per_client=100, batched=100_000, batch=1_000, page=5000)
QUICK = Sizes(sequential=1_000, clients=64, per_client=20, batched=20_000, batch=1_000, page=5000)


@dataclass(slots=True)
class Timing:
    """One side's result for one case."""

    events: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


@dataclass(slots=True)
class CaseResult:
    case: str
    backend: str
    ours: Timing | None
    peer: Timing | None

    def as_json(self) -> dict[str, Any]:
        ours = self.ours.per_s if self.ours else None
        peer = self.peer.per_s if self.peer else None
        return {
            "case": self.case,
            "title": CASE_NAMES[self.case],
            "backend": self.backend,
            "ours_per_s": round(ours, 1) if ours is not None else None,
            "peer_per_s": round(peer, 1) if peer is not None else None,
            "ratio": round(ours / peer, 3) if ours is not None and peer else None,
            "ours_events": self.ours.events if self.ours else None,
            "peer_events": self.peer.events if self.peer else None,
            "ours_seconds": round(self.ours.seconds, 4) if self.ours else None,
            "peer_seconds": round(self.peer.seconds, 4) if self.peer else None,
        }


@dataclass(slots=True)
class Report:
    results: list[CaseResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    durability: dict[str, Any] = field(default_factory=dict)
    server: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


def payload(seq: int) -> dict[str, Any]:
    """The event body both sides store: a small bet-like record."""
    return {"seq": seq, "stake": 250 + seq % 1000, "selection": f"runner-{seq % 12}"}


# --------------------------------------------------------------------------- oddstream


class Ours:
    """The workloads against oddstream's event store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def sequential(self, n: int, round_no: int = 0) -> Timing:
        stream = f"a-sequential-{round_no}"
        await self.store.append(stream, [NewEvent("Created", {})], NO_STREAM)
        batches = [[NewEvent("Placed", payload(i))] for i in range(n)]
        append = self.store.append
        started = time.perf_counter()
        for expected, events in enumerate(batches, start=1):
            await append(stream, events, expected)
        elapsed = time.perf_counter() - started
        await self._expect_version(stream, n + 1)
        return Timing(n, elapsed)

    async def concurrent(self, clients: int, per_client: int) -> Timing:
        streams = [f"b-client-{i}" for i in range(clients)]
        await asyncio.gather(
            *(self.store.append(s, [NewEvent("Created", {})], NO_STREAM) for s in streams)
        )
        work = [[[NewEvent("Placed", payload(i))] for i in range(per_client)] for _ in streams]
        append = self.store.append

        async def client(stream: str, batches: list[list[NewEvent]]) -> None:
            for expected, events in enumerate(batches, start=1):
                await append(stream, events, expected)

        started = time.perf_counter()
        await asyncio.gather(*(client(s, w) for s, w in zip(streams, work, strict=True)))
        elapsed = time.perf_counter() - started
        for stream in streams:
            await self._expect_version(stream, per_client + 1)
        return Timing(clients * per_client, elapsed)

    async def batched(self, total: int, batch: int, stream: str = "c-batched") -> Timing:
        await self.store.append(stream, [NewEvent("Created", {})], NO_STREAM)
        batches = [
            [NewEvent("Placed", payload(i)) for i in range(start, min(start + batch, total))]
            for start in range(0, total, batch)
        ]
        append = self.store.append
        version = 1
        elapsed = 0.0
        for events in batches:
            started = time.perf_counter()
            await append(stream, events, version)
            elapsed += time.perf_counter() - started
            version += len(events)
        await self._expect_version(stream, total + 1)
        return Timing(total, elapsed)

    async def replay(self, page: int) -> Timing:
        head = await self.store.head_position()
        read_all = self.store.read_all
        after = 0
        count = 0
        data: Any = None
        started = time.perf_counter()
        while True:
            events = await read_all(after=after, limit=page)
            if not events:
                break
            for e in events:
                data = e.data  # decode the JSON body, as the peer's mapper does
            after = events[-1].position
            count += len(events)
        elapsed = time.perf_counter() - started
        del data
        if count != head or after != head:
            raise AssertionError(
                f"oddstream replay read {count} events up to position {after}; head is {head}"
            )
        return Timing(count, elapsed)

    async def event_count(self) -> int:
        return await self.store.head_position()

    async def _expect_version(self, stream: str, want: int) -> None:
        got = await self.store.stream_version(stream)
        if got != want:
            raise AssertionError(f"oddstream stream {stream!r} is at version {got}, want {want}")


# --------------------------------------------------------------------------- peer


class Ticket(Aggregate):
    """The peer's aggregate: one ``Placed`` event per bet."""

    def __init__(self) -> None:
        self.placed = 0

    @event("Placed")
    def place(self, seq: int, stake: int, selection: str) -> None:
        self.placed += 1


class BenchApp(Application[UUID]):
    """The peer's application; persistence comes from its environment."""


def triggered(agg: Ticket, start: int, count: int) -> list[DomainEventProtocol[UUID]]:
    """Trigger ``count`` events on ``agg`` and take them as pending domain events."""
    for i in range(start, start + count):
        agg.place(**payload(i))
    return list(agg.collect_events())


class Peer:
    """The workloads against ``eventsourcing``. Blocking: run it off the event loop."""

    def __init__(self, app: BenchApp) -> None:
        self.app = app

    def sequential(self, n: int, round_no: int = 0) -> Timing:
        agg = Ticket()
        self.app.save(agg)  # its Created event, like oddstream's untimed first event
        pending = triggered(agg, 0, n)
        save = self.app.save
        started = time.perf_counter()
        for ev in pending:
            save(ev)
        elapsed = time.perf_counter() - started
        self._expect_version(agg.id, n + 1)
        return Timing(n, elapsed)

    def concurrent(self, clients: int, per_client: int) -> Timing:
        aggs = [Ticket() for _ in range(clients)]
        self.app.save(*aggs)
        work = [triggered(agg, 0, per_client) for agg in aggs]
        barrier = threading.Barrier(clients + 1)
        errors: list[BaseException] = []
        save = self.app.save

        def client(pending: list[DomainEventProtocol[UUID]]) -> None:
            barrier.wait()
            try:
                for ev in pending:
                    save(ev)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=client, args=(w,), daemon=True) for w in work]
        for t in threads:
            t.start()
        barrier.wait()
        started = time.perf_counter()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        if errors:
            kinds = sorted({f"{type(e).__name__}: {e}" for e in errors})
            raise RuntimeError(f"{len(errors)} of {clients} peer clients failed: {kinds}")
        for agg in aggs:
            self._expect_version(agg.id, per_client + 1)
        return Timing(clients * per_client, elapsed)

    def batched(self, total: int, batch: int) -> Timing:
        agg = Ticket()
        self.app.save(agg)
        save = self.app.save
        elapsed = 0.0
        for start in range(0, total, batch):
            pending = triggered(agg, start, min(batch, total - start))
            began = time.perf_counter()
            save(*pending)
            elapsed += time.perf_counter() - began
        self._expect_version(agg.id, total + 1)
        return Timing(total, elapsed)

    def replay(self, page: int) -> Timing:
        head = self.event_count()
        select = self.app.recorder.select_notifications
        to_domain_event = self.app.mapper.to_domain_event
        start = 1
        count = 0
        last = 0
        domain_event: Any = None
        began = time.perf_counter()
        while True:
            notifications = select(start, page)
            if not notifications:
                break
            for n in notifications:
                domain_event = to_domain_event(n)
            last = notifications[-1].id
            start = last + 1
            count += len(notifications)
        elapsed = time.perf_counter() - began
        del domain_event
        if count != head or last != head:
            raise AssertionError(
                f"peer replay read {count} notifications up to id {last}; max id is {head}"
            )
        return Timing(count, elapsed)

    def event_count(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def _expect_version(self, agg_id: UUID, want: int) -> None:
        stored = self.app.recorder.select_events(agg_id, desc=True, limit=1)
        got = stored[0].originator_version if stored else 0
        if got != want:
            raise AssertionError(f"peer aggregate {agg_id} is at version {got}, want {want}")


# --------------------------------------------------------------------------- set-up


def pg_env(url: str, schema: str) -> dict[str, str]:
    """The peer's PostgreSQL environment variables for ``url`` and ``schema``."""
    info = conninfo_to_dict(url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(info.get("dbname", "postgres")),
        "POSTGRES_HOST": str(info.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(info.get("port", "5432")),
        "POSTGRES_USER": str(info.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(info.get("password", "")),
        "POSTGRES_SCHEMA": schema,
    }


def pg_admin(url: str, *statements: sql.Composed) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for st in statements:
            conn.execute(st)


def pg_settings(url: str) -> dict[str, str]:
    names = ("server_version", "synchronous_commit", "fsync", "wal_sync_method")
    with psycopg.connect(url, autocommit=True) as conn:
        return {
            n: str(row[0])
            for n in names
            if (row := conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(n))).fetchone())
        }


_SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def sqlite_pragmas(conn: Any) -> str:
    """``journal_mode`` and ``synchronous`` as seen by one live connection."""
    journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    return f"journal_mode={str(journal).upper()}, synchronous={_SYNC_NAMES.get(sync, sync)}"


def ours_sqlite_durability(store: SqliteEventStore) -> str:
    # The writer's own connection holds the per-connection setting; fall back to the
    # store's configuration if the adapter's internals change.
    conn = getattr(store, "_writer_conn", None)
    if isinstance(conn, sqlite3.Connection):
        return sqlite_pragmas(conn) + " (queried on the writer connection)"
    return f"synchronous={store.synchronous} (configured; writer connection not inspected)"


def peer_sqlite_durability(app: BenchApp) -> str:
    datastore = getattr(app.recorder, "datastore", None)
    if datastore is None:
        return "unknown"
    with datastore.transaction(commit=False) as cursor:
        cursor.execute("PRAGMA journal_mode")
        journal = cursor.fetchone()[0]
        cursor.execute("PRAGMA synchronous")
        sync = cursor.fetchone()[0]
    return (
        f"journal_mode={str(journal).upper()}, synchronous={_SYNC_NAMES.get(sync, sync)} "
        "(queried on a pooled connection; eventsourcing sets WAL and leaves "
        "synchronous at SQLite's default)"
    )


def peer_pg_durability(app: BenchApp) -> str:
    datastore = getattr(app.recorder, "datastore", None)
    if datastore is None:
        return "unknown"
    with datastore.get_connection() as conn:
        row = conn.execute("SHOW synchronous_commit").fetchone()
    value = next(iter(row.values())) if isinstance(row, dict) else row[0] if row else "?"
    return f"synchronous_commit={value} (session of its pool; no override)"


async def ours_pg_durability(url: str, store: PostgresEventStore) -> str:
    conn = getattr(store, "_writer", None)
    if isinstance(conn, psycopg.AsyncConnection) and not conn.closed:
        cur = await conn.execute("SHOW synchronous_commit")
        row = await cur.fetchone()
        return f"synchronous_commit={row[0] if row else '?'} (writer session; no override)"
    return f"synchronous_commit={pg_settings(url).get('synchronous_commit')} (server setting)"


@contextlib.contextmanager
def peer_app(env: dict[str, str]) -> Iterator[BenchApp]:
    app = BenchApp(env=env)
    try:
        yield app
    finally:
        app.close()


# --------------------------------------------------------------------------- running


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


async def attempt(report: Report, label: str, run: Awaitable[T]) -> T | None:
    try:
        return await run
    except Exception as exc:
        report.problems.append(f"{label}: {type(exc).__name__}: {exc}")
        traceback.print_exc(file=sys.stderr)
        return None


async def run_cases(
    backend: str,
    ours: Ours,
    peer: Peer,
    cases: Sequence[str],
    sizes: Sizes,
    report: Report,
    console: Console,
    before_replay: Callable[[], Awaitable[None]] | None = None,
) -> None:
    for case in cases:
        console.print(f"[dim]{backend}: {CASE_NAMES[case]} ...[/dim]")
        if case == "a":
            # fsync-bound and so the most sensitive to the disk's drift: alternate the
            # two sides in rounds, so that a slow spell hits both
            o: Timing | None = Timing(0, 0.0)
            p: Timing | None = Timing(0, 0.0)
            share = sizes.sequential // A_ROUNDS
            for round_no in range(A_ROUNDS):
                ro = await attempt(report, f"{backend} a ours", ours.sequential(share, round_no))
                rp = await attempt(
                    report,
                    f"{backend} a peer",
                    in_thread(peer.sequential, share, round_no),
                )
                o = (
                    None
                    if ro is None or o is None
                    else Timing(o.events + ro.events, o.seconds + ro.seconds)
                )
                p = (
                    None
                    if rp is None or p is None
                    else Timing(p.events + rp.events, p.seconds + rp.seconds)
                )
        elif case == "b":
            o = await attempt(
                report, f"{backend} b ours", ours.concurrent(sizes.clients, sizes.per_client)
            )
            p = await attempt(
                report,
                f"{backend} b peer",
                in_thread(peer.concurrent, sizes.clients, sizes.per_client),
            )
        elif case == "c":
            o = await attempt(report, f"{backend} c ours", ours.batched(sizes.batched, sizes.batch))
            p = await attempt(
                report, f"{backend} c peer", in_thread(peer.batched, sizes.batched, sizes.batch)
            )
        else:
            await seed_for_replay(backend, ours, peer, sizes, report)
            if before_replay is not None:
                await attempt(report, f"{backend} d preparation", before_replay())
            o = await attempt(report, f"{backend} d ours", ours.replay(sizes.page))
            p = await attempt(report, f"{backend} d peer", in_thread(peer.replay, sizes.page))
        report.results.append(CaseResult(case, backend, o, p))


async def seed_for_replay(
    backend: str, ours: Ours, peer: Peer, sizes: Sizes, report: Report
) -> None:
    """Replay needs something to read: if ``d`` runs alone, write c's events untimed."""
    ours_n = await ours.event_count()
    peer_n = await in_thread(peer.event_count)
    if ours_n == 0:
        await attempt(report, f"{backend} d ours seed", ours.batched(sizes.batched, sizes.batch))
    if peer_n == 0:
        await attempt(
            report, f"{backend} d peer seed", in_thread(peer.batched, sizes.batched, sizes.batch)
        )
    ours_n = await ours.event_count()
    peer_n = await in_thread(peer.event_count)
    if ours_n != peer_n:
        report.problems.append(
            f"{backend} d: the stores hold different numbers of events "
            f"(oddstream {ours_n}, peer {peer_n})"
        )


async def bench_sqlite(
    cases: Sequence[str], sizes: Sizes, workdir: Path, report: Report, console: Console
) -> None:
    ours_path = workdir / "oddstream.db"
    peer_path = workdir / "eventsourcing.db"
    store = await SqliteEventStore.open(ours_path, synchronous="FULL")
    try:
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(peer_path)}
        with peer_app(env) as app:
            report.durability["sqlite"] = {
                "ours": ours_sqlite_durability(store),
                "peer": peer_sqlite_durability(app),
                "files": str(workdir),
            }
            await run_cases("sqlite", Ours(store), Peer(app), cases, sizes, report, console)
    finally:
        await store.close()


def pg_analyze(url: str, schemas: Sequence[str]) -> None:
    """ANALYZE every table in ``schemas``, as autovacuum eventually would."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY(%s)",
            (list(schemas),),
        ).fetchall()
        for schema, table in tables:
            conn.execute(
                sql.SQL("ANALYZE {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            )


async def bench_postgres(
    cases: Sequence[str],
    sizes: Sizes,
    url: str,
    report: Report,
    console: Console,
    analyze: bool = False,
) -> None:
    base = f"bench_{uuid.uuid4().hex[:12]}"
    ours_schema, peer_schema = f"{base}_ours", f"{base}_peer"
    report.server = await in_thread(pg_settings, url)
    try:
        # oddstream creates its schema; eventsourcing expects POSTGRES_SCHEMA to exist.
        await in_thread(
            pg_admin, url, sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(peer_schema))
        )
        store = await PostgresEventStore.open(url, schema=ours_schema)
        try:
            with peer_app(pg_env(url, peer_schema)) as app:
                report.durability["postgres"] = {
                    "server": dict(report.server),
                    "ours": await ours_pg_durability(url, store),
                    "peer": peer_pg_durability(app),
                    "schemas": [ours_schema, peer_schema],
                }

                async def before_replay() -> None:
                    await in_thread(pg_analyze, url, [ours_schema, peer_schema])

                await run_cases(
                    "postgres",
                    Ours(store),
                    Peer(app),
                    cases,
                    sizes,
                    report,
                    console,
                    before_replay if analyze else None,
                )
        finally:
            await store.close()
    finally:
        drops = [
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(s))
            for s in (ours_schema, peer_schema)
        ]
        await attempt(report, "postgres cleanup", in_thread(pg_admin, url, *drops))


# --------------------------------------------------------------------------- output


def fmt_rate(t: Timing | None) -> str:
    return "failed" if t is None else f"{t.per_s:,.0f}"


def render(
    report: Report, sizes: Sizes, quick: bool, elapsed: float, out: Path, console: Console
) -> None:
    table = Table(title=f"event store: oddstream vs eventsourcing{' (quick)' if quick else ''}")
    table.add_column("case", no_wrap=True)
    table.add_column("backend")
    table.add_column("events", justify="right")
    table.add_column("ours/s", justify="right")
    table.add_column("peer/s", justify="right")
    table.add_column("ratio", justify="right")
    for r in report.results:
        ratio = r.as_json()["ratio"]
        events = r.ours.events if r.ours else r.peer.events if r.peer else 0
        table.add_row(
            CASE_NAMES[r.case],
            r.backend,
            f"{events:,}",
            fmt_rate(r.ours),
            fmt_rate(r.peer),
            "-" if ratio is None else f"{ratio:.2f}x",
        )
    console.print(table)
    console.print(
        f"sizes: a) {sizes.sequential:,} appends; b) {sizes.clients} clients x "
        f"{sizes.per_client} events; c) {sizes.batched:,} events in batches of {sizes.batch:,}; "
        f"d) pages of {sizes.page:,}. Ratio = ours/peer, above 1 means oddstream is faster."
    )
    console.print(f"timed region: {TIMED_REGION}.")
    if report.options.get("pg_analyze_before_replay"):
        console.print("postgres: both sides' tables were ANALYZEd before the replay.")
    dur = report.durability
    if "sqlite" in dur:
        console.print(
            f"durability sqlite: ours {dur['sqlite']['ours']}; peer {dur['sqlite']['peer']}."
        )
    if "postgres" in dur:
        s = dur["postgres"]["server"]
        console.print(
            f"durability postgres (server {s.get('server_version')}: synchronous_commit="
            f"{s.get('synchronous_commit')}, fsync={s.get('fsync')}, wal_sync_method="
            f"{s.get('wal_sync_method')}): ours {dur['postgres']['ours']}; "
            f"peer {dur['postgres']['peer']}."
        )
    for p in report.problems:
        console.print(f"[red]problem:[/red] {p}")
    console.print(f"total time {elapsed:.1f}s; results in {out}")


def write_json(report: Report, quick: bool, sizes: Sizes, elapsed: float, path: Path) -> None:
    doc = {
        "cases": [r.as_json() for r in report.results],
        "quick": quick,
        "durability": report.durability,
        "timed_region": TIMED_REGION,
        "options": report.options,
        "sizes": {
            "a_events": sizes.sequential,
            "b_clients": sizes.clients,
            "b_events_per_client": sizes.per_client,
            "c_events": sizes.batched,
            "c_batch": sizes.batch,
            "d_page": sizes.page,
        },
        "problems": report.problems,
        "machine": machine(
            sqlite=sqlite3.sqlite_version,
            postgres=report.server.get("server_version"),
            oddstream=package_version("oddstream"),
            eventsourcing=package_version("eventsourcing"),
            psycopg=psycopg.__version__,
        ),
        "seconds": round(elapsed, 1),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_results(path, doc)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes (under a minute)")
    parser.add_argument("--backend", choices=[*BACKENDS, "all"], default="all")
    parser.add_argument("--only", default=",".join(CASES), help="cases to run, e.g. a,c")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("ODDSTREAM_BENCH_PG_URL", DEFAULT_PG_URL),
        help="PostgreSQL URL (env ODDSTREAM_BENCH_PG_URL)",
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the SQLite files go (default: a temp dir)"
    )
    parser.add_argument(
        "--pg-analyze",
        action="store_true",
        help="ANALYZE both sides' PostgreSQL tables before the replay (steady-state plans)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv)
    only = [c.strip().lower() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in only if c not in CASES]
    if unknown or not only:
        parser.error(f"--only takes some of {','.join(CASES)}; got {args.only!r}")
    args.cases = [c for c in CASES if c in only]
    return args


async def main_async(args: argparse.Namespace, console: Console) -> Report:
    sizes = QUICK if args.quick else FULL
    report = Report(
        options={"cases": list(args.cases), "pg_analyze_before_replay": args.pg_analyze}
    )
    backends = BACKENDS if args.backend == "all" else (args.backend,)
    for backend in backends:
        try:
            if backend == "sqlite":
                if args.dir is not None:
                    args.dir.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(
                    prefix="oddstream-bench-", dir=args.dir
                ) as workdir:
                    await bench_sqlite(args.cases, sizes, Path(workdir), report, console)
            else:
                await bench_postgres(
                    args.cases, sizes, args.pg_url, report, console, args.pg_analyze
                )
        except Exception as exc:
            report.problems.append(f"{backend}: not run: {type(exc).__name__}: {exc}")
            traceback.print_exc(file=sys.stderr)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=110)  # keep the table on one line per row in logs
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    report = asyncio.run(main_async(args, console))
    elapsed = time.perf_counter() - started
    render(report, sizes, args.quick, elapsed, args.out, console)
    write_json(report, args.quick, sizes, elapsed, args.out)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
