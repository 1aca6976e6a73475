"""A sink's progress while it catches up (``oddstream connectors create FILE --wait``,
``connectors watch NAME``) against a running service: a connector over a log of a few
thousand records followed to live, a FAILED one ending with its reason and exit code 1,
a paused one and one whose target is unreachable (with ``--timeout``) too; and the
figures the bar shows, from readings made up here."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from oddstream.cli import app as cli
from oddstream.cli.connector_watch import CAUGHT_UP, NOT_CAUGHT_UP, Rate, Sample, follow

from .conftest import ADMIN_KEY, LiveServer, free_port, live_settings, run_server

RECORDS = 3000
JSON_RECORDS = "application/vnd.kafka.json.v2+json"
SCHEMA = {
    "type": "struct",
    "fields": [
        {"field": "id", "type": "int64"},
        {"field": "name", "type": "string", "optional": True},
    ],
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = live_settings(
        tmp_path,
        schema_registry_port=free_port(),
        rest_proxy_port=free_port(),
        kafka_connect_port=free_port(),
    )
    yield from run_server(settings, kafka_compat=True)


def produce(server: LiveServer, topic: str, ids: range, per_request: int = 10) -> None:
    """Records with a Connect JSON schema into ``topic``, ``per_request`` a request (a
    request is one event of the log: the sink's position counts events)."""
    for start in range(ids.start, ids.stop, per_request):
        chunk = range(start, min(start + per_request, ids.stop))
        records = [
            {"value": {"schema": SCHEMA, "payload": {"id": i, "name": f"n{i}"}}} for i in chunk
        ]
        answer = httpx.post(
            f"{server.url}/topics/{topic}",
            content=json.dumps({"records": records}),
            headers={"Content-Type": JSON_RECORDS},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text


def spec(tmp_path: Path, name: str, topic: str, db: Path | str, **extra: str) -> Path:
    path = tmp_path / f"{name}.json"
    config = {
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "connection.url": f"jdbc:sqlite:{db}",
        "topics": topic,
        "table.name.format": "rows",
        "auto.create": "true",
        "insert.mode": "upsert",
        "pk.mode": "record_value",
        "pk.fields": "id",
        "retry.backoff.ms": "50",
        **extra,
    }
    path.write_text(json.dumps({"name": name, "config": config}))
    return path


def connectors(server: LiveServer, *args: str) -> Any:
    return CliRunner().invoke(
        cli,
        ["connectors", *args, "--url", server.url, "--key", ADMIN_KEY],
        env={"COLUMNS": "200"},
    )


def details(server: LiveServer, name: str) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/connectors/{name}/status?details=true", headers=server.admin)
    answer.raise_for_status()
    return dict(answer.json().get("details", {}))


def row_count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM rows").fetchone()[0])
    finally:
        conn.close()


def names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"sink-{tag}", f"topic-{tag}"


def test_a_new_sink_is_followed_until_it_is_live(server: LiveServer, tmp_path: Path) -> None:
    name, topic = names()
    produce(server, topic, range(RECORDS))
    db = tmp_path / "analytics.db"
    file = spec(tmp_path, name, topic, db, **{"batch.size": "5"})
    created = connectors(server, "create", str(file), "--wait", "--interval", "0.05")
    assert created.exit_code == 0, created.output
    out = created.output
    assert f"connector {name} created" in out
    assert "lag 0" in out  # the bar's last reading
    assert "rows/s" in out
    assert f"connector {name} caught up: live at position" in out
    assert f"{RECORDS:,} rows written" in out
    assert row_count(db) == RECORDS

    # watching a live one ends at once; a record more is followed to live again
    produce(server, topic, range(RECORDS, RECORDS + 1))
    watched = connectors(server, "watch", name, "--interval", "0.05")
    assert watched.exit_code == 0, watched.output
    assert f"connector {name} caught up" in watched.output
    assert row_count(db) == RECORDS + 1


def test_the_readings_show_the_position_rising_to_the_head(
    server: LiveServer, tmp_path: Path
) -> None:
    """``follow`` itself, its readings kept: the position only rises, the lag is the
    head minus the position, and the last reading is live at lag 0."""
    name, topic = names()
    produce(server, topic, range(RECORDS))
    db = tmp_path / "analytics.db"
    body = json.loads(spec(tmp_path, name, topic, db, **{"batch.size": "5"}).read_text())
    readings: list[dict[str, Any]] = []

    def read() -> dict[str, Any]:
        answer = httpx.get(
            f"{server.url}/connectors/{name}/status?details=true", headers=server.admin
        )
        answer.raise_for_status()
        readings.append(answer.json())
        return dict(answer.json())

    httpx.post(f"{server.url}/connectors", json=body, headers=server.admin).raise_for_status()
    console = Console(record=True, width=200, force_terminal=True)
    assert follow(name, read, console, interval=0.02) == CAUGHT_UP
    samples = [Sample.of(r, 0.0) for r in readings]
    positions = [s.position for s in samples if s.position is not None]
    assert positions == sorted(positions)
    assert samples[-1].live
    assert samples[-1].lag == 0
    assert row_count(db) == RECORDS
    assert samples[0].lag  # the first reading found it behind the head…
    assert len(set(positions)) > 2  # …and later ones on the way


def test_a_failed_sink_ends_the_wait_with_its_reason(server: LiveServer, tmp_path: Path) -> None:
    name, topic = names()
    produce(server, topic, range(10))
    # a binary record carries no schema: with errors.tolerance=none the task FAILs there
    httpx.post(
        f"{server.url}/topics/{topic}",
        json={"records": [{"value": "AAE="}]},
        headers={"Content-Type": "application/vnd.kafka.binary.v2+json"},
    ).raise_for_status()
    db = tmp_path / "analytics.db"
    created = connectors(server, "create", str(spec(tmp_path, name, topic, db)), "--wait")
    assert created.exit_code == NOT_CAUGHT_UP, created.output
    assert f"connector {name} FAILED (task)" in created.output
    assert "no_schema" in created.output
    assert "Traceback (most recent call last)" not in created.output
    assert row_count(db) == 10  # the records before it were written

    watched = connectors(server, "watch", name)
    assert watched.exit_code == NOT_CAUGHT_UP
    assert "no_schema" in watched.output


def test_paused_unreachable_and_unknown(server: LiveServer, tmp_path: Path) -> None:
    name, topic = names()
    produce(server, topic, range(5))
    # SQLite's file in a directory not there: the sink retries, never live
    missing = tmp_path / "not-yet" / "a.db"
    assert connectors(server, "create", str(spec(tmp_path, name, topic, missing))).exit_code == 0
    deadline = time.monotonic() + 30
    while details(server, name).get("state") != "retrying":  # its first try has failed
        assert time.monotonic() < deadline, details(server, name)
        time.sleep(0.05)
    timed_out = connectors(server, "watch", name, "--timeout", "1", "--interval", "0.1")
    assert timed_out.exit_code == NOT_CAUGHT_UP, timed_out.output
    assert f"connector {name} not caught up after" in timed_out.output
    assert "retrying" in timed_out.output
    assert "last error:" in timed_out.output

    assert connectors(server, "pause", name).exit_code == 0
    paused = connectors(server, "watch", name)
    assert paused.exit_code == NOT_CAUGHT_UP
    assert f"connector {name} is PAUSED" in paused.output
    assert f"oddstream connectors resume {name}" in paused.output

    unknown = connectors(server, "watch", "no-such-connector")
    assert unknown.exit_code == 1
    assert "404: Connector no-such-connector not found" in unknown.output


def test_rate_over_a_window() -> None:
    rate = Rate(window=10.0)
    assert rate.add(0.0, 0) is None  # one sample: no rate yet
    assert rate.add(1.0, 100) == 100.0
    assert rate.add(2.0, 300) == 150.0
    # samples older than the window go: 20 s on, the rate is that of the last 10 s
    for t in range(3, 21):
        rate.add(float(t), 300 + (t - 2) * 10)
    assert rate.add(21.0, 300 + 19 * 10) == pytest.approx(10.0)
    assert len(rate._samples) <= 12
    # a count that goes back (the sink restarted) starts again
    assert rate.add(22.0, 5) is None
    assert rate.add(23.0, 25) == 20.0


def test_a_sample_of_each_kind_of_status() -> None:
    running = {
        "name": "s",
        "connector": {"state": "RUNNING", "worker_id": "w"},
        "tasks": [{"id": 0, "state": "RUNNING", "worker_id": "w"}],
        "details": {"state": "catching_up", "position": 40, "lag": 60, "rows_written": 7},
    }
    sample = Sample.of(running, 1.0)
    assert (sample.position, sample.lag, sample.head, sample.rows) == (40, 60, 100, 7)
    assert (sample.live, sample.failed, sample.paused) == (False, False, False)
    live = Sample.of({**running, "details": {"state": "live", "position": 100, "lag": 0}}, 2.0)
    assert live.live
    refused = Sample.of(
        {"connector": {"state": "FAILED", "worker_id": "w", "trace": "bad config"}, "tasks": []},
        3.0,
    )
    assert refused.failed
    assert refused.trace == "bad config"
    assert refused.head is None
    paused = Sample.of(
        {"connector": {"state": "PAUSED"}, "tasks": [{"id": 0, "state": "PAUSED"}]}, 4.0
    )
    assert paused.paused
    assert not paused.live


def test_the_timeout_bounds_the_wait_whatever_the_interval() -> None:
    """--timeout 1 --interval 60: the watch ends at 1 s, not after a 60 s sleep."""
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    behind = {
        "connector": {"state": "RUNNING"},
        "tasks": [{"id": 0, "state": "RUNNING"}],
        "details": {"state": "catching_up", "position": 1, "lag": 9, "rows_written": 1},
    }
    console = Console(record=True, width=200)
    code = follow(
        "s", lambda: behind, console, interval=60, timeout=1, clock=lambda: now[0], sleep=sleep
    )
    assert code == NOT_CAUGHT_UP
    assert sum(slept) == 1.0
    assert "not caught up after 1.0 s" in console.export_text()


def test_a_server_that_does_not_answer_is_bounded_by_the_timeout() -> None:
    """A status read that hangs ends at --timeout (a clear error, exit code 1), not at the
    client's 30 s."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()  # connections wait in the backlog: never answered
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        began = time.monotonic()
        result = CliRunner().invoke(
            cli,
            ["connectors", "watch", "s", "--url", url, "--timeout", "1"],
            env={"COLUMNS": "200"},
        )
        elapsed = time.monotonic() - began
    assert result.exit_code == NOT_CAUGHT_UP, result.output
    assert f"cannot reach {url}" in result.output
    assert "Traceback" not in result.output
    assert elapsed < 15  # well under the 30 s a read may otherwise take


def test_a_live_sink_behind_the_head_at_the_first_reading_is_waited_for() -> None:
    """Regression (CI): a record appended just before ``watch`` found the runner still
    ``live`` at lag 1, and the watch ended "caught up" with the record not yet written.
    Caught up now means live and at or past the head of the first reading."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def status(position: int, head: int) -> dict[str, Any]:
        return {
            "connector": {"state": "RUNNING"},
            "tasks": [{"id": 0, "state": "RUNNING"}],
            "details": {"state": "live", "position": position, "lag": head - position},
        }

    readings = iter([status(10, 11), status(10, 12), status(11, 12)])
    seen: list[float] = []

    def read() -> dict[str, Any]:
        seen.append(now[0])
        return next(readings)

    console = Console(record=True, width=200)
    code = follow("s", read, console, interval=0.1, clock=lambda: now[0], sleep=sleep)
    assert code == CAUGHT_UP
    assert len(seen) == 3  # not the first reading (live, lag 1), the one at position 11
    assert "caught up: live at position 11, lag 1" in console.export_text()
