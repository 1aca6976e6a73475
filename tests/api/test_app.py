"""The service: health, status page, and the CLI around it."""

from __future__ import annotations

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from oddstream.api.app import _redact, create_app
from oddstream.cli import app as cli
from oddstream.config import Settings


def test_healthz_reports_the_store(tmp_path) -> None:
    settings = Settings().with_overrides(store_url=f"sqlite:///{tmp_path}/h.db")
    with TestClient(create_app(settings)) as client:
        body = client.get("/healthz").json()
        assert body["status"] == "ok"
        assert body["store"]["backend"] == "sqlite"
        assert body["store"]["head_position"] == 0
        page = client.get("/")
        assert page.status_code == 200
        assert "head position <b>0</b>" in page.text
        assert client.get("/no-such-route").status_code == 404


def test_demo_heartbeat_moves_the_log(tmp_path) -> None:
    settings = Settings().with_overrides(store_url=f"sqlite:///{tmp_path}/d.db")
    with TestClient(create_app(settings, demo=True)) as client:
        import time

        deadline = time.monotonic() + 5
        while client.get("/healthz").json()["store"]["head_position"] < 1:
            assert time.monotonic() < deadline, "no heartbeat was appended"
            time.sleep(0.05)
        assert "Heartbeat" in client.get("/").text


def test_redact_hides_passwords() -> None:
    assert _redact("postgresql://u:secret@h:5432/db") == "postgresql://u@h:5432/db"
    assert _redact("sqlite:///data/x.db") == "sqlite:///data/x.db"


def test_cli_info(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["info", "--store", f"sqlite:///{tmp_path}/c.db"])
    assert result.exit_code == 0, result.output
    assert "backend: sqlite" in result.output
    assert "head position: 0" in result.output


def test_settings_reject_unknown_keys() -> None:
    import pytest

    from oddstream.eventstore import InvalidEvent

    with pytest.raises(InvalidEvent):
        Settings().with_overrides(nope=1)
