"""Kafka Connect's REST API on the service: connectors created, read, paused, resumed,
restarted, updated and deleted over HTTP with Connect's answers and errors, rows
arriving in the target, connectors surviving a restart of the app, the sinks in
/healthz, /readyz and /metrics, and the same API on its own port with --kafka-compat."""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from oddstream.api.app import create_app
from oddstream.config import Settings

from .conftest import ADMIN_KEY, CUSTOMER_KEYS, free_port, live_settings

ADMIN = {"X-API-Key": ADMIN_KEY}
JSON_RECORDS = "application/vnd.kafka.json.v2+json"
SCHEMA = {
    "type": "struct",
    "fields": [
        {"field": "id", "type": "int64"},
        {"field": "name", "type": "string", "optional": True},
    ],
}


def eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def compat_settings(tmp_path: Path) -> Settings:
    return live_settings(
        tmp_path,
        schema_registry_port=free_port(),
        rest_proxy_port=free_port(),
        kafka_connect_port=free_port(),
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return compat_settings(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, kafka_compat=True)) as c:
        yield c


def sink_config(url: str, topic: str, table: str, **extra: Any) -> dict[str, Any]:
    return {
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "connection.url": url,
        "topics": topic,
        "table.name.format": table,
        "auto.create": "true",
        "insert.mode": "upsert",
        "pk.mode": "record_value",
        "pk.fields": "id",
        "retry.backoff.ms": "50",
        **extra,
    }


def produce(client: TestClient, topic: str, ids: list[int]) -> None:
    records = [{"value": {"schema": SCHEMA, "payload": {"id": i, "name": f"n{i}"}}} for i in ids]
    answer = client.post(
        f"/topics/{topic}",
        content=httpx.Request("POST", "/", json={"records": records}).content,
        headers={"Content-Type": JSON_RECORDS},
    )
    assert answer.status_code == 200, answer.text


def sqlite_ids(path: Path, table: str) -> list[int]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        try:
            return [r[0] for r in conn.execute(f'SELECT id FROM "{table}" ORDER BY id')]
        except sqlite3.OperationalError:
            return []


