"""``oddstream connectors …`` against a running service: create from a file, list,
status (with the config report and the sink's figures), config (password hidden),
pause, resume, restart, delete, and the refusals printed as errors."""

from __future__ import annotations

import http.server
import json
import threading
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


def test_answers_that_are_not_connects_end_the_command_with_a_message(tmp_path: Path) -> None:
    """A --url that is not oddstream (a proxy's JSON error of another shape, a page that
    is not JSON) or a file that is not JSON: a message and exit code 1, no traceback;
    brackets in the URL are printed, not taken as markup."""
    answers = iter(
        [(502, b'["not", "a", "message"]'), (200, b"<html>hello</html>"), (200, b"<html>")]
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = next(answers)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    runner = CliRunner()
    try:
        for args, expected in (
            (["list"], '502: ["not", "a", "message"]'),
            (["list"], "did not answer JSON"),
            (["config", "x"], "did not answer JSON"),
        ):
            result = runner.invoke(cli, ["connectors", *args, "--url", url, "--key", ADMIN_KEY])
            assert result.exit_code == 1, result.output
            assert not isinstance(result.exception, AttributeError | ValueError)
            assert expected in result.output
    finally:
        server.shutdown()
        server.server_close()
    closed = runner.invoke(cli, ["connectors", "list", "--url", "http://127.0.0.1:1/[b]"])
    assert closed.exit_code == 1
    assert "cannot reach http://127.0.0.1:1/[b]" in closed.output
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    broken = runner.invoke(cli, ["connectors", "create", str(bad), "--url", url])
    assert broken.exit_code == 1
    assert "bad.json" in broken.output
