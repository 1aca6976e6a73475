"""Benchmark the tote's bet pipeline against Pathway and Bytewax, side by side.

All three systems take the same generated input in one process: a deterministic list of
bets ``(race_id, bet_id, runner, stake_cents)`` on 100 races of 12 runners, WIN pool,
stakes of $1 to $50 in whole dollars, with a few percent of invalid bets (stake 0,
runner 0, runner 13) so that validation does real work.

- **oddstream**, in process, pure domain: for each bet build a ``PlaceBet`` and run
  ``decide`` / ``evolve`` on its race (validation, duplicate check, pool totals),
  catching ``ToteRejection``. Each race's ``odds_board`` is then computed once, timed
  apart.
- **Pathway**, batch (static) mode: the Kafka/ksqlDB POC's pipeline as tables. Filter the
  invalid bets, sum stakes per race and per (race, runner), join the two into
  ``odds = race pool / runner pool``, and write the result to a CSV file.
- **Bytewax**, as a dataflow run by ``bytewax.testing.run_main``: the POC's stream. Filter,
  a running sum per race key, then one per (race, runner) key, emitting one odds row per
  valid bet into a ``TestingSink``.

Every system's final totals and odds are checked against a plain-Python recount and
against oddstream's board (gross race pool / gross runner pool for every runner).

Run ``.venv/bin/python bench/tote.py [--quick]``. Results go to ``bench/results/tote.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import math
import os
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from common import machine, package_version, write_results
from oddstream.domain.tote.board import OddsBoard, odds_board
from oddstream.domain.tote.events import PoolConfig, Runner
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.race import (
    OpenBetting,
    PlaceBet,
    RaceState,
    ScheduleRace,
    ToteRejection,
    decide,
    evolve,
)
from oddstream.runtime.tuning import tune_gc

RESULTS = Path(__file__).resolve().parent / "results" / "tote.json"
SYSTEMS = ("oddstream", "pathway", "bytewax")
FULL_BETS = 1_000_000
QUICK_BETS = 100_000
SEED = 20_240_611
RACES = 100
RUNNERS = 12
TAKEOUT_BPS = 1500
INVALID_SHARE = 0.03  # of the bets, split evenly over the kinds below
INVALID_KINDS = ("stake_zero", "runner_zero", "runner_13")
#: the rejection code oddstream gives each kind of invalid bet
REJECTION_FOR = {
    "stake_zero": "bad_amount",
    "runner_zero": "unknown_runner",
    "runner_13": "unknown_runner",
}
#: items per batch from Bytewax's TestingSource; 1000 is its Kafka source's default
BYTEWAX_BATCH = 1000
TARGET_OURS_PER_S = 500_000
TARGET_VS_FASTER_PEER = 5.0
ODDS_REL_TOL = 1e-12

TIMED = {
    "oddstream": (
        "the loop over the raw tuples: building each PlaceBet, decide() and evolve() on its "
        "race, catching ToteRejection (races scheduled and opened before; boards timed apart)"
    ),
    "pathway": (
        "building the graph, pw.run() (static CSV read of the bets, filter, two grouped "
        "sums, join, odds) until the output CSV is written; writing the input CSV from the "
        "list is timed apart as prep"
    ),
    "bytewax": (
        "building the Dataflow and run_main() (TestingSource over the list, filter, running "
        "sums per race and per race:runner key, one odds row per valid bet into a "
        "TestingSink list)"
    ),
}

Bet = tuple[str, str, int, int]  # race_id, bet_id, runner, stake_cents
Key = tuple[str, int]  # race_id, runner
OddsRow = tuple[str, int, int, int, float]  # race, runner, runner_pool, race_pool, odds


# --------------------------------------------------------------------------- workload


def race_id(n: int) -> str:
    return f"race-{n:03d}"


@dataclass(slots=True)
class Workload:
    """The bets every system gets, and what a plain-Python recount makes of them."""

    bets: list[Bet]
    seed: int
    invalid: Counter[str] = field(default_factory=Counter)
    race_gross: dict[str, int] = field(default_factory=dict)
    runner_pools: dict[Key, int] = field(default_factory=dict)

    @property
    def valid(self) -> int:
        return len(self.bets) - sum(self.invalid.values())

    def recount_ratio(self) -> dict[Key, float]:
        return {k: self.race_gross[k[0]] / pool for k, pool in self.runner_pools.items()}


def is_valid(bet: Bet) -> bool:
    """The peers' validation: a positive stake on a runner of the race."""
    return bet[3] > 0 and 1 <= bet[2] <= RUNNERS


