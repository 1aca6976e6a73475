"""The replay worker (``oddstream replay --to``): the odds tables it writes into SQLite,
PostgreSQL and MariaDB hold, row for row, what the live odds view answered — for the
whole log, up to a position, up to a time; a replay interrupted part-way resumes and
ends with each row once; bad arguments end with a reason, never a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import oddstream
from oddstream.application.odds import DEFAULT_LIMITS, event_json, record_json
from oddstream.cli import app as cli
from oddstream.domain.fixedodds import (
    CloseMarket,
    CreateMarket,
    DeleteMarket,
    MarketStatus,
    MoneyLine,
    Odds,
    Outcome,
    ResultMarket,
    ResumeMarket,
    SuspendMarket,
    UpdatePrices,
    VoidMarket,
)
from oddstream.eventstore import NewEvent, open_store
from oddstream.projections.odds_view import OddsView
from oddstream.runtime.market_writer import MarketRequest, MarketWriter, market_stream
from oddstream.sinks import JdbcSink
from oddstream.sinks.connectors import InvalidConnectorName, check_name
from oddstream.sinks.replay import (
    OddsReplay,
    ReplayError,
    Until,
    open_odds_sink,
    position_name,
)

from .conftest import Target

ODDS_COLUMNS = (
    "id, external_id, game_id, provider, home, away, draw, deleted, created_at, updated_at, status"
)


def line(home: str, away: str, draw: str | None = None) -> MoneyLine:
    return MoneyLine(
        home=Odds.from_decimal(home),
        away=Odds.from_decimal(away),
        draw=None if draw is None else Odds.from_decimal(draw),
    )


def request(action: str, command: Any) -> MarketRequest:
    return MarketRequest(action=action, command=command, game_id=None)


class Markets:
    """Markets driven through the market writer on a store in a temporary file, with
    the live odds view following them and events of other streams between."""

    def __init__(self, tmp_path: Path) -> None:
        self.url = f"sqlite:///{tmp_path / 'events.db'}"
        self.ids: list[str] = []
        self.round = 0

    async def drive(self, markets: int = 6, updates: int = 4) -> tuple[int, list[dict[str, Any]]]:
        """One round of writes; answers the log's head and what the live view answers
        then (every record, and every market's event log entries)."""
        store = await open_store(self.url)
        view = OddsView(store)
        await view.start()
        writer = MarketWriter(store)
        try:
            r = self.round
            self.round += 1
            for i in range(markets):
                market = f"{uuid.uuid4()}"
                self.ids.append(market)
                draw = "3.4" if i % 2 else None
                create = CreateMarket(
                    market_id=market,
                    game_id=f"g{r}-{i}",
                    provider="acme" if i % 3 else "beta",
                    money_line=line("1.91", "1.91", draw),
                    limits=DEFAULT_LIMITS,
                )
                await writer.execute(request("NewOdds", create))
                # another stream's event between: the tables' position moves over it
                await store.append(f"race-r{r}x{i}", [NewEvent("Noise", {"i": i})])
            for u in range(updates):
                for i, market in enumerate(self.ids):
                    state = await writer.state(market)
                    if state.status not in (MarketStatus.OPEN, MarketStatus.SUSPENDED):
                        continue  # deleted, or its prices settled (closed and after)
                    draw = "3.25" if state.prices.get(Outcome.DRAW) is not None else None
                    home = f"{2 + u * 0.125 + i * 0.01:.2f}" if u % 2 else f"1.{123457 + i}"
                    up = UpdatePrices(
                        market_id=market,
                        provider=state.provider,
                        money_line=line(home, "10001" if u == 3 else "1.8", draw),
                    )
                    await writer.execute(request("UpdateOdds", up))
            first = self.ids[-markets]
            state = await writer.state(first)
            await writer.execute(
                request("Suspend", SuspendMarket(market_id=first, provider=state.provider))
            )
            await writer.execute(
                request("Resume", ResumeMarket(market_id=first, provider=state.provider))
            )
            # the other statuses in the tables too: resulted (closed first), voided, and
            # closed where there are markets enough (a round of 2 has none of them)
            later = self.ids[-markets + 1 : -1]
            for n, market in enumerate(later[:3]):
                owner = (await writer.state(market)).provider
                if n != 1:
                    close = CloseMarket(market_id=market, provider=owner)
                    await writer.execute(request("CloseOdds", close))
                if n == 0:
                    result = ResultMarket(market_id=market, provider=owner, winners=(Outcome.HOME,))
                    await writer.execute(request("ResultOdds", result))
                elif n == 1:
                    void = VoidMarket(market_id=market, provider=owner, reason="abandoned")
                    await writer.execute(request("VoidOdds", void))
            last = self.ids[-1]
            state = await writer.state(last)
            await writer.execute(
                request("DeleteOdds", DeleteMarket(market_id=last, provider=state.provider))
            )
            head = await store.head_position()
            assert await view.wait_for(head, 10)
            return head, await answers(view, store)
        finally:
            await view.stop()
            await store.close()


async def answers(view: OddsView, store: Any) -> list[dict[str, Any]]:
    """Every record the view answers, oldest first, each with its odds event log."""
    out = []
    for record in view.page(1, 10_000):
        events = await store.read_stream(market_stream(record.external_id), limit=record.version)
        out.append(
            {"record": record_json(record), "events": [event_json(record, e) for e in events]}
        )
    return out


def number(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value)).normalize()


