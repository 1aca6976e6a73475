"""How long the tote read model takes to be caught up at start: from its snapshot, or by
replaying the whole log.

One log per backend (SQLite: a fresh file in a temporary directory; PostgreSQL: a fresh
schema, dropped at the end), built once from the race aggregate's own ``decide`` /
``evolve``: many races run to the end (bets, close, result, dividends, settlements), a
few abandoned, some still open with many bets at the end of the log, races interleaved
as they are live, and wallet credits and debits in between. Then, in turns, each on a
new store connection:

a) replay start: ``ToteView(store, snapshot_every=None)`` (a memory checkpoint: the log
   from 0, as before snapshots);
b) snapshot start: ``ToteView(store)`` with a snapshot at the head of the log;
c) snapshot start with ``--tail`` (10,000) events after the snapshot.

Each is timed from ``ToteView(...)`` to ``wait_caught_up``; every view is then checked to
answer exactly what the replay answers (races, boards, bets, dividends, position), and
the exit status is 1 on any mismatch. See ``bench/README.md``.

Run ``.venv/bin/python bench/restart.py [--quick] [--backend sqlite|postgres|all]``.
Results go to ``bench/results/restart.json``.

``--view odds [--markets N] [--baseline-src DIR]``: the fixed-odds read model
(``OddsView``) instead, on SQLite: a log of ``--markets`` (100,000) markets built from
the market aggregate's ``decide`` / ``evolve`` (10% still open at the end, the others
resulted, voided or deleted), then each case started in a process of its own, in turns,
``--reps`` times: ``baseline_replay`` (the code of ``--baseline-src``, e.g. a worktree at
main: the whole log), ``replay`` (this code, the whole log, markets over let go),
``snapshot`` (from a snapshot at the head), ``snapshot_plus_tail`` (from a snapshot 2% of
the markets back) and ``keep_all`` (this code letting nothing go). Timed from
``OddsView(...)`` to caught up; memory is the process's resident memory then, less what
it was before, with the store closed. Every case must read 300 sampled markets alike, and
the listings must match; results go under ``odds`` in the results file, the tote's kept.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import inspect
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

from common import machine, package_version, write_results
from oddstream.domain.tote.events import PoolConfig, Runner
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.race import (
    AbandonRace,
    CloseBetting,
    DeclareDividends,
    DeclareResult,
    OpenBetting,
    PlaceBet,
    RaceCommand,
    RaceState,
    ScheduleRace,
    decide,
    evolve,
)
from oddstream.domain.wallet import wallet as wallet_domain
from oddstream.eventstore import EventStore, NewEvent, StreamAppend
from oddstream.eventstore.postgres import PostgresEventStore
from oddstream.eventstore.sqlite import SqliteEventStore
from oddstream.projections.tote_view import ToteView
from oddstream.runtime.codec import registry
from oddstream.runtime.race_writer import race_stream
from oddstream.runtime.wallet_writer import wallet_stream

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
RESULTS = Path(__file__).resolve().parent / "results" / "restart.json"
BACKENDS = ("sqlite", "postgres")
CASES = ("replay", "snapshot", "snapshot_plus_tail")
FULL_EVENTS, QUICK_EVENTS = 1_000_000, 100_000
#: the longest a start may take before the run is called failed
CATCH_UP_TIMEOUT = 600.0

# The log's make-up (shares of the events).
WALLET_SHARE = 0.05  # wallet credits and debits, passed over by the tote view
OPEN_SHARE = 0.10  # bets on races still open at the end of the log
ABANDONED_SHARE = 0.03  # races abandoned (their bets refunded) instead of resulted
LIVE_RACES = 8  # races taking bets at once while finished ones are written
BETS_PER_RACE = (100, 1000)  # a finished race's bets, uniform
TAKEOUTS = {
    PoolType.WIN: 1500,
    PoolType.PLACE: 1500,
    PoolType.SHOW: 1500,
    PoolType.EXACTA: 2000,
    PoolType.QUINELLA: 2000,
    PoolType.TRIFECTA: 2500,
}
POOL_WEIGHTS = [50, 15, 10, 10, 10, 5]
STAKES = [200, 200, 500, 500, 1000, 1000, 2000, 5000, 10000]
WALLET_BET_SHARE = 0.2
WALLETS = 2000
APPEND_EVENTS = 1000  # events per append while building
#: a snapshot as the store keeps it: its parts, in order
Parts = tuple[bytes, ...]


# --------------------------------------------------------------------------- the log


@dataclass
class LogPlan:
    """How many events, of what, and from which seed."""

    events: int
    open_races: int
    seed: int

    @property
    def open_from(self) -> int:
        """Events written before the open races start taking bets."""
        return int(self.events * (1 - OPEN_SHARE))


@dataclass
class LogStats:
    """What the built log holds."""

    events: int = 0
    race_events: int = 0
    wallet_events: int = 0
    races: int = 0
    finished: int = 0
    abandoned: int = 0
    open_races: int = 0
    bets: int = 0
    seconds: float = 0.0
    #: a few bet ids (race, bet) to ask the views about
    sample_bets: list[tuple[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "race_events": self.race_events,
            "wallet_events": self.wallet_events,
            "races": self.races,
            "finished_races": self.finished,
            "abandoned_races": self.abandoned,
            "open_races": self.open_races,
            "bets": self.bets,
            "build_seconds": round(self.seconds, 2),
        }


def _race(
    rng: random.Random, race_id: str, bets: int | None, abandon: bool, stats: LogStats
) -> Iterator[tuple[str, NewEvent]]:
    """One race's events, through the aggregate: ``bets`` bets then the end of the race
    (``None``: bets for ever, the race stays open)."""
    stream = race_stream(race_id)
    state = RaceState()
    field_size = rng.randint(6, 14)
    strength = [rng.lognormvariate(0, 0.7) for _ in range(field_size)]
    runners = list(range(1, field_size + 1))

    def run(command: RaceCommand) -> Iterator[tuple[str, NewEvent]]:
        for event in decide(state, command):
            evolve(state, event)
            yield stream, registry.to_new_event(event)

    yield from run(
        ScheduleRace(
            race_id=race_id,
            meeting=f"Bench R{race_id}",
            venue="Flemington",
            post_time="2026-11-21T15:00:00+11:00",
            runners=tuple(Runner(n, f"Runner {n}") for n in runners),
            pools=tuple(
                PoolConfig(pool=p, takeout_bps=t, profile="us", min_stake_cents=100)
                for p, t in TAKEOUTS.items()
            ),
        )
    )
    yield from run(OpenBetting(race_id))
    kinds = list(TAKEOUTS)
    placed = 0
    while bets is None or placed < bets:
        kind = rng.choices(kinds, weights=POOL_WEIGHTS)[0]
        picks: list[int] = []
        while len(picks) < kind.runners_per_selection:
            pick = rng.choices(runners, weights=strength)[0]
            if pick not in picks:
                picks.append(pick)
        wallet = f"w{rng.randrange(WALLETS)}" if rng.random() < WALLET_BET_SHARE else None
        bet_id = f"{rng.getrandbits(64):016x}"
        placed += 1
        stats.bets += 1
        if rng.random() < 0.002:
            stats.sample_bets.append((race_id, bet_id))
        yield from run(
            PlaceBet(
                race_id=race_id,
                bet_id=bet_id,
                pool=kind,
                selection=tuple(picks),
                stake_cents=rng.choice(STAKES),
                wallet_id=wallet,
            )
        )
    if abandon:
        stats.abandoned += 1
        yield from run(AbandonRace(race_id, "weather"))
        return
    yield from run(CloseBetting(race_id))
    order: list[int] = []
    left = list(zip(runners, strength, strict=True))
    while left:
        order.append(left.pop(rng.choices(range(len(left)), weights=[s for _, s in left])[0])[0])
    yield from run(DeclareResult(race_id, tuple((r,) for r in order)))
    yield from run(DeclareDividends(race_id))
    stats.finished += 1


def _wallets(rng: random.Random) -> Iterator[tuple[str, NewEvent]]:
    """Credits and debits of :data:`WALLETS` wallets, through the wallet aggregate."""
    states: dict[str, wallet_domain.WalletState] = {}
    while True:
        wallet_id = f"w{rng.randrange(WALLETS)}"
        state = states.get(wallet_id)
        if state is None:
            state = states[wallet_id] = wallet_domain.WalletState()
        command: wallet_domain.WalletCommand
        if state.balance > 5000 and rng.random() < 0.4:
            command = wallet_domain.Debit(wallet_id=wallet_id, amount_cents=rng.choice(STAKES))
        else:
            command = wallet_domain.Credit(
                wallet_id=wallet_id, amount_cents=10 * rng.choice(STAKES)
            )
        for event in wallet_domain.decide(state, command):
            state = wallet_domain.evolve(state, event)
            states[wallet_id] = state
            yield wallet_stream(wallet_id), registry.to_new_event(event)


def log_events(plan: LogPlan, stats: LogStats) -> Iterator[tuple[str, NewEvent]]:
    """The log, ``plan.events`` events in the order they are appended: races interleaved
    a few events at a time (as bets come in live), wallet events in between."""
    rng = random.Random(plan.seed)
    wallets = _wallets(random.Random(plan.seed + 1))
    live: list[Iterator[tuple[str, NewEvent]]] = []
    number = 0

    def new_race(bets: int | None) -> Iterator[tuple[str, NewEvent]]:
        nonlocal number
        number += 1
        stats.races += 1
        abandon = bets is not None and rng.random() < ABANDONED_SHARE
        return _race(rng, f"{plan.seed}-{number:06d}", bets, abandon, stats)

    opened = False
    emitted = 0
    while emitted < plan.events:
        if not opened and emitted >= plan.open_from:
            opened = True
            stats.open_races = plan.open_races
            live += [new_race(None) for _ in range(plan.open_races)]
        if not opened:
            while len(live) < LIVE_RACES:
                live.append(new_race(rng.randint(*BETS_PER_RACE)))
        if rng.random() < WALLET_SHARE:
            stats.wallet_events += 1
            emitted += 1
            yield next(wallets)
            continue
        race = rng.choice(live)
        for _ in range(rng.randint(1, 10)):
            item = next(race, None)
            if item is None:
                live.remove(race)
                break
            stats.race_events += 1
            emitted += 1
            yield item
            if emitted >= plan.events:
                break


async def append_events(
    store: EventStore, events: Iterator[tuple[str, NewEvent]], count: int
) -> int:
    """Append ``count`` events from ``events`` in transactions of about
    :data:`APPEND_EVENTS` (one part per stream); returns how many were appended."""
    done = 0
    while done < count:
        parts: dict[str, list[NewEvent]] = {}
        taken = 0
        for stream, event in events:
            parts.setdefault(stream, []).append(event)
            taken += 1
            if taken == APPEND_EVENTS or done + taken == count:
                break
        if not taken:
            break
        await store.append_multi([StreamAppend(s, evs) for s, evs in parts.items()])
        done += taken
    return done


# --------------------------------------------------------------------------- checks


def picture(view: ToteView, sample_bets: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """What the view answers, as plain values: every race it holds (its whole state),
    each one's board and dividends, some bets, its position."""
    races = view.races()
    sample_bets = [*sample_bets[:20], *sample_bets[-200:]]
    return {
        "position": view.position,
        "held": view.held,
        "races": [msgspec.to_builtins(_race_state(r)) for r in races],
        "boards": [msgspec.to_builtins(view.board(r.race_id)) for r in races],
        "dividends": [msgspec.to_builtins(view.dividends(r.race_id)) for r in races],
        "bets": [msgspec.to_builtins(view.bet(race, bet)) for race, bet in sample_bets],
        "bets_named": [msgspec.to_builtins(view.bets_named(bet)) for _, bet in sample_bets],
    }


