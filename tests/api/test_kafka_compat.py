"""The original Kafka POC's scripts against the service: its subject, its topic, its odds."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from oddstream.cli import app as cli

from .conftest import LiveServer, live_settings, run_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """The service as the POC's scripts meet it: with the Kafka integration on, whose
    anonymous producers are allowed by default (the scripts send no key)."""
    yield from run_server(live_settings(tmp_path), kafka_compat=True)


AVRO = "application/vnd.kafka.avro.v2+json"
VECTOR = [(1, 0, 25), (1, 0, 50), (1, 0, 50), (2, 0, 5), (2, 0, 10), (2, 0, 20), (2, 0, -20)]


def test_poc_subject_is_there_with_id_1(server: LiveServer) -> None:
    latest = httpx.get(f"{server.url}/subjects/tote_win_bets-value/versions/latest").json()
    assert latest["id"] == 1
    assert latest["subject"] == "tote_win_bets-value"


def _produce(server: LiveServer, records: list[dict]) -> dict:
    response = httpx.post(
        f"{server.url}/topics/tote_win_bets",
        json={"value_schema_id": 1, "records": records},
        headers={"Content-Type": AVRO, "Accept": "application/vnd.kafka.v2+json"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_bets_through_the_rest_proxy_become_odds_rows(server: LiveServer, tmp_path) -> None:
    records = [
        {"value": {"RUNNER_ID": {"int": r}, "RACE_ID": {"int": race}, "AMOUNT": {"double": a}}}
        for r, race, a in VECTOR
    ]
    answer = _produce(server, records)
    assert [o["offset"] for o in answer["offsets"]] == list(range(7))
    assert all(o["error_code"] is None for o in answer["offsets"])
    # the race was created on the fly as a compatibility race with the stakes
    deadline = time.monotonic() + 10
    while True:
        race = httpx.get(f"{server.url}/races/0").json()
        if race.get("pools") and race["pools"][0]["gross_cents"] == 14_000:
            break
        assert time.monotonic() < deadline, race
        time.sleep(0.05)
    assert race["compat"] is True
    assert race["pools"][0]["takeout_bps"] == 0
    # the POC's odds stream, row for row
    printed = "\n".join(_print(tmp_path, "--limit", "7"))
    assert printed.count('"race_pool_amount"') == 7
    for expected in ("26.0", "9.333333333333334", "4.571428571428571"):
        assert expected in printed
    # a record that is not a bet is stored, so reported as produced (a REST Proxy only
    # says whether a record was stored); the tote refuses it downstream
    bad = _produce(
        server, [{"value": {"RUNNER_ID": {"int": 1}, "RACE_ID": None, "AMOUNT": {"double": 5.0}}}]
    )
    assert bad["offsets"][0]["error_code"] is None
    assert bad["offsets"][0]["offset"] == 7


def _ksql_odds(bets: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    """What the POC's ksqlDB statements emit per bet, computed here on its own: the
    running sums per runner and per race joined to each bet, odds = race pool / runner
    pool (no takeout)."""
    runner_pool: dict[int, float] = {}
    race_pool: dict[int, float] = {}
    rows = []
    for runner, race, amount in bets:
        runner_pool[runner] = runner_pool.get(runner, 0.0) + amount
        race_pool[race] = race_pool.get(race, 0.0) + amount
        rows.append((race, runner, race_pool[race] / runner_pool[runner]))
    return rows


def _print(tmp_path: Path, *args: str) -> list[str]:
    result = CliRunner().invoke(
        cli,
        [
            "print",
            "tote_win_bet_race_runners_odds",
            "--from-beginning",
            *args,
            "--store",
            f"sqlite:///{tmp_path}/api.db",
        ],
    )
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_the_poc_close_off_records_are_accepted_and_emit_their_odds(
    server: LiveServer, tmp_path: Path
) -> None:
    """post_bets_zero.sh: AMOUNT 0.0 for runners 1 and 2 after the seven bets. Stored,
    produced, and ksqlDB's rows for them (runner 1 → 1.12, runner 2 → 9.33)."""
    closing = [(1, 0, 0.0), (2, 0, 0.0)]
    records = [
        {"value": {"RUNNER_ID": {"int": r}, "RACE_ID": {"int": race}, "AMOUNT": {"double": a}}}
        for r, race, a in [*VECTOR, *closing]
    ]
    answer = _produce(server, records)
    assert [o["error_code"] for o in answer["offsets"]] == [None] * 9
    expected = _ksql_odds([(r, race, float(a)) for r, race, a in [*VECTOR, *closing]])
    assert [round(odds, 2) for *_, odds in expected[-2:]] == [1.12, 9.33]
    deadline = time.monotonic() + 10
    while len(lines := _print(tmp_path, "--json", "--limit", "9")) < 9:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    rows = [json.loads(line)["value"] for line in lines]
    assert [(r["race_id"], r["runner_id"], r["odds"]) for r in rows] == expected
    # RACE_ID is an Avro int, and the rows give it as that int (not the text "0")
    assert all(type(r["race_id"]) is int for r in rows)
    # ksqlDB PRINT's form: one line per record, rowtime, key, value, partition
    printed = _print(tmp_path, "--limit", "9")
    assert len(printed) == 9
    for line, row in zip(printed, rows, strict=True):
        match = PRINT_LINE.fullmatch(line)
        assert match is not None, line
        assert match["key"] == "0"
        assert json.loads(match["value"]) == row


PRINT_LINE = re.compile(
    r"rowtime: \d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}\.\d{3} Z, key: (?P<key>[^,]*), "
    r"value: (?P<value>\{.*\}), partition: 0"
)


def test_kafka_compat_ports(tmp_path) -> None:
    from oddstream.config import Settings

    from .conftest import ADMIN_KEY, free_port, run_server

    sr_port, rp_port = free_port(), free_port()
    settings = Settings().with_overrides(
        store_url=f"sqlite:///{tmp_path}/k.db",
        admin_key=ADMIN_KEY,
        schema_registry_port=sr_port,
        rest_proxy_port=rp_port,
        kafka_connect_port=free_port(),
    )
    for _ in run_server(settings, kafka_compat=True):
        deadline = time.monotonic() + 10
        while True:
            try:
                subjects = httpx.get(f"http://127.0.0.1:{sr_port}/subjects").json()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert subjects == ["tote_win_bets-value"]
        topics = httpx.get(f"http://127.0.0.1:{rp_port}/topics").json()
        assert "tote_win_bets" in topics
        missing = httpx.get(f"http://127.0.0.1:{sr_port}/no/such/route")
        assert missing.status_code == 404
        assert missing.json()["error_code"] == 404