def tables(target: Target, prefix: str) -> list[dict[str, Any]]:
    """The odds tables read back as the view's answers are shaped."""
    q = target.dialect.quote
    odds = target.query(f"SELECT {ODDS_COLUMNS} FROM {q(prefix + 'odds')} ORDER BY id")
    events = target.query(
        f"SELECT id, odds_id, event_id, created_at FROM {q(prefix + 'odds_events')} ORDER BY id"
    )
    out = []
    for row in odds:
        out.append(
            {
                "record": {
                    "ID": int(row[0]),
                    "ExternalID": row[1],
                    "GameID": row[2],
                    "MoneyLine": {
                        "Home": number(row[4]),
                        "Away": number(row[5]),
                        "Draw": number(row[6]),
                    },
                    "Deleted": bool(row[7]),
                    "CreatedAt": row[8],
                    "UpdatedAt": row[9],
                    "Status": row[10],
                },
                "events": [
                    {"ID": int(e[0]), "OddsID": int(e[1]), "EventID": e[2], "CreatedAt": e[3]}
                    for e in events
                    if int(e[1]) == int(row[0])
                ],
            }
        )
    assert sum(len(o["events"]) for o in out) == len(events)  # none of no market
    return out


def normalised(answered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for entry in answered:
        record = dict(entry["record"])
        record["MoneyLine"] = {k: number(v) for k, v in record["MoneyLine"].items()}
        out.append({"record": record, "events": entry["events"]})
    return out


def plain_url(target: Target, tmp_path: Path) -> str:
    """The target as ``--to`` takes it: sqlite:///…, postgresql://…, mysql://…."""
    if target.kind == "sqlite":
        return f"sqlite:///{target.url.removeprefix('jdbc:sqlite:')}"
    return target.url.removeprefix("jdbc:")


def prefix_for(target: Target) -> str:
    prefix = f"r{uuid.uuid4().hex[:8]}_"
    target.tables += [prefix + "odds", prefix + "odds_events"]
    target.sinks.append(position_name(prefix))
    return prefix


def replay(*args: str) -> Result:
    return CliRunner().invoke(cli, ["replay", *args])


def test_a_replay_holds_what_the_live_view_answered(tmp_path: Path, target: Target) -> None:
    markets = Markets(tmp_path)
    head, live = asyncio.run(markets.drive())
    prefix = prefix_for(target)
    result = replay(
        "--store", markets.url, "--to", plain_url(target, tmp_path), "--table-prefix", prefix
    )
    assert result.exit_code == 0, result.output
    assert "events/s" in result.output
    assert f"up to position {head:,}" in result.output
    assert tables(target, prefix) == normalised(live)
    assert len(live) == 6
    assert any(e["record"]["Deleted"] for e in live)
    statuses = {e["record"]["Status"] for e in live}
    assert statuses == {"open", "closed", "resulted", "voided", "deleted"}

    # more writes: the next replay resumes where the tables stand
    head, live = asyncio.run(markets.drive(markets=2, updates=1))
    result = replay(
        "--store", markets.url, "--to", plain_url(target, tmp_path), "--table-prefix", prefix
    )
    assert result.exit_code == 0, result.output
    assert "resumed from position" in result.output
    assert tables(target, prefix) == normalised(live)


def test_until_a_position_and_until_a_time(tmp_path: Path, target: Target) -> None:
    markets = Markets(tmp_path)
    first_head, first = asyncio.run(markets.drive())
    time.sleep(0.01)
    between = datetime.now(UTC)
    time.sleep(0.01)
    _head, last = asyncio.run(markets.drive(markets=3, updates=2))
    to = plain_url(target, tmp_path)

    by_position = prefix_for(target)
    result = replay(
        "--store",
        markets.url,
        "--to",
        to,
        "--table-prefix",
        by_position,
        "--until",
        str(first_head),
    )
    assert result.exit_code == 0, result.output
    assert tables(target, by_position) == normalised(first)

    by_time = prefix_for(target)
    result = replay(
        "--store",
        markets.url,
        "--to",
        to,
        "--table-prefix",
        by_time,
        "--until",
        between.isoformat(),
    )
    assert result.exit_code == 0, result.output
    assert tables(target, by_time) == normalised(first)

    # an earlier bound than the tables hold is refused; --from-start rebuilds
    result = replay("--store", markets.url, "--to", to, "--table-prefix", by_time, "--until", "3")
    assert result.exit_code == 1
    assert "--from-start" in result.output
    assert "Traceback" not in result.output
    result = replay("--store", markets.url, "--to", to, "--table-prefix", by_time)
    assert result.exit_code == 0, result.output
    assert tables(target, by_time) == normalised(last)


def test_from_start_rebuilds_damaged_tables(tmp_path: Path, target: Target) -> None:
    markets = Markets(tmp_path)
    _head, live = asyncio.run(markets.drive(markets=3, updates=2))
    to = plain_url(target, tmp_path)
    prefix = prefix_for(target)
    assert replay("--store", markets.url, "--to", to, "--table-prefix", prefix).exit_code == 0
    q = target.dialect.quote
    target.query_commit(f"UPDATE {q(prefix + 'odds')} SET {q('game_id')} = \x00", ("damaged",))
    target.query_commit(f"DELETE FROM {q(prefix + 'odds_events')} WHERE {q('id')} > \x00", (5,))
    assert tables(target, prefix) != normalised(live)
    result = replay("--store", markets.url, "--to", to, "--table-prefix", prefix, "--from-start")
    assert result.exit_code == 0, result.output
    assert "resumed" not in result.output
    assert tables(target, prefix) == normalised(live)


async def test_an_interrupted_replay_resumes_each_row_once(tmp_path: Path, target: Target) -> None:
    markets = Markets(tmp_path)
    head, live = await markets.drive(markets=5, updates=4)
    prefix = prefix_for(target)
    store = await open_store(markets.url)
    try:
        sink = open_odds_sink(plain_url(target, tmp_path), table_prefix=prefix)
        write = sink.write
        calls = 0

        def failing(*args: Any, **kw: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise RuntimeError("the process dies mid-way")
            return write(*args, **kw)

        sink.write = failing  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            await OddsReplay(store, sink, page_size=7).run()
        sink.close()
        stopped_at = await OddsReplay(
            store, open_odds_sink(plain_url(target, tmp_path), table_prefix=prefix)
        ).stored_position()
        assert 0 < stopped_at < head
        partial = tables(target, prefix)
        assert 0 < len(partial) <= len(live)

        resumed = open_odds_sink(plain_url(target, tmp_path), table_prefix=prefix)
        try:
            result = await OddsReplay(store, resumed, page_size=7).run()
        finally:
            resumed.close()
        assert (result.start, result.position) == (stopped_at, head)
        assert tables(target, prefix) == normalised(live)
        market_events = sum(len(e["events"]) for e in live)
        assert target.count(prefix + "odds_events") == market_events
        assert target.count(prefix + "odds") == len(live)
    finally:
        await store.close()


def test_only_selects_by_category(tmp_path: Path) -> None:
    markets = Markets(tmp_path)
    asyncio.run(markets.drive(markets=2, updates=1))
    result = replay("--store", markets.url, "--only", "market")
    assert result.exit_code == 0, result.output
    assert "markets: replayed" in result.output
    assert "2 markets" in result.output
    assert "races:" not in result.output
    assert "wallets:" not in result.output

    to = f"sqlite:///{tmp_path / 'local.db'}"
    result = replay("--store", markets.url, "--to", to, "--only", "market")
    assert result.exit_code == 0, result.output
    assert "odds: replayed" in result.output

    for args, reason in (
        (["--only", "quote"], "knows the categories race (races), wallet (wallets), market"),
        (["--to", to, "--only", "race"], "replay --to knows the categories market (odds tables)"),
    ):
        result = replay("--store", markets.url, *args)
        assert result.exit_code == 1, result.output
        assert reason in " ".join(result.output.split())
        assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--to", "ftp://host/x"], "unsupported scheme 'ftp'"),
        (["--to", "local.db"], "unsupported a URL without a scheme"),
        (["--to", "sqlite://"], "names no file"),
        (["--to", "mysql://u:s3cret@[bad/x"], "--to:"),
        (["--to", "sqlite:///x.db", "--until", "yesterday"], "--until takes a log position"),
        # regression: a time that is out of range once in UTC was a traceback
        (["--to", "sqlite:///x.db", "--until", "9999-12-31T23:59:59-01:00"], "out of range"),
        (["--to", "sqlite:///x.db", "--until", "0001-01-01T00:00:00+01:00"], "out of range"),
        (["--to", "sqlite:///x.db", "--table-prefix", "bad\x01"], "--table-prefix"),
        (["--until", "12"], "--until goes with --to"),
        (["--from-start"], "--from-start goes with --to"),
        (["--to", "mysql://root@127.0.0.1:1/test"], "the target database"),
    ],
)
def test_bad_arguments_are_refused_with_a_reason(
    tmp_path: Path, args: list[str], reason: str
) -> None:
    store = f"sqlite:///{tmp_path / 'events.db'}"
    result = CliRunner().invoke(cli, ["replay", "--store", store, *args])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert reason in " ".join(result.output.split())
    assert "s3cret" not in result.output
    assert "Traceback" not in result.output