def _race_state(state: RaceState) -> dict[str, Any]:
    return {
        "race_id": state.race_id,
        "status": state.status.value,
        "runners": state.runners,
        "scratched": sorted(state.scratched),
        "pools": {
            kind.value: (p.gross, p.carry_in, sorted(p.stakes.items()))
            for kind, p in state.pools.items()
        },
        "bets": {bet_id: msgspec.to_builtins(b) for bet_id, b in state.bets.items()},
        "placings": state.placings,
        "declared": msgspec.to_builtins(state.declared),
    }


def differences(want: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Which parts of two pictures differ (empty: the same)."""
    return [key for key in want if want[key] != got.get(key)]


# --------------------------------------------------------------------------- runs


@dataclass
class Backend:
    """One backend's log and results."""

    name: str
    open_store: Callable[[], Awaitable[EventStore]]
    stats: LogStats = field(default_factory=LogStats)
    times: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CASES})
    load_s: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CASES})
    cpu_s: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CASES})
    open_s: list[float] = field(default_factory=list)
    snapshot_write_s: list[float] = field(default_factory=list)
    snapshot_encode_s: float | None = None
    snapshot_bytes: int | None = None
    snapshot_parts: int | None = None
    tail_snapshot_bytes: int | None = None
    snapshot_position: int = 0
    tail_snapshot_position: int = 0
    checks: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    #: after writing: what a database that has been running would have done by now
    after_writes: Callable[[], Awaitable[None]] | None = None

    async def prepare(self) -> None:
        if self.after_writes is not None:
            await self.after_writes()

    def as_json(self) -> dict[str, Any]:
        write = self.snapshot_write_s
        return {
            "replay_s": _rounded(self.times["replay"]),
            "snapshot_s": _rounded(self.times["snapshot"]),
            "snapshot_plus_10k_s": _rounded(self.times["snapshot_plus_tail"]),
            "snapshot_bytes": self.snapshot_bytes,
            "snapshot_parts": self.snapshot_parts,
            "snapshot_write_s": round(statistics.median(write), 4) if write else None,
            "snapshot_write_samples_s": _rounded(write),
            "snapshot_encode_s": _round(self.snapshot_encode_s),
            "median_s": {c: _round(_median(self.times[c])) for c in CASES},
            "load_s": {c: _rounded(v) for c, v in self.load_s.items()},
            "cpu_s": {c: _rounded(v) for c, v in self.cpu_s.items()},
            "open_store_s": _rounded(self.open_s),
            "snapshot_position": self.snapshot_position,
            "tail_snapshot_position": self.tail_snapshot_position,
            "tail_snapshot_bytes": self.tail_snapshot_bytes,
            "views_compared": self.checks,
            "log": self.stats.as_json(),
            **self.info,
        }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def _rounded(values: Sequence[float]) -> list[float]:
    return [round(v, 4) for v in values]


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


