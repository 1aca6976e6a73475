"""The app's wiring: health, the demo, the CLI around it."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from oddstream.api.app import create_app
from oddstream.cli import app as cli
from oddstream.config import Settings, SettingsError, redact_url


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