def test_until_parses_positions_and_times() -> None:
    assert Until.parse("42") == Until(position=42)
    assert Until.parse("2026-11-29T20:43:00Z").time == datetime(2026, 11, 29, 20, 43, tzinfo=UTC)
    naive = Until.parse("2026-11-29T20:43:00")  # without an offset: UTC
    assert naive.time == datetime(2026, 11, 29, 20, 43, tzinfo=UTC)
    with pytest.raises(ReplayError):
        Until.parse("-1")


async def test_a_page_is_written_as_one_run_per_table(tmp_path: Path) -> None:
    """Regression: a page's records alternated odds / odds_events, event by event, so the
    writer made a run (on PostgreSQL a staging table) per record; 2,000 events in a page
    exhausted PostgreSQL's lock table (``out of shared memory``)."""
    markets = Markets(tmp_path)
    await markets.drive(markets=4, updates=3)
    store = await open_store(markets.url)
    sink = open_odds_sink(f"sqlite:///{tmp_path / 'odds.db'}")
    written: list[list[str]] = []
    write = sink.write

    def recording(records: Any, **kw: Any) -> Any:
        written.append([r.topic for r in records])
        return write(records, **kw)

    sink.write = recording  # type: ignore[method-assign]
    try:
        await OddsReplay(store, sink).run()
    finally:
        sink.close()
        await store.close()
    assert written
    assert written[0].count("odds") > 1
    for topics in written:
        groups = [t for i, t in enumerate(topics) if i == 0 or topics[i - 1] != t]
        assert groups == sorted(set(topics)), groups