@contextlib.asynccontextmanager
async def connection(backend: Backend) -> AsyncIterator[EventStore]:
    """A new store connection (timed apart: ``open_store_s``)."""
    started = time.perf_counter()
    store = await backend.open_store()
    task = getattr(store, "_index_task", None)
    if task is not None:  # PostgreSQL checks its request index in the background
        await task
    backend.open_s.append(time.perf_counter() - started)
    try:
        yield store
    finally:
        await store.close()


@dataclass
class Start:
    """A view started and caught up."""

    view: ToteView
    #: from ``ToteView(...)`` to caught up
    seconds: float
    #: the part of them spent loading the checkpoint (snapshot read and restore)
    load: float
    #: this process's CPU seconds in that time (all its threads: SQLite's readers too)
    cpu: float


async def timed_start(
    store: EventStore, snapshot_every: float | None, resume_at: int | None = None
) -> Start:
    """Start a view and wait until it is caught up. ``resume_at``: the position the view
    must resume from (else it replayed)."""
    gc.collect()
    cpu = time.process_time()
    started = time.perf_counter()
    view = ToteView(store, snapshot_every=snapshot_every)
    resumed = await view.runner.load()  # what start() does first; timed apart
    loaded = time.perf_counter()
    if resume_at is not None and resumed != resume_at:
        raise RuntimeError(f"the view resumed from {resumed}, not from {resume_at}")
    await view.start()
    if not await view.wait_caught_up(CATCH_UP_TIMEOUT):
        raise RuntimeError(f"the view was not caught up within {CATCH_UP_TIMEOUT} s")
    return Start(view, time.perf_counter() - started, loaded - started, time.process_time() - cpu)