def generate(n: int, seed: int) -> Workload:
    """``n`` bets from ``random.Random(seed)``, and their recount."""
    rng = random.Random(seed)
    bets: list[Bet] = []
    invalid: Counter[str] = Counter()
    for i in range(n):
        race = race_id(rng.randrange(RACES) + 1)
        runner = rng.randrange(RUNNERS) + 1
        stake = rng.randrange(1, 51) * 100
        if rng.random() < INVALID_SHARE:
            kind = INVALID_KINDS[rng.randrange(len(INVALID_KINDS))]
            invalid[kind] += 1
            if kind == "stake_zero":
                stake = 0
            elif kind == "runner_zero":
                runner = 0
            else:
                runner = RUNNERS + 1
        bets.append((race, f"bet-{i:07d}", runner, stake))
    work = Workload(bets=bets, seed=seed, invalid=invalid)
    for race, _, runner, stake in bets:
        if is_valid((race, "", runner, stake)):
            work.race_gross[race] = work.race_gross.get(race, 0) + stake
            key = (race, runner)
            work.runner_pools[key] = work.runner_pools.get(key, 0) + stake
    return work


# --------------------------------------------------------------------------- results


@dataclass(slots=True)
class Case:
    """One system's run."""

    system: str
    bets: int
    seconds: float | None = None
    version: str | None = None
    error: str | None = None
    verified: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def bets_per_s(self) -> float | None:
        if self.seconds is None:
            return None
        return self.bets / self.seconds if self.seconds > 0 else float("inf")

    def as_json(self) -> dict[str, Any]:
        rate = self.bets_per_s
        return {
            "system": self.system,
            "bets": self.bets,
            "seconds": round(self.seconds, 4) if self.seconds is not None else None,
            "bets_per_s": round(rate, 1) if rate is not None else None,
            "version": self.version,
            "verified": self.verified,
            "error": self.error,
            "timed_region": TIMED[self.system],
            **self.details,
        }


@dataclass(slots=True)
class Report:
    cases: list[Case] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    board_seconds: float | None = None
    #: oddstream's final board: gross race pool / gross runner pool, per (race, runner)
    board_ratio: dict[Key, float] | None = None

    def case(self, system: str) -> Case | None:
        return next((c for c in self.cases if c.system == system), None)

    def ratio(self, peer: str) -> float | None:
        ours, theirs = self.case("oddstream"), self.case(peer)
        if ours is None or theirs is None:
            return None
        a, b = ours.bets_per_s, theirs.bets_per_s
        return a / b if a is not None and b else None

    def ratios(self) -> dict[str, float | None]:
        peers = [c for c in self.cases if c.system != "oddstream" and c.bets_per_s]
        faster = max(peers, key=lambda c: c.bets_per_s or 0.0) if peers else None
        return {
            "vs_pathway": self.ratio("pathway"),
            "vs_bytewax": self.ratio("bytewax"),
            "vs_faster_peer": self.ratio(faster.system) if faster else None,
        }


def check(problems: list[str], system: str, what: str, mismatches: list[str]) -> bool:
    """Record up to three ``mismatches`` of ``what`` as one problem; True if none."""
    if not mismatches:
        return True
    shown = "; ".join(mismatches[:3])
    more = f" (and {len(mismatches) - 3} more)" if len(mismatches) > 3 else ""
    problems.append(f"{system}: {what}: {shown}{more}")
    return False