def test_a_time_bound_earlier_than_the_tables_hold_is_refused(
    tmp_path: Path, target: Target
) -> None:
    """Regression: ``--until TIME`` over tables already past that time ended with exit 0
    and "the tables hold the log up to position N", the tables still holding the events
    recorded after TIME; only a position bound was checked."""
    markets = Markets(tmp_path)
    _head, first = asyncio.run(markets.drive(markets=2, updates=1))
    time.sleep(0.01)
    between = datetime.now(UTC)
    time.sleep(0.01)
    _head, last = asyncio.run(markets.drive(markets=2, updates=1))
    to = plain_url(target, tmp_path)
    prefix = prefix_for(target)
    base = ["--store", markets.url, "--to", to, "--table-prefix", prefix]
    assert replay(*base).exit_code == 0
    assert tables(target, prefix) == normalised(last)

    result = replay(*base, "--until", between.isoformat())
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert "recorded after --until" in said
    assert "--from-start" in said
    assert "Traceback" not in result.output
    assert tables(target, prefix) == normalised(last)  # nothing written

    result = replay(*base, "--until", between.isoformat(), "--from-start")
    assert result.exit_code == 0, result.output
    assert tables(target, prefix) == normalised(first)
    # the same bound again: nothing past it is held, nothing to do
    result = replay(*base, "--until", between.isoformat())
    assert result.exit_code == 0, result.output
    assert tables(target, prefix) == normalised(first)


