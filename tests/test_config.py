"""Settings: defaults, one environment variable per field, bad values refused with the
variable's name and the reason, checked overrides, and the CLI's clean exit."""

from __future__ import annotations

import os
from typing import Any, get_args

import pytest
from typer.testing import CliRunner

from oddstream.cli import app as cli
from oddstream.config import Settings, SettingsError
from oddstream.eventstore.factory import SYNCHRONOUS_MODES

DEFAULTS: dict[str, Any] = {
    "store_url": "sqlite:///data/oddstream.db",
    "sqlite_synchronous": "FULL",
    "sqlite_commit_thread": True,
    "pg_schema": "oddstream",
    "host": "127.0.0.1",
    "port": 8000,
    "kafka_compat": False,
    "schema_registry_port": 8081,
    "rest_proxy_port": 8082,
    "kafka_connect_port": 8083,
    "admin_key": None,
    "customer_keys": None,
    "api_keys_file": None,
    "kafka_anonymous_producers": None,
    "max_body_bytes": 16 * 1024 * 1024,
    "request_read_timeout_seconds": 20.0,
    "max_connections": 4096,
    "auth_failure_limit": 20,
    "auth_failure_window_seconds": 60.0,
    "read_wait_seconds": 2.0,
    "push_coalesce_ms": 100,
    "ready_max_lag": 10_000,
    "keep_finished_races": 50,
    "keep_finished_markets": 1000,
    "follow_pace_ms": 10.0,
    "page_max_bytes": 8 << 20,
    "snapshot_seconds": 60.0,
    "demo_bets_per_second": 20.0,
    "demo_race_seconds": 90.0,
    "read_model_path": "",
    "quote_tables_url": None,
    "redis_url": None,
    "redis_prefix": "oddstream:",
    "nats_url": None,
    "bus_format": "msgpack",
    "velocity_medium_rate": 100_000.0,
    "velocity_low_rate": 50_000.0,
    "partitions": 64,
    "command_deadline_seconds": 5.0,
    "rebalance_seconds": 0.5,
    "worker_health_host": "127.0.0.1",
    "worker_health_port": 0,
}