def compare_odds(
    got: dict[Key, tuple[int, int, float]], work: Workload, board_ratio: dict[Key, float]
) -> dict[str, list[str]]:
    """Compare a peer's final (runner pool, race pool, odds) per (race, runner) with the
    recount's pools and oddstream's board-level ratio."""
    keys = [f"{k}" for k in sorted(set(got) ^ set(work.runner_pools))]
    pools, odds = [], []
    for key, want_pool in sorted(work.runner_pools.items()):
        if key not in got:
            continue
        runner_pool, race_pool, ratio = got[key]
        want_race = work.race_gross[key[0]]
        if (runner_pool, race_pool) != (want_pool, want_race):
            pools.append(f"{key}: pools {runner_pool}/{race_pool}, want {want_pool}/{want_race}")
        want = board_ratio.get(key)
        if want is None or not math.isclose(ratio, want, rel_tol=ODDS_REL_TOL):
            odds.append(f"{key}: odds {ratio!r}, oddstream's board says {want!r}")
    return {"(race, runner) keys": keys, "final pools": pools, "final odds": odds}


# --------------------------------------------------------------------------- oddstream


def open_races() -> dict[str, RaceState]:
    """Schedule and open every race: 12 runners, one WIN pool with 15% takeout."""
    states: dict[str, RaceState] = {}
    runners = tuple(Runner(n, f"Runner {n}") for n in range(1, RUNNERS + 1))
    pools = (PoolConfig(pool=PoolType.WIN, takeout_bps=TAKEOUT_BPS),)
    for n in range(1, RACES + 1):
        rid = race_id(n)
        state = RaceState()
        schedule = ScheduleRace(
            race_id=rid,
            meeting="bench",
            venue="Bench Park",
            post_time="2026-01-01T12:00:00Z",
            runners=runners,
            pools=pools,
        )
        for cmd in (schedule, OpenBetting(rid)):
            for e in decide(state, cmd):
                evolve(state, e)
        states[rid] = state
    return states


def run_oddstream(work: Workload, report: Report) -> Case:
    case = Case("oddstream", len(work.bets), version=package_version("oddstream"))
    states = open_races()
    bets = work.bets
    win = PoolType.WIN
    rejected: list[str] = []
    gc.collect()
    started = time.perf_counter()
    for rid, bet_id, runner, stake in bets:
        state = states[rid]
        cmd = PlaceBet(race_id=rid, bet_id=bet_id, pool=win, selection=(runner,), stake_cents=stake)
        try:
            for e in decide(state, cmd):
                evolve(state, e)
        except ToteRejection as exc:
            rejected.append(exc.code)
    case.seconds = time.perf_counter() - started

    started = time.perf_counter()
    boards = {rid: odds_board(state) for rid, state in states.items()}
    report.board_seconds = time.perf_counter() - started

    case.verified = verify_oddstream(work, states, boards, Counter(rejected), report.problems)
    report.board_ratio = board_ratio(boards)
    case.details = {
        "accepted": sum(len(s.bets) for s in states.values()),
        "rejected": dict(sorted(Counter(rejected).items())),
        "boards": len(boards),
    }
    return case


def board_ratio(boards: dict[str, OddsBoard]) -> dict[Key, float]:
    """Gross race pool / gross runner pool, from each board, for runners with stakes."""
    ratio: dict[Key, float] = {}
    for rid, board in boards.items():
        gross = next(p.gross_cents for p in board.pools if p.pool is PoolType.WIN)
        for r in board.runners:
            if r.win_stakes_cents > 0:
                ratio[(rid, r.number)] = gross / r.win_stakes_cents
    return ratio