def recorded_times(url: str) -> list[tuple[int, int, str]]:
    """(position, recorded µs, stream) of every event of the SQLite log at ``url``."""
    with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
        return list(db.execute("SELECT position, recorded_us, stream_id FROM events ORDER BY 1"))


def test_until_a_time_at_its_boundaries(tmp_path: Path) -> None:
    """An event recorded exactly at the bound is in, one a microsecond later out; the
    bound's offset is honoured; a bound before the first event writes no market."""
    markets = Markets(tmp_path)
    first_head, first = asyncio.run(markets.drive(markets=2, updates=1))
    time.sleep(0.01)
    asyncio.run(markets.drive(markets=2, updates=1))
    times = dict((p, us) for p, us, _s in recorded_times(markets.url))
    edge = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=times[first_head])
    store = ["--store", markets.url]

    def run(until: str, name: str) -> tuple[Result, list[tuple[Any, ...]]]:
        db = tmp_path / f"{name}.db"
        result = replay(*store, "--to", f"sqlite:///{db}", "--until", until)
        with contextlib.closing(sqlite3.connect(db)) as conn:
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'odds'").fetchall():
                return result, []  # no market written: no table made
            rows = list(conn.execute("SELECT id, created_at, updated_at FROM odds ORDER BY id"))
        return result, rows

    at, at_rows = run(edge.isoformat(), "at")
    assert at.exit_code == 0, at.output
    assert f"up to position {first_head:,}" in " ".join(at.output.split())
    assert [r[2] for r in at_rows] == [e["record"]["UpdatedAt"] for e in first]
    # the same instant written with another offset
    paris = edge.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert "+02:00" in paris
    assert run(paris, "offset")[1] == at_rows
    # a microsecond earlier: the event at the edge (the last market's deletion) is out
    before, before_rows = run((edge - timedelta(microseconds=1)).isoformat(), "before")
    assert before.exit_code == 0, before.output
    assert f"up to position {first_head - 1:,}" in " ".join(before.output.split())
    assert before_rows[:-1] == at_rows[:-1]
    assert before_rows[-1][2] != at_rows[-1][2]
    # before the first event: no market
    none, none_rows = run("2000-01-01T00:00:00Z", "none")
    assert none.exit_code == 0, none.output
    assert none_rows == []


