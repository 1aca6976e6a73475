"""Bounded schemathesis runs against the app's own OpenAPI document, every operation
(the Kafka integration on, so the Schema Registry's and REST Proxy's too), with all of
schemathesis's checks: no input yields a 5xx, every answer is documented (status,
content type, headers, body schema), schema-valid input is accepted, schema-violating
input is refused; undeclared methods are 405 with ``Allow``."""

from __future__ import annotations

import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import FailureGroup

from oddstream.domain.tote.pools import PoolType

from .conftest import LiveServer, free_port, live_settings, run_server
from .test_tote_api import RACE

EXAMPLES_PER_OPERATION = 10


# What the document says in words because JSON Schema cannot say it (each a 422 when
# broken): positive cases are made to keep these rules, and only these, so that
# ``positive_data_acceptance`` checks everything else the schemas say.


def _race_rules(case: Any) -> Any:
    """A race's runner numbers are distinct, so are its pool types, and no pool needs
    more runners per selection than the race has."""
    body = case.body
    for number, runner in enumerate(body["runners"], start=1):
        runner["number"] = number
    pools: dict[str, Any] = {}
    for pool in body["pools"]:
        if PoolType(pool["pool"]).runners_per_selection <= len(body["runners"]):
            pools.setdefault(pool["pool"], pool)
    body["pools"] = list(pools.values()) or [{**body["pools"][0], "pool": "WIN"}]
    return case


def _avro_schema(case: Any) -> Any:
    """A ``schema`` is an Avro schema (one any string is an instance of)."""
    case.body["schema"] = '"string"'
    return case


def _avro_records(case: Any) -> Any:
    """Avro records match their schema: here strings, under the schema ``"string"``."""
    if case.media_type == "application/vnd.kafka.avro.v2+json":
        for key in ("key_schema_id", "value_schema_id"):
            case.body.pop(key, None)
        case.body |= {"key_schema": '"string"', "value_schema": '"string"'}
        for record in case.body["records"]:
            for part in ("key", "value"):
                if record.get(part) is not None:
                    record[part] = str(record[part])
    return case


def _connector_config(case: Any) -> Any:
    """A connector's config is one the JDBC sink takes (its settings' values are checked
    by the route: 400 naming each refused one)."""
    config = {
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "connection.url": f"jdbc:sqlite:{SINK_DB}",
        "topics": "schemathesis-sink",
    }
    if case.operation.path == "/connectors":
        case.body["config"] = config
    else:
        case.body = config
    return case


def _odds_prices(case: Any) -> Any:
    """Prices have at most six decimal places (the document says so in words)."""
    payload = case.body.get("Payload") if isinstance(case.body, dict) else None
    line = payload.get("MoneyLine") if isinstance(payload, dict) else None
    if isinstance(line, dict):
        for side, price in line.items():
            if isinstance(price, int | float) and not isinstance(price, bool):
                line[side] = max(1.01, min(10_001, round(price, 2)))
    return case


def _market_bet_rules(case: Any) -> Any:
    """A bet on a market names exactly one of ``price`` and ``price_fractional``, a
    price above 1, and (with the admin key these runs use) the wallet it is paid from."""
    if isinstance(case.body, dict):
        case.body.pop("price_fractional", None)
        case.body["price"] = 1.5
        case.body["wallet_id"] = case.body.get("wallet_id") or "schemathesis"
    return case


#: the SQLite file the connectors schemathesis creates write to (none of their topics
#: gets a record)
SINK_DB = Path(tempfile.gettempdir()) / f"oddstream-schemathesis-{os.getpid()}.db"

VALID = {
    "POST /races": _race_rules,
    "POST /subjects/{subject}/versions": _avro_schema,
    "POST /subjects/{subject}": _avro_schema,
    "POST /compatibility/subjects/{subject}/versions": _avro_schema,
    "POST /compatibility/subjects/{subject}/versions/{version}": _avro_schema,
    "POST /topics/{topic}": _avro_records,
    "POST /topics/{topic}/partitions/{partition}": _avro_records,
    "POST /connectors": _connector_config,
    "PUT /connectors/{name}/config": _connector_config,
    "POST /odds": _odds_prices,
    "PATCH /odds/{external_id}": _odds_prices,
    "DELETE /odds/{external_id}": _odds_prices,
    "POST /odds/{external_id}/bets": _market_bet_rules,
}


def _checks() -> list[Any]:
    load_all_checks()
    return [check for check in CHECKS.get_all() if callable(check) and not isinstance(check, type)]


@pytest.fixture
def kafka_server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = live_settings(
        tmp_path, schema_registry_port=free_port(), rest_proxy_port=free_port()
    )
    try:
        yield from run_server(settings, kafka_compat=True)
    finally:  # the file the connectors it creates write to (a test's, not the machine's)
        for path in (SINK_DB, *SINK_DB.parent.glob(f"{SINK_DB.name}-*")):
            path.unlink(missing_ok=True)


def test_the_api_answers_as_its_openapi_document_says(kafka_server: LiveServer) -> None:
    server = kafka_server
    # a race to hit, so that commands get past "race not found" now and then
    httpx.post(f"{server.url}/races", json=RACE, headers=server.admin).raise_for_status()
    httpx.post(f"{server.url}/races/r1/open", headers=server.admin).raise_for_status()
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    checks = _checks()
    failures: list[str] = []
    kinds: Counter[str] = Counter()
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.endswith("/odds/stream"):
            continue  # never ends by design; it has its own tests
        checked += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            if mode is GenerationMode.POSITIVE and operation.label in VALID:
                strategy = strategy.map(VALID[operation.label])

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                derandomize=True,  # the same cases every run: CI must not be a lottery
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case: Any) -> None:
                # with the admin key, so admin routes get past 401 (tested on their own)
                try:
                    case.call_and_validate(headers=server.admin, checks=checks, timeout=10)
                except FailureGroup as group:
                    for failure in group.exceptions:
                        kinds[f"{case.operation.label}: {getattr(failure, 'title', failure)}"] += 1
                    failures.append(f"{case.method} {case.formatted_path} {case.body!r}: {group}")
                except AssertionError as exc:
                    kinds[f"{case.operation.label}: {type(exc).__name__}"] += 1
                    failures.append(f"{case.method} {case.formatted_path}: {exc}")

            try:
                run()
            except Unsatisfiable:  # nothing to negate: no parameters, no body
                assert mode is GenerationMode.NEGATIVE, operation.path
    assert checked >= 12, f"only {checked} operations were exercised"
    summary = "\n".join(f"{n:4} {kind}" for kind, n in sorted(kinds.items()))
    assert not failures, f"{summary}\n\n" + "\n\n".join(failures[:12])


def test_undeclared_methods_are_405_with_the_declared_ones_in_allow(server: LiveServer) -> None:
    """``Allow`` names every method the document declares for a path, from any of its
    templates (``/races/x/bets/batch`` is also ``/races/{race_id}/bets/{bet_id}``)."""
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    wrong = []
    for path in paths:
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        declared = {
            method.upper()
            for template, operations in paths.items()
            if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), concrete)
            for method in operations
        }
        undeclared = next(m for m in ("PATCH", "DELETE", "PUT", "POST") if m not in declared)
        answer = httpx.request(undeclared, f"{server.url}{concrete}", headers=server.admin)
        allow = {m.strip() for m in answer.headers.get("allow", "").split(",") if m.strip()}
        if answer.status_code != 405 or allow != declared:
            wrong.append((undeclared, path, answer.status_code, sorted(allow), sorted(declared)))
    assert not wrong, wrong