def verify_oddstream(
    work: Workload,
    states: dict[str, RaceState],
    boards: dict[str, OddsBoard],
    rejected: Counter[str],
    problems: list[str],
) -> bool:
    want_rejected: Counter[str] = Counter()
    for kind, count in work.invalid.items():
        want_rejected[REJECTION_FOR[kind]] += count
    accepted = sum(len(s.bets) for s in states.values())
    counts = []
    if rejected != want_rejected or accepted != work.valid:
        counts.append(
            f"accepted {accepted}, rejected {dict(rejected)}; "
            f"want {work.valid}, {dict(want_rejected)}"
        )
    gross, stakes = [], []
    for rid, board in boards.items():
        got = next(p.gross_cents for p in board.pools if p.pool is PoolType.WIN)
        if got != work.race_gross.get(rid, 0):
            gross.append(f"{rid}: gross {got}, recount {work.race_gross.get(rid, 0)}")
        for r in board.runners:
            want = work.runner_pools.get((rid, r.number), 0)
            if r.win_stakes_cents != want:
                stakes.append(f"{rid} runner {r.number}: {r.win_stakes_cents}, recount {want}")
    return all(
        [
            check(problems, "oddstream", "accepted/rejected bets", counts),
            check(problems, "oddstream", "race gross pools", gross),
            check(problems, "oddstream", "runner stakes", stakes),
        ]
    )


# --------------------------------------------------------------------------- Pathway


def write_bets_csv(bets: Sequence[Bet], path: Path) -> None:
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["race", "bet_id", "runner", "stake"])
        out.writerows(bets)


def read_pathway_output(path: Path) -> dict[Key, tuple[int, int, float]]:
    """The output CSV's rows, with Pathway's ``diff`` column applied (+1 adds, -1 removes)."""
    rows: dict[Key, tuple[int, int, float]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            key = (row["race"], int(row["runner"]))
            value = (int(row["runner_pool"]), int(row["race_pool"]), float(row["odds"]))
            if int(row["diff"]) > 0:
                rows[key] = value
            elif rows.get(key) == value:
                del rows[key]
    return rows


def run_pathway(work: Workload, report: Report, workdir: Path) -> Case:
    case = Case("pathway", len(work.bets), version=package_version("pathway"))
    import pathway as pw

    source, sink = workdir / "bets.csv", workdir / "odds.csv"
    started = time.perf_counter()
    write_bets_csv(work.bets, source)
    prep = time.perf_counter() - started

    gc.collect()
    started = time.perf_counter()
    schema = pw.schema_from_types(race=str, bet_id=str, runner=int, stake=int)
    bets = pw.io.csv.read(source, schema=schema, mode="static")
    valid = bets.filter((bets.stake > 0) & (bets.runner >= 1) & (bets.runner <= RUNNERS))
    race = valid.groupby(valid.race).reduce(valid.race, race_pool=pw.reducers.sum(valid.stake))
    runner = valid.groupby(valid.race, valid.runner).reduce(
        valid.race, valid.runner, runner_pool=pw.reducers.sum(valid.stake)
    )
    odds = runner.join(race, runner.race == race.race).select(
        runner.race,
        runner.runner,
        runner.runner_pool,
        race.race_pool,
        odds=race.race_pool / runner.runner_pool,
    )
    pw.io.csv.write(odds, sink)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE, default_logging=False)
    case.seconds = time.perf_counter() - started

    got = read_pathway_output(sink)
    ratio = report.board_ratio or work.recount_ratio()
    case.verified = all(
        check(report.problems, "pathway", what, bad)
        for what, bad in compare_odds(got, work, ratio).items()
    )
    case.details = {
        "prep_seconds": round(prep, 4),
        "input": "CSV file written from the list before the clock (prep_seconds), read "
        "with pw.io.csv.read(mode='static')",
        "threads": os.environ.get("PATHWAY_THREADS", "1 (default)"),
        "output_rows": len(got),
    }
    return case


# --------------------------------------------------------------------------- Bytewax


def by_race(bet: Bet) -> str:
    return bet[0]