def test_until_a_time_over_a_clock_that_stepped_back(tmp_path: Path) -> None:
    """Times that do not follow the positions (one event stamped an hour ahead): the
    replay stops before the first market event recorded after the bound, as documented,
    a later run without the bound goes on to the head, and the bound is then refused."""
    markets = Markets(tmp_path)
    head, _live = asyncio.run(markets.drive(markets=3, updates=2))
    events = [(p, us) for p, us, s in recorded_times(markets.url) if s.startswith("market-")]
    ahead = events[len(events) // 2][0]
    with contextlib.closing(sqlite3.connect(markets.url.removeprefix("sqlite:///"))) as db:
        db.execute(
            "UPDATE events SET recorded_us = recorded_us + 3600000000 WHERE position = ?",
            (ahead,),
        )
        db.commit()
    bound = datetime.now(UTC).isoformat()  # after every event but the one stamped ahead
    by_time = f"sqlite:///{tmp_path / 'by_time.db'}"
    by_position = f"sqlite:///{tmp_path / 'by_position.db'}"
    result = replay("--store", markets.url, "--to", by_time, "--until", bound)
    assert result.exit_code == 0, result.output
    assert f"up to position {ahead - 1:,}" in " ".join(result.output.split())
    result = replay("--store", markets.url, "--to", by_position, "--until", str(ahead - 1))
    assert result.exit_code == 0, result.output

    def dump(url: str) -> list[Any]:
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
            return [
                list(db.execute("SELECT * FROM odds ORDER BY id")),
                list(db.execute("SELECT * FROM odds_events ORDER BY id")),
            ]

    assert dump(by_time) == dump(by_position)
    assert dump(by_time)[0]

    result = replay("--store", markets.url, "--to", by_time)
    assert result.exit_code == 0, result.output
    assert f"up to position {head:,}" in " ".join(result.output.split())
    result = replay("--store", markets.url, "--to", by_time, "--until", bound)
    assert result.exit_code == 1, result.output
    assert "recorded after --until" in " ".join(result.output.split())


def test_a_sink_connector_cannot_share_the_replays_position_row(
    tmp_path: Path, target: Target
) -> None:
    """Regression: the replay's position row was named ``replay-<prefix>odds``, a name a
    SQL sink connector may have; such a connector writing into the same database moved
    the replay's position (the replay then skipped the log up to it, writing nothing)."""
    markets = Markets(tmp_path)
    _head, live = asyncio.run(markets.drive(markets=3, updates=1))
    prefix = prefix_for(target)
    to = plain_url(target, tmp_path)
    for name in (f"replay-{prefix}odds", f"REPLAY-{prefix.upper()}ODDS"):
        check_name(name)  # connectors may be named so: they have rows of their own
        target.sinks.append(name)
        with JdbcSink(name, target.config(target.table("conn"))) as connector:
            connector.write([], after=0, position=10**6)
    result = replay("--store", markets.url, "--to", to, "--table-prefix", prefix)
    assert result.exit_code == 0, result.output
    assert tables(target, prefix) == normalised(live)
    sink = open_odds_sink(to, table_prefix=prefix)
    sink.close()
    with pytest.raises(InvalidConnectorName):
        check_name(sink.name)


KILLED_CHILD = """
import asyncio, sys, time
from oddstream.eventstore import open_store
from oddstream.sinks.replay import OddsReplay, open_odds_sink

store_url, to, prefix = sys.argv[1:4]


async def main():
    store = await open_store(store_url)
    sink = open_odds_sink(to, table_prefix=prefix)
    save = sink.dialect.save_position
    calls = 0

    def saving(*args, **kw):
        nonlocal calls
        calls += 1
        save(*args, **kw)
        if calls == 3:  # the third page's rows and position written, not committed
            print("mid-transaction", flush=True)
            time.sleep(120)

    sink.dialect.save_position = saving
    await OddsReplay(store, sink, page_size=7).run()

asyncio.run(main())
"""


def test_a_replay_killed_mid_transaction_resumes(tmp_path: Path, target: Target) -> None:
    """SIGKILL while a page's transaction is open (its rows and position written, not
    committed): the target keeps the two pages before, the next run resumes from there
    and the tables end as the live view answered, each row once."""
    markets = Markets(tmp_path)
    head, live = asyncio.run(markets.drive(markets=5, updates=4))
    prefix = prefix_for(target)
    to = plain_url(target, tmp_path)
    src = str(Path(oddstream.__file__).resolve().parents[1])
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_CHILD, markets.url, to, prefix],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": src},
    )
    try:
        assert child.stdout is not None
        ready = select.select([child.stdout], [], [], 60)[0]
        assert ready, "the child never reached the third page"
        assert child.stdout.readline().strip() == b"mid-transaction"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    async def resume() -> tuple[int, list[int], Any]:
        store = await open_store(markets.url)
        sink = open_odds_sink(to, table_prefix=prefix)
        try:
            worker = OddsReplay(store, sink, page_size=7)
            stopped_at = await worker.stored_position()
            page = await store.read_page(0, 14, category="market")
            count = target.count(prefix + "odds_events")
            result = await worker.run()
            return stopped_at, [e.position for e in page.events], (count, result)
        finally:
            sink.close()
            await store.close()

    stopped_at, market_positions, (held, result) = asyncio.run(resume())
    # two pages of 7 market events committed, the third rolled back
    assert stopped_at == market_positions[13]
    assert held == 14
    assert (result.start, result.position) == (stopped_at, head)
    assert tables(target, prefix) == normalised(live)
    assert target.count(prefix + "odds_events") == sum(len(e["events"]) for e in live)