async def build(
    backend: Backend, plan: LogPlan, tail: int, console: Console
) -> tuple[Parts, Parts]:
    """Write the log and make the two snapshots: one ``tail`` events before the head
    (``SnapshotCheckpoint`` at stop of a view caught up then) and one at the head.
    Returns both snapshots' data."""
    stats = backend.stats
    events = log_events(plan, stats)
    started = time.perf_counter()
    async with connection(backend) as store:
        await append_events(store, events, plan.events - tail)
        stats.seconds = time.perf_counter() - started
        console.print(
            f"  {backend.name}: {plan.events - tail:,} events written in {stats.seconds:.1f} s"
        )
        await backend.prepare()
        start = await timed_start(store, 30.0, 0)  # no snapshot yet: replays
        view = start.view
        console.print(f"  {backend.name}: first view caught up in {start.seconds:.2f} s")
        await view.stop()
        found = await store.load_snapshot(view.name)
        if found is None:
            raise RuntimeError("stop() wrote no snapshot")
        before_tail = found.parts
        backend.tail_snapshot_position = found.position
        backend.tail_snapshot_bytes = found.size
        started = time.perf_counter()
        await append_events(store, events, tail)
        stats.seconds += time.perf_counter() - started
        head = await store.head_position()
        backend.snapshot_position = stats.events = head
        await backend.prepare()
        if head != plan.events or backend.tail_snapshot_position != head - tail:
            raise RuntimeError(
                f"the log holds {head} events (expected {plan.events}); "
                f"snapshot at {backend.tail_snapshot_position}"
            )
        view = (await timed_start(store, 30.0, head - tail)).view  # from the first snapshot
        backend.snapshot_encode_s = _encode_seconds(view)
        await view.stop()
        found = await store.load_snapshot(view.name)
        if found is None or found.position != head:
            raise RuntimeError(f"stop() wrote no snapshot at the head ({head}): {found}")
        backend.snapshot_bytes = found.size
        backend.snapshot_parts = len(found.parts)
    return before_tail, found.parts


def _encode_seconds(view: ToteView) -> float:
    started = time.perf_counter()
    for _part in view.snapshot():  # encoded part by part as they are drawn
        pass
    return time.perf_counter() - started


async def run_case(
    backend: Backend,
    case: str,
    snapshots: dict[str, tuple[int, Parts]],
    want: dict[str, Any] | None,
    problems: list[str],
) -> dict[str, Any]:
    """One timed start of ``case`` on a new connection; the view's picture."""
    async with connection(backend) as store:
        if case != "replay":  # put the case's snapshot back (the last start moved it on)
            position, data = snapshots[case]
            await store.save_snapshot(ToteView.name, position, data)
        if case == "replay":
            start = await timed_start(store, None, 0)
        else:
            start = await timed_start(store, 30.0, snapshots[case][0])
        view = start.view
        try:
            head = await store.head_position()
            if view.position != head:
                problems.append(f"{backend.name} {case}: caught up at {view.position}, head {head}")
            got = picture(view, backend.stats.sample_bets)
        finally:
            stopping = time.perf_counter()
            await view.stop()
            if case == "snapshot_plus_tail":  # stop() snapshots the head: the write, timed
                backend.snapshot_write_s.append(time.perf_counter() - stopping)
    backend.times[case].append(start.seconds)
    backend.load_s[case].append(start.load)
    backend.cpu_s[case].append(start.cpu)
    if want is not None:
        backend.checks += 1
        diff = differences(want, got)
        if diff:
            problems.append(
                f"{backend.name} {case}: the view answers differently from a replay "
                f"({', '.join(diff)})"
            )
    del view
    return got


async def bench_backend(
    backend: Backend, plan: LogPlan, tail: int, reps: int, problems: list[str], console: Console
) -> None:
    before_tail, at_head = await build(backend, plan, tail, console)
    snapshots = {
        "snapshot": (backend.snapshot_position, at_head),
        "snapshot_plus_tail": (backend.tail_snapshot_position, before_tail),
    }
    want: dict[str, Any] | None = None
    for rep in range(reps):
        # interleaved, each case first in turn
        order = CASES[rep % len(CASES) :] + CASES[: rep % len(CASES)]
        for case in order:
            got = await run_case(backend, case, snapshots, want, problems)
            if want is None:  # the first start's answers: what every other must match
                want = got
                if case != "replay":
                    raise AssertionError("the first start must be a replay")
        console.print(
            f"  {backend.name}: round {rep + 1}/{reps}: "
            + ", ".join(f"{c} {backend.times[c][-1]:.3f} s" for c in CASES)
        )
    # the replay as first seen is what the others matched; match it to a rebuild too
    async with connection(backend) as store:
        replayed = ToteView(store, snapshot_every=None)
        await replayed.rebuild()
        if want is not None and differences(want, picture(replayed, backend.stats.sample_bets)):
            problems.append(f"{backend.name}: a rebuild answers differently from a start")
        backend.checks += 1


def pg_admin(url: str, *statements: sql.Composed) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for st in statements:
            conn.execute(st)