def add_to_race(total: int | None, bet: Bet) -> tuple[int, tuple[Bet, int]]:
    """The running race pool; passes the bet on with it."""
    total = (total or 0) + bet[3]
    return total, (bet, total)


def by_runner(item: tuple[Bet, int]) -> str:
    bet = item[0]
    return f"{bet[0]}:{bet[2]}"


def add_to_runner(total: int | None, item: tuple[Bet, int]) -> tuple[int, OddsRow]:
    """The running runner pool, and the POC's odds row for the bet."""
    bet, race_pool = item
    total = (total or 0) + bet[3]
    return total, (bet[0], bet[2], total, race_pool, race_pool / total)


def expected_stream(work: Workload) -> dict[Key, list[tuple[int, int]]]:
    """The POC's stream replayed in plain Python: (runner pool, race pool) per valid bet,
    grouped by (race, runner) in input order."""
    race: dict[str, int] = {}
    runner: dict[Key, int] = {}
    rows: dict[Key, list[tuple[int, int]]] = {}
    for bet in work.bets:
        if not is_valid(bet):
            continue
        key = (bet[0], bet[2])
        race[bet[0]] = race.get(bet[0], 0) + bet[3]
        runner[key] = runner.get(key, 0) + bet[3]
        rows.setdefault(key, []).append((runner[key], race[bet[0]]))
    return rows


def verify_bytewax(
    rows: list[tuple[str, OddsRow]], work: Workload, report: Report
) -> tuple[bool, dict[Key, tuple[int, int, float]]]:
    """Check every emitted row against the replayed stream, then the final pools (the
    largest running sums, as stakes are positive) and odds against oddstream's board."""
    stream: dict[Key, list[tuple[int, int]]] = {}
    odd_rows = []
    for key, (race, runner, runner_pool, race_pool, odds) in rows:
        if key != f"{race}:{runner}" or not math.isclose(
            odds, race_pool / runner_pool, rel_tol=ODDS_REL_TOL
        ):
            odd_rows.append(f"{key}: {(race, runner, runner_pool, race_pool, odds)}")
        stream.setdefault((race, runner), []).append((runner_pool, race_pool))
    want = expected_stream(work)
    seqs = [
        f"{k}: {len(stream.get(k, []))} rows, want {len(want.get(k, []))}"
        for k in sorted(set(stream) | set(want))
        if stream.get(k) != want.get(k)
    ]
    race_final: dict[str, int] = {}
    for (race, _), seq in stream.items():
        race_final[race] = max(race_final.get(race, 0), max(p for _, p in seq))
    final = {
        key: (
            max(p for p, _ in seq),
            race_final[key[0]],
            race_final[key[0]] / max(p for p, _ in seq),
        )
        for key, seq in stream.items()
    }
    ratio = report.board_ratio or work.recount_ratio()
    counts = [] if len(rows) == work.valid else [f"{len(rows)} rows, want {work.valid}"]
    ok = all(
        [
            check(report.problems, "bytewax", "row count", counts),
            check(report.problems, "bytewax", "rows", odd_rows),
            check(report.problems, "bytewax", "per-key row sequences", seqs),
            *(
                check(report.problems, "bytewax", what, bad)
                for what, bad in compare_odds(final, work, ratio).items()
            ),
        ]
    )
    return ok, final


def run_bytewax(work: Workload, report: Report, batch: int) -> Case:
    case = Case("bytewax", len(work.bets), version=package_version("bytewax"))
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSink, TestingSource, run_main

    rows: list[tuple[str, OddsRow]] = []
    gc.collect()
    started = time.perf_counter()
    flow = Dataflow("tote_odds")
    bets = op.input("bets", flow, TestingSource(work.bets, batch_size=batch))
    valid = op.filter("valid", bets, is_valid)
    race_pools = op.stateful_map("race_pool", op.key_on("by_race", valid, by_race), add_to_race)
    keyed = op.key_on("by_runner", op.key_rm("drop_race_key", race_pools), by_runner)
    odds = op.stateful_map("runner_pool", keyed, add_to_runner)
    op.output("odds", odds, TestingSink(rows))
    run_main(flow)
    case.seconds = time.perf_counter() - started

    case.verified, final = verify_bytewax(rows, work, report)
    case.details = {
        "batch_size": batch,
        "workers": 1,
        "output_rows": len(rows),
        "final_keys": len(final),
    }
    return case