#: For each field: a text to put in its variable and the value it must read as.
FROM_ENV: dict[str, tuple[str, Any]] = {
    "store_url": ("postgresql://u@h:5432/db", "postgresql://u@h:5432/db"),
    "sqlite_synchronous": ("normal", "NORMAL"),
    "sqlite_commit_thread": ("off", False),
    "pg_schema": ("tote_2", "tote_2"),
    "host": ("0.0.0.0", "0.0.0.0"),
    "port": ("9000", 9000),
    "kafka_compat": ("on", True),
    "schema_registry_port": ("18081", 18081),
    "rest_proxy_port": ("18082", 18082),
    "kafka_connect_port": ("18083", 18083),
    "admin_key": ("an-admin-key-0123456789", "an-admin-key-0123456789"),
    "customer_keys": ("k=alice", "k=alice"),
    "api_keys_file": ("/etc/keys.json", "/etc/keys.json"),
    "kafka_anonymous_producers": ("yes", True),
    "max_body_bytes": ("1024", 1024),
    "request_read_timeout_seconds": ("2.5", 2.5),
    "max_connections": ("10", 10),
    "auth_failure_limit": ("3", 3),
    "auth_failure_window_seconds": ("0.5", 0.5),
    "read_wait_seconds": ("0", 0.0),
    "push_coalesce_ms": ("0", 0),
    "ready_max_lag": ("5", 5),
    "keep_finished_races": ("7", 7),
    "keep_finished_markets": ("9", 9),
    "follow_pace_ms": ("2.5", 2.5),
    "page_max_bytes": ("1048576", 1 << 20),
    "snapshot_seconds": ("300", 300.0),
    "demo_bets_per_second": ("200", 200.0),
    "demo_race_seconds": ("5", 5.0),
    "read_model_path": (":memory:", ":memory:"),
    "quote_tables_url": ("jdbc:sqlite:data/analytics.db", "jdbc:sqlite:data/analytics.db"),
    "redis_url": ("redis://h:1/2", "redis://h:1/2"),
    "redis_prefix": ("x:", "x:"),
    "nats_url": ("nats://h:4222, nats://g:4222", "nats://h:4222, nats://g:4222"),
    "bus_format": ("protobuf", "protobuf"),
    "velocity_medium_rate": ("0", 0.0),
    "velocity_low_rate": ("2500.5", 2500.5),
    "partitions": ("16", 16),
    "command_deadline_seconds": ("2.5", 2.5),
    "rebalance_seconds": ("0.1", 0.1),
    "worker_health_host": ("0.0.0.0", "0.0.0.0"),
    "worker_health_port": ("9100", 9100),
}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ODDSTREAM_* variable of the machine running the tests leaks in."""
    for name in os.environ:
        if name.upper().startswith("ODDSTREAM_"):
            monkeypatch.delenv(name)


def test_the_tables_cover_every_setting() -> None:
    assert set(DEFAULTS) == set(FROM_ENV) == set(Settings.model_fields)


def test_defaults() -> None:
    assert Settings().model_dump() == DEFAULTS


def test_every_setting_documents_its_variable() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert f"ODDSTREAM_{name.upper()}" in field.description


@pytest.mark.parametrize("name", sorted(FROM_ENV))
def test_each_variable_is_read(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    text, value = FROM_ENV[name]
    monkeypatch.setenv(f"ODDSTREAM_{name.upper()}", text)
    settings = Settings()
    assert getattr(settings, name) == value
    assert settings.model_dump() == {**DEFAULTS, name: value}  # and nothing else moved


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "ADMIN_KEY", "SQLITE_COMMIT_THREAD", "KAFKA_ANONYMOUS_PRODUCERS"):
        monkeypatch.setenv(f"ODDSTREAM_{name}", "")
    assert Settings().model_dump() == DEFAULTS


def test_other_oddstream_variables_are_not_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODDSTREAM_URL", "http://127.0.0.1:8000")  # the CLI's --url
    monkeypatch.setenv("ODDSTREAM_REQUIRE_SERVICES", "1")  # the tests'
    assert Settings().model_dump() == DEFAULTS


def test_the_synchronous_literal_is_the_stores_list() -> None:
    assert get_args(Settings.model_fields["sqlite_synchronous"].annotation) == SYNCHRONOUS_MODES


def test_the_velocity_rates_are_the_bus_s_and_0_is_unpaced() -> None:
    from oddstream.velocity.bus import RATE
    from oddstream.velocity.nats_bus import NatsVelocityBus

    assert Settings().velocity_rates() == {"medium": RATE["medium"], "low": RATE["low"]}
    settings = Settings(velocity_low_rate=0, velocity_medium_rate=2500)
    assert settings.velocity_rates() == {"medium": 2500.0, "low": None}
    bus = NatsVelocityBus("nats://127.0.0.1:1", "p", rates=settings.velocity_rates())
    assert bus.rates == {"high": None, "medium": 2500.0, "low": None}


def test_the_bus_format_literal_is_the_formats_the_bus_writes() -> None:
    from oddstream.velocity.bus_format import FORMATS

    assert get_args(Settings.model_fields["bus_format"].annotation) == FORMATS


@pytest.mark.parametrize(
    ("variable", "text", "reason"),
    [
        ("PORT", "70000", "less than or equal to 65535 (got '70000')"),
        ("PORT", "0", "greater than or equal to 1 (got '0')"),
        ("PORT", "eighty", "valid integer"),
        ("SCHEMA_REGISTRY_PORT", "-1", "greater than or equal to 1"),
        ("REST_PROXY_PORT", "8082.5", "valid integer"),
        ("MAX_BODY_BYTES", "0", "greater than or equal to 1"),
        ("MAX_CONNECTIONS", "many", "valid integer"),
        ("AUTH_FAILURE_LIMIT", "0", "greater than or equal to 1"),
        ("PUSH_COALESCE_MS", "-5", "greater than or equal to 0"),
        ("READY_MAX_LAG", "1e3", "valid integer"),
        ("REQUEST_READ_TIMEOUT_SECONDS", "0", "greater than 0"),
        ("REQUEST_READ_TIMEOUT_SECONDS", "inf", "finite number"),
        ("AUTH_FAILURE_WINDOW_SECONDS", "-1", "greater than 0"),
        ("READ_WAIT_SECONDS", "nan", "finite number"),
        ("READ_WAIT_SECONDS", "soon", "valid number"),
        ("DEMO_BETS_PER_SECOND", "0", "greater than 0"),
        ("DEMO_RACE_SECONDS", "-90", "greater than 0"),
        ("SQLITE_COMMIT_THREAD", "maybe", "yes/no value (1/true/yes/on/y/t or 0/false/no/off/n/f)"),
        ("KAFKA_ANONYMOUS_PRODUCERS", "sometimes", "yes/no value"),
        ("SQLITE_SYNCHRONOUS", "OFF", "one of FULL, NORMAL, EXTRA, not 'OFF'"),
        ("PG_SCHEMA", "Tote", "lower-case letters"),
        ("PG_SCHEMA", "a-b", "lower-case letters"),
        ("STORE_URL", "mysql://u@h/db", "unsupported event store URL scheme 'mysql'"),
        ("STORE_URL", "sqlite://", "names no file"),
        ("REDIS_URL", "localhost:6379", "a Redis URL starts with redis://"),
        ("QUOTE_TABLES_URL", "sqlite:data/analytics.db", "a JDBC URL starts with 'jdbc:'"),
        ("NATS_URL", "127.0.0.1:4222", "a NATS URL starts with nats:// or tls://"),
        ("NATS_URL", "nats://a:4222,b:4222", "a NATS URL starts with nats://"),
        ("BUS_FORMAT", "json", "Input should be 'msgpack' or 'protobuf' (got 'json')"),
        ("BUS_FORMAT", "Protobuf", "Input should be 'msgpack' or 'protobuf'"),
        ("VELOCITY_LOW_RATE", "-1", "greater than or equal to 0 (got '-1')"),
        ("VELOCITY_LOW_RATE", "inf", "finite number"),
        ("VELOCITY_MEDIUM_RATE", "fast", "valid number"),
        ("PARTITIONS", "0", "greater than or equal to 1"),
        ("PARTITIONS", "5000", "less than or equal to 4096"),
        ("COMMAND_DEADLINE_SECONDS", "0", "greater than 0"),
        ("REBALANCE_SECONDS", "inf", "finite number"),
        ("WORKER_HEALTH_PORT", "-1", "greater than or equal to 0"),
        ("WORKER_HEALTH_PORT", "65536", "less than or equal to 65535"),
        ("FOLLOW_PACE_MS", "-1", "greater than or equal to 0"),
        ("FOLLOW_PACE_MS", "1001", "less than or equal to 1000"),
        ("HOST", " ", None),  # blank but not empty: allowed (uvicorn decides)
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, text: str, reason: str | None
) -> None:
    monkeypatch.setenv(f"ODDSTREAM_{variable}", text)
    if reason is None:
        Settings()
        return
    with pytest.raises(SettingsError) as refused:
        Settings()
    message = str(refused.value)
    assert message.startswith(f"ODDSTREAM_{variable}: "), message
    assert reason in message
    assert isinstance(refused.value, ValueError)


@pytest.mark.parametrize(
    "url",
    [
        "jdbc:oracle://u:s3cr3t@h/db",
        "jdbc:oracle://h/db?password=s3cr3t",
        "jdbc:oracle:thin:scott/s3cr3t@oracle:1521/orcl",  # Oracle's own form
    ],
)
def test_a_bad_quote_tables_url_is_named_without_its_password(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("ODDSTREAM_QUOTE_TABLES_URL", url)
    with pytest.raises(SettingsError) as refused:
        Settings()
    message = str(refused.value)
    assert message.startswith("ODDSTREAM_QUOTE_TABLES_URL: "), message
    assert "oracle" in message
    assert "s3cr3t" not in message


def test_every_bad_variable_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODDSTREAM_PORT", "70000")
    monkeypatch.setenv("ODDSTREAM_READ_WAIT_SECONDS", "-1")
    with pytest.raises(SettingsError) as refused:
        Settings()
    lines = str(refused.value).splitlines()
    assert sorted(line.split(":")[0] for line in lines) == [
        "ODDSTREAM_PORT",
        "ODDSTREAM_READ_WAIT_SECONDS",
    ]


def test_secrets_are_not_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODDSTREAM_STORE_URL", "mysql://user:hunter2@h/db")
    with pytest.raises(SettingsError) as refused:
        Settings()
    assert "hunter2" not in str(refused.value)
    assert "'mysql://user@h/db'" in str(refused.value)
    monkeypatch.delenv("ODDSTREAM_STORE_URL")
    with pytest.raises(SettingsError) as refused:
        Settings().with_overrides(admin_key=12345678901234567890)
    assert str(refused.value) == "admin_key: Input should be a valid string"


def test_overrides_replace_given_values_only() -> None:
    base = Settings()
    changed = base.with_overrides(port=9001, host=None, sqlite_synchronous="extra")
    assert changed.port == 9001
    assert changed.host == "127.0.0.1"  # None means "not given"
    assert changed.sqlite_synchronous == "EXTRA"
    assert base.port == 8000  # a copy: the original is unchanged
    with pytest.raises(Exception, match="frozen"):
        base.port = 1  # type: ignore[misc]


def test_overrides_keep_the_environment_values_they_started_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ODDSTREAM_PORT", "9002")
    base = Settings()
    monkeypatch.setenv("ODDSTREAM_PORT", "9003")
    monkeypatch.setenv("ODDSTREAM_HOST", "0.0.0.0")
    changed = base.with_overrides(push_coalesce_ms=5)
    assert (changed.port, changed.host, changed.push_coalesce_ms) == (9002, "127.0.0.1", 5)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"port": 70000}, "port: Input should be less than or equal to 65535 (got 70000)"),
        ({"read_wait_seconds": -1.0}, "read_wait_seconds: Input should be greater than or equal"),
        ({"sqlite_synchronous": "sometimes"}, "sqlite_synchronous: synchronous must be one of"),
        ({"store_url": "ftp://h/x"}, "store_url: unsupported event store URL scheme 'ftp'"),
        ({"kafka_anonymous_producers": "maybe"}, "kafka_anonymous_producers: Input should be"),
        ({"bus_format": "json"}, "bus_format: Input should be 'msgpack' or 'protobuf'"),
        # no case folding: the value is written as the bus writes it
        ({"bus_format": "Protobuf"}, "bus_format: Input should be 'msgpack' or 'protobuf'"),
        ({"nope": 1}, "unknown settings: ['nope']"),
    ],
)
def test_overrides_are_checked(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings().with_overrides(**changes)
    assert str(refused.value).startswith(message), str(refused.value)


def test_store_options_follow_the_url() -> None:
    sqlite = Settings().with_overrides(sqlite_synchronous="normal", sqlite_commit_thread=False)
    assert sqlite.store_options() == {
        "synchronous": "NORMAL",
        "commit_thread": False,
        "follow_pace": 0.01,
        "page_max_bytes": 8 << 20,
    }
    pg = Settings().with_overrides(
        store_url="postgres://u@h/db", pg_schema="s1", follow_pace_ms=0, page_max_bytes=4096
    )
    assert pg.store_options() == {"schema": "s1", "follow_pace": 0.0, "page_max_bytes": 4096}


@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        ({"ODDSTREAM_PORT": "70000"}, ["serve"], "ODDSTREAM_PORT: Input should be less than"),
        ({}, ["serve", "--port", "0"], "port: Input should be greater than or equal to 1"),
        ({"ODDSTREAM_SQLITE_SYNCHRONOUS": "fast"}, ["info"], "ODDSTREAM_SQLITE_SYNCHRONOUS"),
        ({}, ["replay", "--store", "mysql://h/db"], "unsupported event store URL scheme"),
        # the velocity bus's format of an API process of services mode
        (
            {"ODDSTREAM_BUS_FORMAT": "json"},
            ["api"],
            "ODDSTREAM_BUS_FORMAT: Input should be 'msgpack' or 'protobuf' (got 'json')",
        ),
    ],
)
def test_the_cli_exits_cleanly_on_a_bad_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path, env: dict[str, str], args: list[str], expected: str
) -> None:
    import uvicorn

    def no_serving(self: object) -> None:
        raise AssertionError("the bad setting was not refused: the server would start")

    monkeypatch.setattr(uvicorn.Server, "run", no_serving)  # bounded even if not refused
    monkeypatch.chdir(tmp_path)  # nor would a store be made in the working directory
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 1, result.output
    assert "bad settings" in result.output
    assert expected in " ".join(result.output.split())  # rich may wrap long lines
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "oddstream serving" not in result.output  # refused before anything started


@pytest.mark.parametrize(
    ("variable", "raw", "field", "expected"),
    [
        ("ODDSTREAM_SQLITE_COMMIT_THREAD", " 0 ", "sqlite_commit_thread", False),
        ("ODDSTREAM_KAFKA_ANONYMOUS_PRODUCERS", " yes", "kafka_anonymous_producers", True),
        ("ODDSTREAM_KAFKA_ANONYMOUS_PRODUCERS", "  ", "kafka_anonymous_producers", None),
    ],
)
def test_yes_no_values_ignore_spaces_and_blank_is_unset(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str, field: str, expected: object
) -> None:
    """Review: the settings before pydantic-settings stripped these; a value with
    spaces around it must not stop the service."""
    monkeypatch.setenv(variable, raw)
    assert getattr(Settings(), field) is expected
