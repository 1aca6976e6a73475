"""The original Kafka POC's scripts against the service: its subject, its topic, its odds."""

from __future__ import annotations

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
    """The service as the POC's scripts meet it: they send no key, so anonymous
    producers are allowed (as ``--kafka-compat`` does by default)."""
    yield from run_server(live_settings(tmp_path, compat_anonymous_producers=True))


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
    result = CliRunner().invoke(
        cli,
        [
            "print",
            "tote_win_bet_race_runners_odds",
            "--from-beginning",
            "--limit",
            "7",
            "--store",
            f"sqlite:///{tmp_path}/api.db",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.count('"race_pool_amount"') == 7
    for expected in ("26.0", "9.333333333333334", "4.571428571428571"):
        assert expected in result.output
    # a record that is not a bet is stored but refused downstream, with a reason
    bad = _produce(
        server, [{"value": {"RUNNER_ID": {"int": 1}, "RACE_ID": None, "AMOUNT": {"double": 5.0}}}]
    )
    assert bad["offsets"][0]["error_code"] == 2
    assert "RACE_ID" in bad["offsets"][0]["error"]


def test_kafka_compat_ports(tmp_path) -> None:
    from oddstream.config import Settings

    from .conftest import ADMIN_KEY, free_port, run_server

    sr_port, rp_port = free_port(), free_port()
    settings = Settings().with_overrides(
        store_url=f"sqlite:///{tmp_path}/k.db",
        admin_key=ADMIN_KEY,
        schema_registry_port=sr_port,
        rest_proxy_port=rp_port,
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