# --------------------------------------------------------------------------- output


def fmt(value: float | None, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def render(
    report: Report, work: Workload, quick: bool, elapsed: float, out: Path, console: Console
) -> None:
    title = "tote bet pipeline: oddstream vs Pathway vs Bytewax"
    table = Table(title=f"{title} (quick)" if quick else title)
    table.add_column("system", no_wrap=True)
    table.add_column("version")
    table.add_column("bets", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("bets/s", justify="right")
    table.add_column("ours ÷ this", justify="right")
    table.add_column("verified")
    for c in report.cases:
        ratio = 1.0 if c.system == "oddstream" else report.ratio(c.system)
        table.add_row(
            c.system,
            c.version or "-",
            f"{c.bets:,}",
            fmt(c.seconds, ".3f", "not run"),
            fmt(c.bets_per_s, ",.0f", "not run"),
            fmt(ratio, ".2f") + ("x" if ratio is not None else ""),
            "yes" if c.verified else "[red]no[/red]",
        )
    console.print(table)
    invalid = ", ".join(f"{k} {v:,}" for k, v in sorted(work.invalid.items()))
    console.print(
        f"input: {len(work.bets):,} bets (seed {work.seed}) over {RACES} races x {RUNNERS} "
        f"runners, WIN pool; {work.valid:,} valid, invalid: {invalid}. "
        "bets/s = bets in the input / wall seconds of the timed region."
    )
    for c in report.cases:
        console.print(f"timed ({c.system}): {TIMED[c.system]}.")
    console.print(
        f"oddstream boards: {RACES} x odds_board() in {fmt(report.board_seconds, '.4f')}s."
    )
    if (pathway := report.case("pathway")) and pathway.seconds is not None:
        console.print(
            f"pathway: input CSV written in {pathway.details['prep_seconds']:.3f}s (not "
            f"timed); threads {pathway.details['threads']}."
        )
    if (bytewax := report.case("bytewax")) and bytewax.seconds is not None:
        console.print(
            f"bytewax: 1 worker, TestingSource batch_size {bytewax.details['batch_size']}; "
            f"{bytewax.details['output_rows']:,} odds rows emitted (one per valid bet)."
        )
    ours = report.case("oddstream")
    vs_faster = report.ratios()["vs_faster_peer"]
    if ours and ours.bets_per_s is not None:
        met = "met" if ours.bets_per_s >= TARGET_OURS_PER_S else "[red]not met[/red]"
        line = f"targets: >= {TARGET_OURS_PER_S:,} bets/s in process: {met}"
        if vs_faster is not None:
            met = "met" if vs_faster >= TARGET_VS_FASTER_PEER else "[red]not met[/red]"
            line += f"; >= {TARGET_VS_FASTER_PEER:g}x the faster peer ({vs_faster:.2f}x): {met}"
        console.print(line + ".")
    for p in report.problems:
        console.print(f"[red]problem:[/red] {p}")
    console.print(f"total time {elapsed:.1f}s; results in {out}")


def targets(report: Report) -> dict[str, Any]:
    ours = report.case("oddstream")
    rate = ours.bets_per_s if ours else None
    vs_faster = report.ratios()["vs_faster_peer"]
    return {
        "ours_bets_per_s": TARGET_OURS_PER_S,
        "ours_bets_per_s_met": rate >= TARGET_OURS_PER_S if rate is not None else None,
        "vs_faster_peer": TARGET_VS_FASTER_PEER,
        "vs_faster_peer_met": vs_faster >= TARGET_VS_FASTER_PEER if vs_faster else None,
    }


def rounded(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None


def write_json(report: Report, work: Workload, quick: bool, elapsed: float, path: Path) -> None:
    doc = {
        "cases": [c.as_json() for c in report.cases],
        "ratios": {k: rounded(v, 3) for k, v in report.ratios().items()},
        "board_seconds": rounded(report.board_seconds, 4),
        "quick": quick,
        "input": {
            "bets": len(work.bets),
            "valid": work.valid,
            "invalid": dict(sorted(work.invalid.items())),
            "races": RACES,
            "runners": RUNNERS,
            "pool": "WIN",
            "takeout_bps": TAKEOUT_BPS,
            "stakes_cents": "100..5000 in steps of 100",
            "seed": work.seed,
        },
        "targets": targets(report),
        "problems": report.problems,
        "gc_threshold": list(gc.get_threshold()),
        "machine": machine(
            oddstream=package_version("oddstream"),
            msgspec=package_version("msgspec"),
            pathway=package_version("pathway"),
            bytewax=package_version("bytewax"),
        ),
        "seconds": round(elapsed, 1),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_results(path, doc)


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_BETS:,} bets (under a minute)"
    )
    parser.add_argument("--bets", type=int, default=None, help="number of bets (overrides --quick)")
    parser.add_argument("--seed", type=int, default=SEED, help="the generator's seed")
    parser.add_argument("--only", default=",".join(SYSTEMS), help="systems to run, e.g. oddstream")
    parser.add_argument(
        "--bytewax-batch", type=int, default=BYTEWAX_BATCH, help="TestingSource batch size"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv)
    only = [s.strip().lower() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SYSTEMS]
    if unknown or not only:
        parser.error(f"--only takes some of {','.join(SYSTEMS)}; got {args.only!r}")
    args.systems = [s for s in SYSTEMS if s in only]
    if args.bets is not None and args.bets < 1:
        parser.error("--bets must be positive")
    args.n = args.bets or (QUICK_BETS if args.quick else FULL_BETS)
    return args


@contextlib.contextmanager
def attempt(report: Report, system: str, bets: int) -> Iterator[None]:
    """Record a system that cannot be imported or fails as a case with an error."""
    try:
        yield
    except Exception as exc:
        kind = "not installed" if isinstance(exc, ImportError) else "failed"
        error = f"{kind}: {type(exc).__name__}: {exc}"
        report.problems.append(f"{system}: {error}")
        report.cases.append(Case(system, bets, version=package_version(system), error=error))
        traceback.print_exc(file=sys.stderr)


def run(args: argparse.Namespace, console: Console) -> tuple[Report, Workload]:
    with console.status(f"generating {args.n:,} bets"):
        work = generate(args.n, args.seed)
    report = Report()
    runners: dict[str, Callable[[Path], Case]] = {
        "oddstream": lambda _: run_oddstream(work, report),
        "pathway": lambda workdir: run_pathway(work, report, workdir),
        "bytewax": lambda _: run_bytewax(work, report, args.bytewax_batch),
    }
    with tempfile.TemporaryDirectory(prefix="oddstream-tote-bench-") as workdir:
        for system in args.systems:
            console.print(f"running {system} ...")
            with attempt(report, system, len(work.bets)):
                report.cases.append(runners[system](Path(workdir)))
            gc.collect()
    return report, work


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=110)  # keep the table on one line per row in logs
    # the collector settings `oddstream serve` runs with, for every system alike
    console.print(f"[dim]gc thresholds (as oddstream serve): {tune_gc()}[/dim]")
    started = time.perf_counter()
    report, work = run(args, console)
    elapsed = time.perf_counter() - started
    quick = args.quick and args.bets is None
    render(report, work, quick, elapsed, args.out, console)
    write_json(report, work, quick, elapsed, args.out)
    return 1 if report.problems or any(not c.verified for c in report.cases) else 0


if __name__ == "__main__":
    sys.exit(main())