def names() -> tuple[str, str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"sink-{tag}", f"topic-{tag}", f"t_{tag}"


def test_a_connector_over_its_whole_life(client: TestClient, tmp_path: Path) -> None:
    db = tmp_path / "analytics.db"
    name, topic, table = names()
    config = sink_config(f"jdbc:sqlite:{db}", topic, table, **{"my.own.setting": "kept"})
    created = client.post("/connectors", json={"name": name, "config": config}, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/connectors/{name}"
    assert created.json() == {
        "name": name,
        "config": {**config, "name": name},
        "tasks": [{"connector": name, "task": 0}],
        "type": "sink",
    }
    produce(client, topic, [1, 2, 3])
    eventually(lambda: sqlite_ids(db, table) == [1, 2, 3])

    assert client.get("/connectors", headers=ADMIN).json() == [name]
    expanded = client.get("/connectors?expand=status&expand=info", headers=ADMIN).json()
    assert expanded[name]["info"]["name"] == name
    assert expanded[name]["status"]["connector"]["state"] == "RUNNING"
    assert client.get(f"/connectors/{name}", headers=ADMIN).json() == created.json()
    assert client.get(f"/connectors/{name}/config", headers=ADMIN).json() == {
        **config,
        "name": name,
    }
    assert client.get(f"/connectors/{name}/tasks", headers=ADMIN).json() == [
        {"id": {"connector": name, "task": 0}, "config": {**config, "name": name}}
    ]
    status = client.get(f"/connectors/{name}/status", headers=ADMIN).json()
    assert status["connector"]["state"] == "RUNNING"
    assert status["tasks"][0]["state"] == "RUNNING"
    assert "details" not in status
    details = client.get(f"/connectors/{name}/status?details=true", headers=ADMIN).json()
    assert details["details"]["rows_written"] == 3
    assert details["details"]["config_report"] == [
        "unknown setting 'my.own.setting' kept, not used"
    ]

    paused = client.put(f"/connectors/{name}/pause", headers=ADMIN)
    assert (paused.status_code, paused.content) == (202, b"")
    status = client.get(f"/connectors/{name}/status", headers=ADMIN).json()
    assert status["connector"]["state"] == status["tasks"][0]["state"] == "PAUSED"
    produce(client, topic, [4])
    time.sleep(0.3)
    assert sqlite_ids(db, table) == [1, 2, 3]  # paused: nothing written
    assert client.put(f"/connectors/{name}/resume", headers=ADMIN).status_code == 202
    eventually(lambda: sqlite_ids(db, table) == [1, 2, 3, 4])

    restarted = client.post(f"/connectors/{name}/restart", headers=ADMIN)
    assert (restarted.status_code, restarted.content) == (204, b"")
    restarted = client.post(f"/connectors/{name}/restart?includeTasks=true", headers=ADMIN)
    assert restarted.status_code == 202
    assert restarted.json()["name"] == name

    updated = client.put(
        f"/connectors/{name}/config", json={**config, "batch.size": "10"}, headers=ADMIN
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["config"]["batch.size"] == "10"
    produce(client, topic, [5])
    eventually(lambda: sqlite_ids(db, table) == [1, 2, 3, 4, 5])

    other, other_topic, other_table = names()
    made = client.put(
        f"/connectors/{other}/config",
        json=sink_config(f"jdbc:sqlite:{db}", other_topic, other_table),
        headers=ADMIN,
    )
    assert made.status_code == 201, made.text
    assert made.json()["config"]["name"] == other

    deleted = client.delete(f"/connectors/{name}", headers=ADMIN)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert client.get(f"/connectors/{name}", headers=ADMIN).status_code == 404
    assert client.get("/connectors", headers=ADMIN).json() == [other]
    assert sqlite_ids(db, table) == [1, 2, 3, 4, 5]  # its table stays

    plugins = client.get("/connector-plugins").json()
    assert plugins == [
        {
            "class": "io.confluent.connect.jdbc.JdbcSinkConnector",
            "type": "sink",
            "version": "10.8.0",
        },
        {"class": "oddstream.QuoteTablesSinkConnector", "type": "sink", "version": "1.0.0"},
    ]


def test_refusals_are_connects(client: TestClient, tmp_path: Path) -> None:
    url = f"jdbc:sqlite:{tmp_path / 'a.db'}"
    name, topic, table = names()
    good = sink_config(url, topic, table)

    def post(body: Any, **headers: str) -> httpx.Response:
        return client.post("/connectors", json=body, headers={**ADMIN, **headers})

    assert post({"name": name, "config": good}).status_code == 201
    exists = post({"name": name, "config": good})
    assert (exists.status_code, exists.json()) == (
        409,
        {"error_code": 409, "message": f"Connector {name} already exists"},
    )

    bad = post({"name": "bad", "config": {**good, "pk.mode": "nope", "batch.size": "0"}})
    assert bad.status_code == 400
    message = bad.json()["message"]
    assert bad.json()["error_code"] == 400
    assert message.startswith(
        "Connector configuration is invalid and contains the following 2 error(s):\n"
    )
    assert "pk.mode" in message
    assert "batch.size" in message

    mismatch = post({"name": "one", "config": {**good, "name": "two"}})
    assert mismatch.status_code == 400
    assert mismatch.json()["message"] == (
        "Connector name configuration (two) doesn't match connector name in the URL (one)"
    )
    for body in ({"name": "x"}, {"config": good}, {"name": "", "config": good}, [1], "x"):
        answer = post(body)
        assert answer.status_code == 400, body
        assert answer.json()["error_code"] == 400
    assert post({"name": "a/b", "config": good}).status_code == 400
    assert post({"name": "x", "config": {**good, "nested": {"a": 1}}}).status_code == 400
    broken = client.post(
        "/connectors", content=b"{", headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert (broken.status_code, broken.json()["error_code"]) == (400, 400)
    text = client.post(
        "/connectors", content=b"{}", headers={**ADMIN, "Content-Type": "text/plain"}
    )
    assert text.status_code == 415
    # a name padded with white space is trimmed, as Connect trims it
    padded = post({"name": "  padded  ", "config": good})
    assert padded.status_code == 201
    assert padded.json()["name"] == "padded"
    # any text may name a connector; its Location is percent-encoded
    accented = post({"name": "ventes ħ été", "config": good})
    assert accented.status_code == 201
    assert accented.headers["location"] == "/connectors/ventes%20%C4%A7%20%C3%A9t%C3%A9"
    made = client.put("/connectors/%C4%A7/config", json=good, headers=ADMIN)
    assert made.status_code == 201
    assert made.headers["location"] == "/connectors/%C4%A7"
    bad_path = client.put("/connectors/%20x/config", json=good, headers=ADMIN)
    assert bad_path.status_code == 400

    for method, path in [
        ("GET", "/connectors/nope"),
        ("GET", "/connectors/nope/config"),
        ("GET", "/connectors/nope/status"),
        ("GET", "/connectors/nope/tasks"),
        ("PUT", "/connectors/nope/pause"),
        ("PUT", "/connectors/nope/resume"),
        ("POST", "/connectors/nope/restart"),
        ("DELETE", "/connectors/nope"),
    ]:
        answer = client.request(method, path, headers=ADMIN)
        assert (answer.status_code, answer.json()) == (
            404,
            {"error_code": 404, "message": "Connector nope not found"},
        ), (method, path)

    anonymous = client.get("/connectors")
    assert (anonymous.status_code, anonymous.json()["error_code"]) == (401, 401)
    customer = client.post(
        "/connectors",
        json={"name": "c", "config": good},
        headers={"X-API-Key": CUSTOMER_KEYS["alice"]},
    )
    assert (customer.status_code, customer.json()["error_code"]) == (403, 403)
    unknown = client.delete(f"/connectors/{name}", headers={"X-API-Key": "x" * 30})
    assert unknown.status_code == 403
    assert client.get(f"/connectors/{name}", headers=ADMIN).status_code == 200
    basic = client.get("/connectors", auth=("admin", ADMIN_KEY))
    assert basic.status_code == 200


def test_passwords_are_never_echoed(client: TestClient, tmp_path: Path) -> None:
    name, topic, table = names()
    config = sink_config(
        f"jdbc:sqlite:{tmp_path / 'p.db'}", topic, table, **{"connection.password": "s3cret"}
    )
    created = client.post("/connectors", json={"name": name, "config": config}, headers=ADMIN)
    assert created.status_code == 201
    for path in ("", "/config", "/tasks"):
        answer = client.get(f"/connectors/{name}{path}", headers=ADMIN)
        assert "s3cret" not in answer.text
        assert "[hidden]" in answer.text
    assert "s3cret" not in created.text
    listing = client.get("/connectors?expand=info", headers=ADMIN)
    assert "s3cret" not in listing.text


def test_connectors_survive_a_restart_of_the_app(settings: Settings, tmp_path: Path) -> None:
    db = tmp_path / "analytics.db"
    running, topic, table = names()
    paused = f"{running}-paused"
    with TestClient(create_app(settings, kafka_compat=True)) as client:
        for name in (running, paused):
            config = sink_config(f"jdbc:sqlite:{db}", topic, f"{table}_{name[-6:]}")
            body = {"name": name, "config": config}
            assert client.post("/connectors", json=body, headers=ADMIN).status_code == 201
        assert client.put(f"/connectors/{paused}/pause", headers=ADMIN).status_code == 202
        produce(client, topic, [1])
        eventually(lambda: sqlite_ids(db, f"{table}_{running[-6:]}") == [1])
    with TestClient(create_app(settings, kafka_compat=True)) as client:
        assert client.get("/connectors", headers=ADMIN).json() == sorted([running, paused])
        status = client.get(f"/connectors/{paused}/status", headers=ADMIN).json()
        assert status["connector"]["state"] == "PAUSED"
        status = client.get(f"/connectors/{running}/status", headers=ADMIN).json()
        assert status["connector"]["state"] == "RUNNING"
        produce(client, topic, [2])
        eventually(lambda: sqlite_ids(db, f"{table}_{running[-6:]}") == [1, 2])
        assert client.put(f"/connectors/{paused}/resume", headers=ADMIN).status_code == 202
        eventually(lambda: sqlite_ids(db, f"{table}_{paused[-6:]}") == [1, 2])


def test_sinks_in_health_readiness_and_metrics(client: TestClient, tmp_path: Path) -> None:
    db = tmp_path / "analytics.db"
    good, topic, table = names()
    failing = f"{good}-strict"
    client.post(
        "/connectors",
        json={"name": good, "config": sink_config(f"jdbc:sqlite:{db}", topic, table)},
        headers=ADMIN,
    ).raise_for_status()
    strict = sink_config(f"jdbc:sqlite:{db}", f"{topic}-raw", f"{table}_raw")
    client.post(
        "/connectors", json={"name": failing, "config": strict}, headers=ADMIN
    ).raise_for_status()
    produce(client, topic, [1, 2])
    # a binary record carries no schema: errors.tolerance=none stops that sink
    client.post(
        f"/topics/{topic}-raw",
        json={"records": [{"value": "AAE="}]},
        headers={"Content-Type": "application/vnd.kafka.binary.v2+json"},
    ).raise_for_status()

    def failed() -> bool:
        status = client.get(f"/connectors/{failing}/status", headers=ADMIN).json()
        return bool(status["tasks"][0]["state"] == "FAILED")

    eventually(failed)
    eventually(lambda: sqlite_ids(db, table) == [1, 2])
    status = client.get(f"/connectors/{failing}/status", headers=ADMIN).json()
    assert status["connector"]["state"] == "RUNNING"
    assert "no_schema" in status["tasks"][0]["trace"]

    health = client.get("/healthz").json()
    assert health["sinks"][good]["task"] == "RUNNING"
    assert health["sinks"][good]["rows_written"] == 2
    assert health["sinks"][good]["lag"] >= 0
    assert health["sinks"][failing]["task"] == "FAILED"
    assert "trace" not in health["sinks"][failing]  # open answers carry no sink text
    ready = client.get("/readyz")
    assert ready.status_code == 200  # a FAILED sink does not take the API out of service
    assert ready.json()["warnings"] == [f"sink {failing} FAILED"]

    metrics = client.get("/metrics").text
    assert f'oddstream_sink_state{{connector="{failing}",state="FAILED"}} 1.0' in metrics
    assert f'oddstream_sink_state{{connector="{good}",state="RUNNING"}} 1.0' in metrics
    assert f'oddstream_sink_rows_written{{connector="{good}"}} 2.0' in metrics
    assert f'oddstream_sink_lag_events{{connector="{good}"}}' in metrics
    assert f'oddstream_sink_dead_lettered{{connector="{good}"}} 0.0' in metrics
    client.delete(f"/connectors/{failing}", headers=ADMIN).raise_for_status()
    assert failing not in client.get("/metrics").text
    assert "warnings" not in client.get("/readyz").json()


def test_open_health_answers_carry_no_text_from_a_sink(client: TestClient, tmp_path: Path) -> None:
    """/healthz, /readyz and /metrics take no key: a sink's errors (the target's host
    and driver messages) and its trace (a refused record's values) stay behind the
    admin key."""
    db = tmp_path / "h.db"
    unreachable, topic, table = names()
    config = sink_config("jdbc:postgresql://127.0.0.1:1/test?user=analyst_h", topic, table)
    body = {"name": unreachable, "config": config}
    client.post("/connectors", json=body, headers=ADMIN).raise_for_status()
    failing = f"{unreachable}-strict"
    strict = sink_config(f"jdbc:sqlite:{db}", f"{topic}-raw", f"{table}_raw")
    client.post(
        "/connectors", json={"name": failing, "config": strict}, headers=ADMIN
    ).raise_for_status()
    client.post(
        f"/topics/{topic}-raw",
        json={"records": [{"value": "AAE="}]},
        headers={"Content-Type": "application/vnd.kafka.binary.v2+json"},
    ).raise_for_status()
    produce(client, topic, [1])

    def details(name: str) -> dict[str, Any]:
        answer = client.get(f"/connectors/{name}/status?details=true", headers=ADMIN).json()
        return dict(answer)

    eventually(lambda: details(unreachable)["details"]["target_unavailable"] is not None)
    eventually(lambda: details(failing)["tasks"][0]["state"] == "FAILED")
    assert "port 1" in details(unreachable)["details"]["last_error"]  # for the admin
    assert "no_schema" in details(failing)["tasks"][0]["trace"]
    for path in ("/healthz", "/readyz", "/metrics"):
        text = client.get(path).text
        for secret in ("port 1", "127.0.0.1:1", "no_schema", "Traceback", "OperationalError"):
            assert secret not in text, (path, secret)
    sinks = client.get("/healthz").json()["sinks"]
    assert sinks[unreachable]["target_unavailable"] is True
    assert sinks[failing]["task"] == "FAILED"
    assert sinks[failing]["target_unavailable"] is False


def test_a_lagging_sink_is_reported_not_unready(tmp_path: Path) -> None:
    settings = compat_settings(tmp_path).with_overrides(ready_max_lag=0)
    with TestClient(create_app(settings, kafka_compat=True)) as client:
        name, topic, table = names()
        config = sink_config(f"jdbc:sqlite:{tmp_path / 'a.db'}", topic, table)
        client.post("/connectors", json={"name": name, "config": config}, headers=ADMIN)
        client.put(f"/connectors/{name}/pause", headers=ADMIN).raise_for_status()
        # a paused sink has no runner: no lag is counted for it
        assert "warnings" not in client.get("/readyz").json()


def test_the_connect_port_with_kafka_compat(client: TestClient, settings: Settings) -> None:
    base = f"http://127.0.0.1:{settings.kafka_connect_port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            root = httpx.get(f"{base}/")
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline, "port 8083's app did not start"
            time.sleep(0.05)
    assert root.json()["kafka_cluster_id"] == "oddstream"
    assert httpx.get(f"{base}/connectors").status_code == 401
    name, topic, table = names()
    config = sink_config(f"jdbc:sqlite:{settings.store_url[10:]}.sinks", topic, table)
    created = httpx.post(f"{base}/connectors", json={"name": name, "config": config}, headers=ADMIN)
    assert created.status_code == 201, created.text
    # one manager behind both ports
    assert client.get("/connectors", headers=ADMIN).json() == [name]
    assert httpx.get(f"{base}/connectors/{name}/status", headers=ADMIN).status_code == 200
    assert httpx.get(f"{base}/connector-plugins").status_code == 200
    missing = httpx.get(f"{base}/nothing")
    assert (missing.status_code, missing.json()["error_code"]) == (404, 404)


def test_without_kafka_compat_the_main_app_has_connectors_and_8083_is_closed(
    tmp_path: Path,
) -> None:
    settings = compat_settings(tmp_path)
    with TestClient(create_app(settings, kafka_compat=False)) as client:
        assert client.get("/connectors", headers=ADMIN).json() == []
        assert client.get("/connector-plugins").status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{settings.kafka_connect_port}/connectors")


def test_a_postgresql_target(client: TestClient, pg_url: str) -> None:
    name, topic, table = names()
    url = "jdbc:" + pg_url.replace("postgresql://postgres@", "postgresql://")
    config = sink_config(
        url, topic, table, **{"connection.user": "postgres", "connection.password": "pw-unused"}
    )
    created = client.post("/connectors", json={"name": name, "config": config}, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert created.json()["config"]["connection.password"] == "[hidden]"
    try:
        produce(client, topic, [7, 8])

        def rows() -> list[tuple[Any, ...]]:
            with psycopg.connect(pg_url) as conn:
                exists = conn.execute("SELECT to_regclass(%s)", (f'"{table}"',)).fetchone()
                if exists is None or exists[0] is None:
                    return []
                return list(conn.execute(f'SELECT id, name FROM "{table}" ORDER BY id'))

        eventually(lambda: rows() == [(7, "n7"), (8, "n8")])
        status = client.get(f"/connectors/{name}/status?details=true", headers=ADMIN).json()
        assert status["tasks"][0]["state"] == "RUNNING"
        assert status["details"]["rows_written"] == 2
    finally:
        client.delete(f"/connectors/{name}", headers=ADMIN)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP TABLE IF EXISTS "{table}"')
            conn.execute("DELETE FROM oddstream_sink_offsets WHERE name = %s", (name,))


def test_the_quote_tables_setting_runs_its_connector(tmp_path: Path) -> None:
    """``ODDSTREAM_QUOTE_TABLES_URL``: the connector ``quote-tables`` made at start,
    quote events ingested into its tables, in /healthz, /readyz and /metrics; a start
    with another URL points it there, its other settings kept."""
    from domain.quotes.samples import PRODUCTS_UPDATED, QUOTE_STARTED

    db = tmp_path / "analytics.db"
    settings = live_settings(tmp_path, quote_tables_url=f"jdbc:sqlite:{db}")
    with TestClient(create_app(settings)) as client:
        status = client.get("/connectors/quote-tables/status", headers=ADMIN).json()
        assert status["tasks"][0]["state"] == "RUNNING"
        answer = client.post(
            "/quotes/events",
            content=f"[{QUOTE_STARTED},{PRODUCTS_UPDATED}]",
            headers={**ADMIN, "Content-Type": "application/json"},
        )
        assert answer.json()["stored"] == 2, answer.text

        def quotes() -> list[tuple[Any, ...]]:
            if not db.exists():
                return []
            with contextlib.closing(sqlite3.connect(db)) as conn:
                try:
                    return conn.execute("SELECT quote_id, products_count FROM quotes").fetchall()
                except sqlite3.OperationalError:
                    return []  # not created yet

        eventually(lambda: len(quotes()) == 1 and quotes()[0][1] > 0)
        health = client.get("/healthz").json()["sinks"]["quote-tables"]
        assert (health["connector"], health["task"]) == ("RUNNING", "RUNNING")
        assert health["rows_written"] > 2
        assert "quote-tables" in client.get("/readyz").json()["sinks"]
        metrics = client.get("/metrics").text
        assert 'oddstream_sink_state{connector="quote-tables",state="RUNNING"} 1.0' in metrics
        assert 'oddstream_sink_rows_written{connector="quote-tables"}' in metrics
        config = client.get("/connectors/quote-tables/config", headers=ADMIN).json()
        assert config["connector.class"] == "oddstream.QuoteTablesSinkConnector"
        client.put(
            "/connectors/quote-tables/config",
            json={**config, "quote.tables.max.quotes": "50"},
            headers=ADMIN,
        ).raise_for_status()
    other = tmp_path / "other.db"
    settings = settings.with_overrides(quote_tables_url=f"jdbc:sqlite:{other}")
    with TestClient(create_app(settings)) as client:
        config = client.get("/connectors/quote-tables/config", headers=ADMIN).json()
        assert config["connection.url"] == f"jdbc:sqlite:{other}"
        assert config["quote.tables.max.quotes"] == "50"  # what an admin set stays
        eventually(lambda: other.exists())


def test_the_quote_tables_setting_is_refused_in_services_mode() -> None:
    """An API process of services mode runs no connectors: the setting is refused by
    name there, not left silently unused."""
    services = {
        "store_url": "postgresql://postgres@127.0.0.1:5432/test",
        "nats_url": "nats://127.0.0.1:4222",
        "redis_url": "redis://127.0.0.1:6379/0",
    }
    url = "jdbc:mysql://analyst:s3cr3t@db.example/analytics"
    with pytest.raises(ValueError, match="ODDSTREAM_QUOTE_TABLES_URL") as refused:
        create_app(Settings(**services, quote_tables_url=url), role="api")
    assert "s3cr3t" not in str(refused.value)
    create_app(Settings(**services), role="api")  # without it, the same settings are fine