def pg_analyze(url: str, schema: str) -> None:
    """``ANALYZE`` the schema's tables (as autovacuum would have on a running server)."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
        for (table,) in tables:
            conn.execute(
                sql.SQL("ANALYZE {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            )


def pg_settings(url: str) -> dict[str, str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {
            name: str(conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0])  # type: ignore[index]
            for name in ("server_version", "synchronous_commit", "shared_buffers")
        }


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def main_async(args: argparse.Namespace, console: Console) -> tuple[list[Backend], list[str]]:
    plan = LogPlan(events=args.events, open_races=args.open_races, seed=args.seed)
    problems: list[str] = []
    done: list[Backend] = []
    backends = BACKENDS if args.backend == "all" else (args.backend,)
    for name in backends:
        try:
            if name == "sqlite":
                if args.dir is not None:
                    args.dir.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(prefix="oddstream-restart-", dir=args.dir) as d:
                    path = Path(d) / "restart.db"

                    async def open_sqlite(path: Path = path) -> EventStore:
                        return await SqliteEventStore.open(path)

                    backend = Backend(name, open_sqlite, info={"sqlite": sqlite3.sqlite_version})
                    await bench_backend(backend, plan, args.tail, args.reps, problems, console)
                    backend.info["file_bytes"] = path.stat().st_size
            else:
                schema = f"bench_{uuid.uuid4().hex[:12]}_restart"
                url = args.pg_url

                async def open_pg(url: str = url, schema: str = schema) -> EventStore:
                    return await PostgresEventStore.open(url, schema=schema)

                async def analyze(url: str = url, schema: str = schema) -> None:
                    await in_thread(pg_analyze, url, schema)

                backend = Backend(
                    name,
                    open_pg,
                    info={"server": await in_thread(pg_settings, url), "analyzed": True},
                    after_writes=analyze,
                )
                try:
                    await bench_backend(backend, plan, args.tail, args.reps, problems, console)
                finally:
                    with contextlib.suppress(Exception):
                        await in_thread(
                            pg_admin,
                            url,
                            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                                sql.Identifier(schema)
                            ),
                        )
            done.append(backend)
        except Exception as exc:
            problems.append(f"{name}: not run: {type(exc).__name__}: {exc}")
            traceback.print_exc(file=sys.stderr)
    return done, problems


# --------------------------------------------------------------------------- the odds view
#
# ``--view odds``: the fixed-odds read model (``OddsView``) at start and in memory, this
# tree's code against a baseline tree's (``--baseline-src``, e.g. a worktree at main),
# each start in a process of its own (``--odds-child``) so that its resident memory is
# its own. Results go under ``odds`` in the results file, the tote's figures kept.

ODDS_MARKETS, ODDS_QUICK_MARKETS = 100_000, 10_000
OWN_SRC = Path(__file__).resolve().parent.parent / "src"
#: a market's fate at the end of the log (shares): open, resulted, voided, deleted
ODDS_FATES = (("open", 0.10), ("resulted", 0.55), ("voided", 0.15), ("deleted", 0.20))
ODDS_BET_SHARE = 0.3  # markets with bets (1-4)
ODDS_LIVE = 8  # markets whose events interleave in the log
ODDS_SAMPLE = 300  # markets read by ExternalID in every case, to compare the answers
ODDS_CASES = ("baseline_replay", "replay", "snapshot", "snapshot_plus_tail")


def _odds_market_events(rng: random.Random, market_id: str) -> tuple[str, list[Any]]:
    """One market's events from the domain's own ``decide`` / ``evolve``; its fate."""
    from oddstream.application.odds import DEFAULT_LIMITS
    from oddstream.domain.fixedodds import market as fx
    from oddstream.domain.fixedodds.commands import (
        CloseMarket,
        CreateMarket,
        DeleteMarket,
        ResultMarket,
        UpdatePrices,
        VoidMarket,
    )
    from oddstream.domain.fixedodds.commands import (
        PlaceBet as PlaceMarketBet,
    )
    from oddstream.domain.fixedodds.events import MoneyLine, Outcome
    from oddstream.domain.fixedodds.odds import Odds

    draw = rng.random() < 0.5  # a market keeps its shape: three-way or two-way

    def line() -> MoneyLine:
        return MoneyLine(
            home=Odds.from_decimal(f"{rng.randint(105, 900) / 100:.2f}"),
            away=Odds.from_decimal(f"{rng.randint(105, 900) / 100:.2f}"),
            draw=Odds.from_decimal(f"{rng.randint(250, 450) / 100:.2f}") if draw else None,
        )

    state = fx.MarketState()
    events: list[Any] = []

    def run(command: Any) -> None:
        for event in fx.decide(state, command):
            fx.evolve(state, event)
            events.append(event)

    provider = f"p{rng.randrange(20)}"
    run(
        CreateMarket(
            market_id=market_id,
            game_id=f"g{rng.getrandbits(32)}",
            provider=provider,
            money_line=line(),
            limits=DEFAULT_LIMITS,
        )
    )
    for _ in range(rng.randrange(4)):
        run(UpdatePrices(market_id=market_id, provider=provider, money_line=line()))
    if rng.random() < ODDS_BET_SHARE:
        for n in range(rng.randint(1, 4)):
            outcome = rng.choice([o for o in (Outcome.HOME, Outcome.AWAY) if o in state.prices])
            run(
                PlaceMarketBet(
                    market_id=market_id,
                    bet_id=f"b{n}",
                    outcome=outcome,
                    stake_cents=rng.choice(STAKES),
                    price=state.prices[outcome],
                    wallet_id=None,
                )
            )
    r, fate = rng.random(), "open"
    for name, share in ODDS_FATES:
        if r < share:
            fate = name
            break
        r -= share
    if fate == "resulted":
        run(CloseMarket(market_id=market_id, provider=provider))
        run(ResultMarket(market_id=market_id, provider=provider, winners=(Outcome.HOME,)))
    elif fate == "voided":
        run(VoidMarket(market_id=market_id, provider=provider, reason="abandoned"))
    elif fate == "deleted":
        if state.bets:
            run(VoidMarket(market_id=market_id, provider=provider, reason="abandoned"))
        run(DeleteMarket(market_id=market_id, provider=provider))
    return fate, events


def _odds_log(
    first: int, end: int, seed: int, fates: dict[str, int], ids: list[str]
) -> Iterator[tuple[str, NewEvent]]:
    """The events of markets ``first`` to ``end`` (by creation), :data:`ODDS_LIVE`
    markets interleaved at a time; each group of them from a seed of its own, so the
    log is the same however it is cut."""
    from oddstream.runtime.market_writer import market_stream

    for start in range(first, end, ODDS_LIVE):
        rng = random.Random(seed * 1_000_003 + start)
        group = []
        for _ in range(start, min(start + ODDS_LIVE, end)):
            market_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            fate, events = _odds_market_events(rng, market_id)
            fates[fate] = fates.get(fate, 0) + 1
            ids.append(market_id)
            group.append((market_stream(market_id), events))
        while group:
            for stream, events in group:
                taken = 1 + rng.randrange(3)
                for event in events[:taken]:
                    yield stream, registry.to_new_event(event)
                del events[:taken]
            group = [(stream, events) for stream, events in group if events]


def _rss() -> int:
    """This process's resident memory, bytes."""
    for row in Path("/proc/self/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) * 1024
    return 0


async def odds_child(case: str, path: Path, sample: list[str]) -> dict[str, Any]:
    """One start of the odds view on the log at ``path`` (in its own process, with the
    code ``PYTHONPATH`` gives): its time to be caught up, the memory it holds then (the
    process's resident memory less what it was before the store was opened, measured
    with the store closed: SQLite's page cache, 64 MiB a connection, is not the view's),
    and what it answers."""
    from oddstream.application.odds import record_json
    from oddstream.consumers.checkpoints import release_free_memory
    from oddstream.projections.odds_view import OddsView

    def resident() -> int:
        gc.collect()
        release_free_memory()
        return _rss()

    bounded = "keep_finished" in inspect.signature(OddsView).parameters
    before = resident()
    store = await SqliteEventStore.open(path)
    head = await store.head_position()
    started, cpu = time.perf_counter(), time.process_time()
    if case == "baseline_replay" or not bounded:
        view = OddsView(store)  # the baseline's only kind: the whole log from 0
    elif case == "replay":
        view = OddsView(store, snapshot_every=None)
    elif case == "keep_all":
        view = OddsView(store, keep_finished=10**12, snapshot_every=None)
    else:  # snapshot, snapshot_plus_tail, save
        view = OddsView(store)
    await view.start()
    caught_up = await view.wait_for(head, CATCH_UP_TIMEOUT)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    with_store = resident() - before
    out: dict[str, Any] = {"case": case, "caught_up": caught_up, "seconds": seconds}
    started = time.perf_counter()
    await view.stop()  # a snapshot written if it has one and moved (save: timed)
    if case == "save":
        out["snapshot_write_s"] = time.perf_counter() - started
    listing = msgspec.json.encode([record_json(r) for r in view.records()])
    await store.close()
    out |= {
        "cpu_s": cpu,
        "rss_bytes": resident() - before,
        "rss_with_store_bytes": with_store,
        "held": len(view),
        "position": view.position,
        "listing_sha256": hashlib.sha256(listing).hexdigest(),
    }
    del listing
    store = await SqliteEventStore.open(path)
    view._store = store  # the reads of markets let go: from their streams
    find = getattr(view, "find", None)
    answers = []
    for market_id in sample:
        record = await find(market_id) if find is not None else view.get(market_id)
        answers.append(None if record is None else record_json(record))
    out["sample_sha256"] = hashlib.sha256(msgspec.json.encode(answers)).hexdigest()
    await store.close()
    return out


@dataclass
class OddsRun:
    """The odds part's log and the runs of each case."""

    markets: int
    tail_markets: int
    events: int = 0
    tail_events: int = 0
    fates: dict[str, int] = field(default_factory=dict)
    build_s: float = 0.0
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    snapshot_bytes: int = 0
    snapshot_parts: int = 0
    snapshot_write_s: float = 0.0


def _odds_child_run(
    args: argparse.Namespace, case: str, path: Path, sample: Path, src: Path
) -> dict[str, Any]:
    bench = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{bench}"}
    command = [sys.executable, str(Path(__file__).resolve()), "--odds-child", case]
    command += ["--odds-store", str(path), "--odds-sample", str(sample)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{case} ({src}): {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def odds_bench(args: argparse.Namespace, console: Console) -> tuple[OddsRun, list[str]]:
    """Build the markets' log, then time and measure each case in turns."""

    own = OWN_SRC
    problems: list[str] = []
    run = OddsRun(markets=args.markets, tail_markets=max(1, args.markets // 50))
    ids: list[str] = []
    cases = [c for c in (*ODDS_CASES, "keep_all") if c != "baseline_replay" or args.baseline_src]
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="oddstream-restart-odds-", dir=args.dir) as d:
        path, sample_path = Path(d) / "odds.db", Path(d) / "sample.json"
        started = time.perf_counter()
        store = await SqliteEventStore.open(path)
        cut = run.markets - run.tail_markets
        run.events = await append_events(
            store, _odds_log(0, cut, args.seed, run.fates, ids), 1 << 62
        )
        await store.close()
        # snapshot A: at the end of the log before its tail
        sample_path.write_text("[]")
        _odds_child_run(args, "save", path, sample_path, own)
        store = await SqliteEventStore.open(path)
        found = await store.load_snapshot("odds-view")
        assert found is not None
        snapshot_a = (found.position, tuple(found.parts))
        tail = _odds_log(cut, run.markets, args.seed, run.fates, ids)
        run.tail_events = await append_events(store, tail, 1 << 62)
        run.events += run.tail_events
        await store.close()
        run.build_s = time.perf_counter() - started
        # snapshot B: at the head, from A and the tail (its write timed)
        saved = _odds_child_run(args, "save", path, sample_path, own)
        run.snapshot_write_s = saved["snapshot_write_s"]
        store = await SqliteEventStore.open(path)
        found = await store.load_snapshot("odds-view")
        assert found is not None
        snapshot_b = (found.position, tuple(found.parts))
        run.snapshot_bytes = sum(len(p) for p in snapshot_b[1])
        run.snapshot_parts = len(snapshot_b[1])
        await store.close()
        rng = random.Random(args.seed)
        sample_path.write_text(json.dumps(rng.sample(ids, min(ODDS_SAMPLE, len(ids)))))
        console.print(
            f"odds log: {run.markets:,} markets, {run.events:,} events ({run.fates}), "
            f"built in {run.build_s:.1f} s; snapshot {run.snapshot_bytes:,} bytes"
        )
        for rep in range(args.reps):
            for case in cases[rep % len(cases) :] + cases[: rep % len(cases)]:
                if case.startswith("snapshot"):
                    position, parts = snapshot_b if case == "snapshot" else snapshot_a
                    store = await SqliteEventStore.open(path)
                    await store.save_snapshot("odds-view", position, parts)
                    await store.close()
                src = Path(args.baseline_src) if case == "baseline_replay" else own
                try:
                    result = _odds_child_run(args, case, path, sample_path, src)
                except RuntimeError as exc:
                    problems.append(str(exc))
                    continue
                run.runs.setdefault(case, []).append(result)
                console.print(
                    f"  {case}: {result['seconds']:.2f} s, {result['rss_bytes'] / 1e6:.1f} MB, "
                    f"{result['held']:,} held"
                )
    problems += _odds_checks(run)
    return run, problems


def _odds_checks(run: OddsRun) -> list[str]:
    """Every case caught up and answers the same: the sampled markets alike in all (let
    go or not), and the new view's listing alike in each of its starts."""
    problems: list[str] = []
    results = [r for runs in run.runs.values() for r in runs]
    problems += [f"{r['case']}: not caught up" for r in results if not r["caught_up"]]
    if len({r["sample_sha256"] for r in results}) > 1:
        problems.append("the sampled markets do not read the same in every case")
    bounded = [r for c in ("replay", "snapshot", "snapshot_plus_tail") for r in run.runs.get(c, [])]
    if len({r["listing_sha256"] for r in bounded}) > 1:
        problems.append("the odds view lists differently after a replay and a snapshot")
    full = [r for c in ("baseline_replay", "keep_all") for r in run.runs.get(c, [])]
    if len({r["listing_sha256"] for r in full}) > 1:
        problems.append("keep_all does not list what the baseline lists")
    return problems


def odds_json(run: OddsRun, args: argparse.Namespace) -> dict[str, Any]:
    def per_case(case: str) -> dict[str, Any]:
        runs = run.runs.get(case, [])
        rss = _median([r["rss_bytes"] for r in runs])
        held = runs[0]["held"] if runs else 0
        return {
            "seconds": _rounded([r["seconds"] for r in runs]),
            "median_s": _round(_median([r["seconds"] for r in runs])),
            "cpu_s": _round(_median([r["cpu_s"] for r in runs])),
            "rss_bytes": int(rss) if rss is not None else None,
            "rss_with_store_bytes": _median([r["rss_with_store_bytes"] for r in runs]),
            "held_markets": held,
            "bytes_per_held_market": round(rss / held) if rss and held else None,
            "bytes_per_market_in_log": round(rss / run.markets) if rss else None,
        }

    cases = {c: per_case(c) for c in (*ODDS_CASES, "keep_all") if c in run.runs}
    base = cases.get("baseline_replay", {})

    def ratio_of(case: str, key: str) -> float | None:
        a, b = base.get(key), cases.get(case, {}).get(key)
        return round(a / b, 1) if a and b else None

    baseline_commit = None
    if args.baseline_src:
        done = subprocess.run(
            ["git", "-C", str(args.baseline_src), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        )
        baseline_commit = done.stdout.strip() or None
    return {
        "markets": run.markets,
        "events": run.events,
        "tail_markets": run.tail_markets,
        "tail_events": run.tail_events,
        "fates": run.fates,
        "build_s": round(run.build_s, 1),
        "cases": cases,
        "baseline_over": {
            c: {"seconds": ratio_of(c, "median_s"), "memory": ratio_of(c, "rss_bytes")}
            for c in cases
            if c != "baseline_replay"
        },
        "snapshot_bytes": run.snapshot_bytes,
        "snapshot_parts": run.snapshot_parts,
        "snapshot_write_s": round(run.snapshot_write_s, 3),
        "baseline_src": str(args.baseline_src) if args.baseline_src else None,
        "baseline_commit": baseline_commit,
        "reps": args.reps,
        "timed_region": (
            "OddsView(...) to wait_for(head), each start in a new process with the code its "
            "PYTHONPATH gives; rss_bytes is the process's resident memory then less before "
            "OddsView(...) (after gc and malloc_trim both times)"
        ),
    }


# --------------------------------------------------------------------------- output


def ratio(backend: Backend, case: str) -> float | None:
    replay, other = _median(backend.times["replay"]), _median(backend.times[case])
    return round(replay / other, 1) if replay and other else None


def render(backends: list[Backend], problems: list[str], console: Console) -> None:
    table = Table(title="tote view: start until caught up (median of the runs)")
    for col in ("case", "backend", "events", "runs", "seconds", "replay / this"):
        table.add_column(col, justify="left" if col in ("case", "backend") else "right")
    labels = {
        "replay": "a) replay from 0",
        "snapshot": "b) snapshot at head",
        "snapshot_plus_tail": "c) snapshot + tail",
    }
    for b in backends:
        for case in CASES:
            median = _median(b.times[case])
            r = ratio(b, case)
            events = b.stats.events if case == "replay" else b.stats.events - b.snapshot_position
            if case == "snapshot_plus_tail":
                events = b.snapshot_position - b.tail_snapshot_position
            table.add_row(
                labels[case],
                b.name,
                f"{events:,}",
                str(len(b.times[case])),
                f"{median:.3f}" if median is not None else "-",
                "1.0" if case == "replay" else (f"{r:.1f}" if r else "-"),
            )
    console.print(table)
    for b in backends:
        write = _median(b.snapshot_write_s)
        console.print(
            f"{b.name}: log {b.stats.events:,} events ({b.stats.races:,} races, "
            f"{b.stats.open_races} open, {b.stats.bets:,} bets); snapshot "
            f"{(b.snapshot_bytes or 0):,} bytes, written in "
            f"{write:.3f} s (encode {b.snapshot_encode_s or 0:.3f} s); views compared: {b.checks}"
            if write is not None
            else f"{b.name}: no snapshot write timed"
        )
    for p in problems:
        console.print(f"[red]problem:[/red] {p}")


def write_json(
    backends: list[Backend], problems: list[str], args: argparse.Namespace, elapsed: float
) -> None:
    doc = {
        "events": args.events,
        "backends": {b.name: b.as_json() for b in backends},
        "ratio": {
            b.name: {
                "replay_over_snapshot": ratio(b, "snapshot"),
                "replay_over_snapshot_plus_10k": ratio(b, "snapshot_plus_tail"),
            }
            for b in backends
        },
        "tail_events": args.tail,
        "reps": args.reps,
        "quick": args.quick,
        "timed_region": (
            "ToteView(...) to wait_caught_up, on a store connection opened just before "
            "(untimed, open_store_s); load_s is the checkpoint load inside it (snapshot read "
            "and restore); snapshot_write_s is stop() of a view caught up at the head"
        ),
        "problems": problems,
        "load_average": {"start": args.load_at_start, "end": list(os.getloadavg())},
        "machine": machine(
            oddstream=package_version("oddstream"),
            msgspec=msgspec.__version__,
            psycopg=psycopg.__version__,
        ),
        "seconds": round(elapsed, 1),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    previous = _previous(args.out)
    if "odds" in previous:
        doc["odds"] = previous["odds"]  # the odds part's figures, from its own run
    write_results(args.out, doc)


def _previous(path: Path) -> dict[str, Any]:

    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def write_odds_json(
    run: OddsRun, problems: list[str], args: argparse.Namespace, elapsed: float
) -> None:
    """The odds part's figures under ``odds`` in the results file (the tote's kept)."""
    doc = _previous(args.out)
    doc["odds"] = {
        **odds_json(run, args),
        "problems": problems,
        "load_average": {"start": args.load_at_start, "end": list(os.getloadavg())},
        "machine": machine(oddstream=package_version("oddstream"), msgspec=msgspec.__version__),
        "seconds": round(elapsed, 1),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_results(args.out, doc)


def render_odds(run: OddsRun, problems: list[str], console: Console) -> None:
    table = Table(title=f"odds view: {run.markets:,} markets, start until caught up (medians)")
    for col in ("case", "runs", "seconds", "held markets", "resident MB", "bytes/held market"):
        table.add_column(col, justify="left" if col == "case" else "right")
    for case in (*ODDS_CASES, "keep_all"):
        runs = run.runs.get(case)
        if not runs:
            continue
        seconds = _median([r["seconds"] for r in runs]) or 0.0
        rss = _median([r["rss_bytes"] for r in runs]) or 0.0
        held = runs[0]["held"]
        table.add_row(
            case,
            str(len(runs)),
            f"{seconds:.2f}",
            f"{held:,}",
            f"{rss / 1e6:.1f}",
            f"{rss / held:,.0f}" if held else "-",
        )
    console.print(table)
    for p in problems:
        console.print(f"[red]problem:[/red] {p}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_EVENTS:,} events")
    parser.add_argument("--events", type=int, default=None, help="events in the log")
    parser.add_argument("--tail", type=int, default=10_000, help="events after the snapshot (c)")
    parser.add_argument("--reps", type=int, default=5, help="timed starts of each case")
    parser.add_argument("--open-races", type=int, default=None, help="races open at the end")
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--backend", choices=[*BACKENDS, "all"], default="all")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("ODDSTREAM_BENCH_PG_URL", DEFAULT_PG_URL),
        help="PostgreSQL URL (env ODDSTREAM_BENCH_PG_URL)",
    )
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite file goes")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument(
        "--view",
        choices=["tote", "odds"],
        default="tote",
        help="which read model (odds: on SQLite, A/B against --baseline-src)",
    )
    parser.add_argument(
        "--markets", type=int, default=None, help=f"odds: markets (default {ODDS_MARKETS:,})"
    )
    parser.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="odds: the src/ of the code to compare with (e.g. a worktree at main)",
    )
    parser.add_argument("--odds-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--odds-store", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--odds-sample", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.markets is None:
        args.markets = ODDS_QUICK_MARKETS if args.quick else ODDS_MARKETS
    if args.events is None:
        args.events = QUICK_EVENTS if args.quick else FULL_EVENTS
    if args.open_races is None:
        args.open_races = 10 if args.events <= QUICK_EVENTS else 20
    if args.reps < 1 or not 0 < args.tail < args.events // 2:
        parser.error("--reps must be at least 1 and --tail between 1 and half the events")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.odds_child is not None:
        sample = json.loads(args.odds_sample.read_text())
        found = asyncio.run(odds_child(args.odds_child, args.odds_store, sample))
        print(json.dumps(found))
        return 0
    args.load_at_start = list(os.getloadavg())
    console = Console()
    if not console.is_terminal:
        console = Console(width=110)
    started = time.perf_counter()
    if args.view == "odds":
        run, odds_problems = asyncio.run(odds_bench(args, console))
        render_odds(run, odds_problems, console)
        write_odds_json(run, odds_problems, args, time.perf_counter() - started)
        return 1 if odds_problems else 0
    backends, problems = asyncio.run(main_async(args, console))
    elapsed = time.perf_counter() - started
    render(backends, problems, console)
    write_json(backends, problems, args, elapsed)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
