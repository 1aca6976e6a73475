"""The app's wiring: health, the demo, the CLI around it."""

from __future__ import annotations

import contextlib
import sqlite3
import time

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from oddstream.api.app import create_app
from oddstream.cli import app as cli
from oddstream.config import Settings, SettingsError, redact_url
from oddstream.demo import demo_quote_tables_url
from oddstream.sinks.quote_tables.sample import sample_journeys

from .conftest import ADMIN_KEY


def test_healthz_reports_the_store(tmp_path) -> None:
    settings = Settings().with_overrides(store_url=f"sqlite:///{tmp_path}/h.db")
    with TestClient(create_app(settings)) as client:
        body = client.get("/healthz").json()
        assert body["status"] == "ok"
        assert body["store"]["backend"] == "sqlite"
        assert body["store"]["head_position"] >= 0  # the POC subject and topics are stored
        consumers = body["store"]["consumers"]
        assert {"tote-view", "wallet-read-model", "process-wallet-cashier"} <= set(consumers)
        assert all(c["lag"] >= 0 for c in consumers.values())


def test_the_demo_shows_the_quote_tables_beside_its_store(tmp_path) -> None:
    """``serve --demo`` puts the quote tables beside an SQLite store (none for another
    store) and the demo posts the sample quotes: the tables fill; a second start posts
    them again, finds them repeated, and the tables stay as they were."""
    assert demo_quote_tables_url("sqlite:///data/oddstream.db") == "jdbc:sqlite:data/analytics.db"
    assert demo_quote_tables_url(f"{tmp_path}/d.db") == f"jdbc:sqlite:{tmp_path}/analytics.db"
    assert demo_quote_tables_url("postgresql://postgres@127.0.0.1/test") is None
    assert demo_quote_tables_url("sqlite:///:memory:") is None
    store_url = f"sqlite:///{tmp_path}/d.db"
    url = demo_quote_tables_url(store_url)
    settings = Settings().with_overrides(
        store_url=store_url, quote_tables_url=url, admin_key=ADMIN_KEY
    )
    analytics = tmp_path / "analytics.db"
    journeys = sample_journeys()

    def quotes() -> list[tuple[str, int, int]]:
        if not analytics.exists():
            return []
        with contextlib.closing(sqlite3.connect(analytics)) as conn:
            try:
                return conn.execute(
                    "SELECT quote_id, items_count, last_position FROM quotes ORDER BY quote_id"
                ).fetchall()
            except sqlite3.OperationalError:
                return []  # not created yet

    def wait_for_quotes(client: TestClient) -> list[tuple[str, int, int]]:
        deadline = time.monotonic() + 30
        while len(quotes()) < len({e.data["quote_id"] for e in journeys}):
            assert time.monotonic() < deadline, "the quote tables did not fill"
            time.sleep(0.1)
        return quotes()

    def logged() -> int:
        with contextlib.closing(sqlite3.connect(tmp_path / "d.db")) as conn:
            (count,) = conn.execute(
                "SELECT count(*) FROM events WHERE type LIKE 'quotes.%'"
            ).fetchone()
        return int(count)

    with TestClient(create_app(settings, demo=True)) as client:
        first = wait_for_quotes(client)
        assert {q for q, _, _ in first} == {e.data["quote_id"] for e in journeys}
        assert sum(n for _, n, _ in first) > 0
    stored = logged()
    assert 0 < stored <= len(journeys)  # an update equal to the latest is a repeat
    with TestClient(create_app(settings, demo=True)) as client:
        admin = {"X-API-Key": ADMIN_KEY}
        status = client.get("/connectors/quote-tables/status", headers=admin).json()
        assert status["tasks"][0]["state"] == "RUNNING"
        assert wait_for_quotes(client) == first
    assert logged() == stored  # posted again: all repeated, nothing new in the log


def test_demo_runs_races(tmp_path) -> None:
    settings = Settings().with_overrides(
        store_url=f"sqlite:///{tmp_path}/d.db", demo_bets_per_second=200, demo_race_seconds=5
    )
    with TestClient(create_app(settings, demo=True)) as client:
        deadline = time.monotonic() + 10
        while True:
            races = client.get("/races").json()["races"]
            if races and sum(r["bets"] for r in races) >= 5:
                break
            assert time.monotonic() < deadline, "the demo placed no bets"
            time.sleep(0.1)
        assert all(r["status"] in ("open", "closed", "resulted", "final") for r in races)
        assert {p["pool"] for p in races[0]["pools"]} == {
            "WIN", "PLACE", "SHOW", "EXACTA", "QUINELLA", "TRIFECTA"
        }  # fmt: skip


def test_demo_keeps_fixed_odds_markets_moving(tmp_path) -> None:
    """``serve --demo`` keeps markets on the page ``/markets``: created by the demo's
    provider, three-way, and repriced (their event log grows past the creation)."""
    settings = Settings().with_overrides(
        store_url=f"sqlite:///{tmp_path}/m.db", demo_bets_per_second=50, demo_race_seconds=10
    )
    with TestClient(create_app(settings, demo=True)) as client:
        deadline = time.monotonic() + 15
        while True:
            markets = client.get("/odds", params={"page_no": 1, "page_size": 100}).json()["Data"]
            repriced = [
                m
                for m in markets
                if len(client.get(f"/odds/{m['ExternalID']}/events").json()["Data"]) >= 2
            ]
            if repriced:
                break
            assert time.monotonic() < deadline, f"no market repriced: {markets}"
            time.sleep(0.2)
        market = repriced[0]
        assert market["GameID"].startswith("football:demo-")
        assert market["MoneyLine"]["Draw"] is not None
        assert client.get("/markets").status_code == 200


def test_redact_hides_passwords() -> None:
    assert redact_url("postgresql://u:secret@h:5432/db") == "postgresql://u@h:5432/db"
    assert redact_url("sqlite:///data/x.db") == "sqlite:///data/x.db"


def test_cli_info(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["info", "--store", f"sqlite:///{tmp_path}/c.db"])
    assert result.exit_code == 0, result.output
    assert "backend: sqlite" in result.output
    assert "head position: 0" in result.output


def test_settings_reject_unknown_keys() -> None:
    with pytest.raises(SettingsError, match="unknown settings: \\['nope'\\]"):
        Settings().with_overrides(nope=1)
