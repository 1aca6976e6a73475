"""The CLI against a live server and a store."""

from __future__ import annotations

import sqlite3

import httpx
from rich.console import Console
from typer.testing import CliRunner

from oddstream.cli import app as cli
from oddstream.cli.client import _board_table

from .conftest import LiveServer
from .test_tote_api import RACE

runner = CliRunner()


def _open(server: LiveServer) -> None:
    httpx.post(f"{server.url}/races", json=RACE, headers=server.admin).raise_for_status()
    httpx.post(f"{server.url}/races/r1/open", headers=server.admin).raise_for_status()


def test_races_and_bet(server: LiveServer) -> None:
    _open(server)
    placed = runner.invoke(
        cli, ["bet", "--race", "r1", "--runner", "2", "--stake", "2.50", "--url", server.url]
    )
    assert placed.exit_code == 0, placed.output
    assert "placed at position" in placed.output
    refused = runner.invoke(
        cli, ["bet", "--race", "r1", "--runner", "9", "--stake", "2", "--url", server.url]
    )
    assert refused.exit_code == 1
    assert "unknown_runner" in refused.output
    bad = runner.invoke(
        cli, ["bet", "--race", "r1", "--runner", "1", "--stake", "2.505", "--url", server.url]
    )
    assert bad.exit_code == 1
    assert "whole cents" in bad.output
    listing = runner.invoke(cli, ["races", "--url", server.url])
    assert listing.exit_code == 0, listing.output
    assert "r1" in listing.output
    assert "open" in listing.output


def test_races_reports_an_unreachable_service() -> None:
    result = runner.invoke(cli, ["races", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "cannot reach" in result.output


def test_replay_reports_rate(server: LiveServer, tmp_path) -> None:
    _open(server)
    for i in range(5):
        httpx.post(
            f"{server.url}/races/r1/bets", json={"selection": [1 + i], "stake_cents": 200}
        ).raise_for_status()
    httpx.post(
        f"{server.url}/wallet/alice/credit", json={"amount": 12.5}, headers=server.admin
    ).raise_for_status()
    # the server's store (tmp_path/api.db), read by a second process-like client that
    # rebuilds the wallet read model into a file of its own
    rebuilt = tmp_path / "rebuilt.db"
    result = runner.invoke(
        cli,
        ["replay", "--store", f"sqlite:///{tmp_path}/api.db"],
        env={"ODDSTREAM_READ_MODEL_PATH": str(rebuilt), "ODDSTREAM_REDIS_URL": ""},
    )
    assert result.exit_code == 0, result.output
    assert "races: replayed" in result.output
    assert "wallets: replayed" in result.output
    assert "events/s" in result.output
    assert "1 races" in result.output
    with sqlite3.connect(rebuilt) as db:
        (balance,) = db.execute(
            "SELECT balance_cents FROM wallet_balances WHERE wallet_id = 'alice'"
        ).fetchone()
    assert balance == 1_250


def test_board_table_renders() -> None:
    board = {
        "status": "open",
        "pools": [{"pool": "WIN", "gross_cents": 12_000}],
        "runners": [
            {
                "number": 1,
                "name": "Silver Comet",
                "scratched": False,
                "win_stakes_cents": 4_000,
                "win_dividend_cents": 255,
                "ladder": "3-2",
                "place_pays": [240, 300],
                "show_pays": None,
            },
            {
                "number": 2,
                "name": "Paper Tiger",
                "scratched": True,
                "win_stakes_cents": 0,
                "win_dividend_cents": None,
                "ladder": None,
                "place_pays": None,
                "show_pays": None,
            },
        ],
    }
    console = Console(record=True, width=120)
    console.print(_board_table("r1", 42, board))
    text = console.export_text()
    assert "Silver Comet" in text
    assert "$2.55" in text
    assert "3-2" in text
    assert "$2.40–$3.00" in text
    assert "position 42" in text


def test_serve_refuses_unusable_keys_clearly(tmp_path) -> None:
    result = runner.invoke(
        cli,
        ["serve", "--store", f"sqlite:///{tmp_path}/k.db"],
        env={"ODDSTREAM_ADMIN_KEY": "short"},
    )
    assert result.exit_code == 1
    assert "API keys must be at least 16" in result.output