async def test_another_replay_moving_the_position_meanwhile(tmp_path: Path, target: Target) -> None:
    """Two replays into the same tables at once: the one whose page no longer starts
    where the target stands stops with a reason (another writer, run again), not a
    driver's or the writer's internal error; run again, the tables are the view's."""
    markets = Markets(tmp_path)
    head, live = await markets.drive(markets=5, updates=4)
    prefix = prefix_for(target)
    to = plain_url(target, tmp_path)
    store = await open_store(markets.url)
    other = open_odds_sink(to, table_prefix=prefix)
    sink = open_odds_sink(to, table_prefix=prefix)
    try:
        write = sink.write
        calls = 0

        def racing(*args: Any, **kw: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 3:  # meanwhile another replay (pages of 7) writes two pages
                other_write = other.write
                done = 0

                def two_pages(*a: Any, **k: Any) -> Any:
                    nonlocal done
                    done += 1
                    if done == 3:
                        raise RuntimeError("the other replay stops")
                    return other_write(*a, **k)

                other.write = two_pages  # type: ignore[method-assign]

                async def other_replay() -> None:
                    store_b = await open_store(markets.url)
                    try:
                        await OddsReplay(store_b, other, page_size=7).run()
                    finally:
                        await store_b.close()

                with pytest.raises(RuntimeError, match="the other replay stops"):
                    asyncio.run(other_replay())
            return write(*args, **kw)

        sink.write = racing  # type: ignore[method-assign]
        with pytest.raises(ReplayError, match="another replay") as raised:
            await OddsReplay(store, sink, page_size=5).run()
        assert "run again" in str(raised.value)
        sink.write = write  # type: ignore[method-assign]
        result = await OddsReplay(store, sink, page_size=5).run()  # run again
    finally:
        other.close()
        sink.close()
        await store.close()
    assert result.position == head
    assert tables(target, prefix) == normalised(live)
