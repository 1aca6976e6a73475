"""``oddstream connectors …`` against a running service: create from a file, list,
status (with the config report and the sink's figures), config (password hidden),
pause, resume, restart, delete, and the refusals printed as errors."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from oddstream.cli import app as cli

from .conftest import ADMIN_KEY, LiveServer, live_settings, run_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    yield from run_server(live_settings(tmp_path))


def test_connectors_commands(server: LiveServer, tmp_path: Path) -> None:
    runner = CliRunner()
    name = f"cli-{uuid.uuid4().hex[:6]}"
    spec = tmp_path / "sink.json"
    spec.write_text(
        json.dumps(
            {
                "name": name,
                "config": {
                    "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
                    "connection.url": f"jdbc:sqlite:{tmp_path / 'a.db'}",
                    "connection.password": "s3cret",
                    "topics": "cli_topic",
                    "odd.setting": "1",
                },
            }
        )
    )
    opts = ["--url", server.url, "--key", ADMIN_KEY]

    def run(*args: str) -> str:
        result = runner.invoke(cli, ["connectors", *args, *opts], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        return result.output

    created = run("create", str(spec))
    assert f"connector {name} created" in created
    assert "unknown setting 'odd.setting' kept, not used" in created
    listed = run("list")
    assert name in listed
    assert "RUNNING" in listed
    status = run("status", name)
    assert f"connector {name}: RUNNING" in status
    assert "task 0: RUNNING" in status
    config = run("config", name)
    assert "[hidden]" in config
    assert "s3cret" not in config
    assert f"connector {name} paused" in run("pause", name)
    assert f"connector {name}: PAUSED" in run("status", name)
    assert f"connector {name} resumed" in run("resume", name)
    assert f"connector {name} restarted" in run("restart", name)
    assert f"connector {name} deleted" in run("delete", name)

    missing = runner.invoke(cli, ["connectors", "status", name, *opts])
    assert missing.exit_code == 1
    assert f"404: Connector {name} not found" in missing.output
    again = runner.invoke(cli, ["connectors", "create", str(spec), *opts])
    assert again.exit_code == 0  # deleted, so it may be created again
    exists = runner.invoke(cli, ["connectors", "create", str(spec), *opts])
    assert exists.exit_code == 1
    assert "409" in exists.output
    no_key = runner.invoke(
        cli, ["connectors", "list", "--url", server.url], env={"ODDSTREAM_ADMIN_KEY": ""}
    )
    assert no_key.exit_code == 1
    assert "401" in no_key.output
