"""The replay worker's rate: the log's market events into the odds tables of each target
database (``oddstream replay --to``), beside the in-memory odds view's rebuild of the
same log.

One log in a fresh SQLite file: ``--markets`` markets created through the market writer,
then ``--updates`` rounds of a price update to each (and a race event between markets,
which the replay moves over). Then, per round (``--rounds``, interleaved so that the
machine's noise falls on every case alike):

- ``view``: ``OddsView.rebuild()``, the live projection's replay in memory;
- ``sqlite`` / ``postgres`` / ``mariadb``: ``OddsReplay(...).run(from_start=True)`` into
  fresh tables (a unique prefix, dropped at the end), each page of 2,000 events in one
  transaction with the position.

Each replay is checked to hold as many rows as the view has markets and events; the
exit status is 1 on a mismatch or a failure. Prints events/s per case (median of the
rounds) and its ratio to the view's; results in ``bench/results/replay.json``. A target
that cannot be reached is reported and left out.

Run ``.venv/bin/python bench/replay.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from common import machine, write_results
from oddstream.application.odds import DEFAULT_LIMITS
from oddstream.domain.fixedodds import CreateMarket, MoneyLine, Odds, UpdatePrices
from oddstream.eventstore import NewEvent, open_store
from oddstream.projections.odds_view import OddsView
from oddstream.runtime.market_writer import MarketRequest, MarketWriter
from oddstream.sinks.config import parse_connection_url
from oddstream.sinks.dialects import OFFSETS_TABLE, dialect_for
from oddstream.sinks.replay import OddsReplay, open_odds_sink, position_name

TARGETS = {
    "sqlite": None,  # a file beside the log
    "postgres": "postgresql://postgres@127.0.0.1:5432/test",
    "mariadb": "mysql://root@127.0.0.1:3306/test",
}


def _line(home: int, draw: bool) -> MoneyLine:
    return MoneyLine(
        home=Odds.from_decimal(f"{1 + home / 100:.2f}"),
        away=Odds.from_decimal("1.91"),
        draw=Odds.from_decimal("3.4") if draw else None,
    )


async def build_log(url: str, markets: int, updates: int) -> int:
    store = await open_store(url)
    writer = MarketWriter(store)
    try:
        ids = [str(uuid.uuid4()) for _ in range(markets)]
        creates = [
            (
                MarketRequest(
                    action="NewOdds",
                    command=CreateMarket(
                        market_id=m,
                        game_id=f"g{i}",
                        provider="acme",
                        money_line=_line(50, i % 2 == 1),
                        limits=DEFAULT_LIMITS,
                    ),
                ),
                None,
            )
            for i, m in enumerate(ids)
        ]
        await writer.execute_many(creates)
        for i in range(0, markets, 50):
            await store.append(f"race-bench{i}", [NewEvent("Noise", {"i": i})])
        for u in range(updates):
            batch = [
                (
                    MarketRequest(
                        action="UpdateOdds",
                        command=UpdatePrices(
                            market_id=m, provider="acme", money_line=_line(51 + u, i % 2 == 1)
                        ),
                    ),
                    None,
                )
                for i, m in enumerate(ids)
            ]
            outcomes = await writer.execute_many(batch)
            failed = [o for o in outcomes if isinstance(o, BaseException)]
            if failed:
                raise failed[0]
        return await store.head_position()
    finally:
        await store.close()


def _drop(to: str, prefix: str) -> None:
    from oddstream.sinks.replay import jdbc_url

    url = parse_connection_url(jdbc_url(to))
    dialect = dialect_for(url)
    conn = dialect.connect(url)
    try:
        cur = conn.cursor()
        for table in ("odds", "odds_events"):
            dialect.begin(conn)
            cur.execute(f"DROP TABLE IF EXISTS {dialect.quote(prefix + table)}")
            dialect.commit(conn)
        dialect.begin(conn)
        cur.execute(dialect.offsets_ddl())
        cur.execute(
            dialect.p(
                f"DELETE FROM {dialect.quote(OFFSETS_TABLE)} WHERE "
                f"{dialect.quote('name')} = {dialect.placeholder}"
            ),
            (position_name(prefix),),
        )
        dialect.commit(conn)
    finally:
        conn.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 markets x 10 updates, 2 rounds")
    parser.add_argument("--markets", type=int, default=None)
    parser.add_argument("--updates", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results/replay.json")
    args = parser.parse_args()
    markets = args.markets or (500 if args.quick else 2000)
    updates = args.updates or (10 if args.quick else 20)
    rounds = args.rounds or (2 if args.quick else 3)

    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        log_url = f"sqlite:///{tmp}/events.db"
        head = await build_log(log_url, markets, updates)
        expected_events = markets * (updates + 1)
        targets = {k: v or f"sqlite:///{tmp}/odds.db" for k, v in TARGETS.items()}
        prefix = f"bench_{uuid.uuid4().hex[:8]}_"
        rates: dict[str, list[float]] = {"view": []}
        store = await open_store(log_url)
        try:
            for name, to in list(targets.items()):
                probe = open_odds_sink(to, table_prefix=prefix)
                try:
                    probe.open()
                except Exception as exc:  # reported, the target left out
                    print(f"{name}: not reachable, left out ({type(exc).__name__}: {exc})")
                    del targets[name]
                    continue
                finally:
                    probe.close()
                rates[name] = []
            for _ in range(rounds):
                view = OddsView(store)
                started = time.perf_counter()
                applied = await view.rebuild()
                rates["view"].append(applied / (time.perf_counter() - started))
                if len(view) != markets:
                    problems.append(f"view: {len(view)} markets, not {markets}")
                for name, to in targets.items():
                    sink = open_odds_sink(to, table_prefix=prefix)
                    try:
                        started = time.perf_counter()
                        result = await OddsReplay(store, sink).run(from_start=True)
                        elapsed = time.perf_counter() - started
                    finally:
                        sink.close()
                    rates[name].append(result.events / elapsed)
                    if (result.events, result.markets, result.position) != (
                        expected_events,
                        markets,
                        head,
                    ):
                        problems.append(f"{name}: {result}")
                    if result.rows != 2 * expected_events:
                        problems.append(f"{name}: {result.rows} rows, not {2 * expected_events}")
        finally:
            await store.close()
            for to in targets.values():
                try:
                    _drop(to, prefix)
                except Exception as exc:  # reported
                    problems.append(f"dropping the tables: {exc}")

    view_rate = statistics.median(rates["view"])
    cases: dict[str, Any] = {}
    print(f"log: {head:,} positions, {expected_events:,} market events, {markets:,} markets")
    print(f"{'case':<10}{'events/s':>12}{'vs view':>10}")
    for name, values in rates.items():
        rate = statistics.median(values)
        cases[name] = {
            "events_per_s": round(rate),
            "rounds": [round(v) for v in values],
            "ratio_to_view": round(rate / view_rate, 3),
        }
        print(f"{name:<10}{rate:>12,.0f}{rate / view_rate:>10.2f}")
    for problem in problems:
        print(f"problem: {problem}")
    write_results(
        args.out,
        {
            "benchmark": "replay",
            "machine": machine(),
            "markets": markets,
            "updates": updates,
            "events": expected_events,
            "rounds": rounds,
            "cases": cases,
            "problems": problems,
        },
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
