"""Regressions of the disagreements schemathesis's ``positive_data_acceptance`` and the
Confluent operations' checks found between the OpenAPI document and the service (issue
10, §5): each test failed before its fix."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from oddstream.application.bodies import check_text, integral_numbers, text_pattern

from .conftest import LiveServer, free_port, live_settings, run_server
from .test_tote_api import RACE

SR = "application/vnd.schemaregistry.v1+json"


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp: Path = tmp_path_factory.mktemp("truth")
    settings = live_settings(tmp, schema_registry_port=free_port(), rest_proxy_port=free_port())
    for live in run_server(settings, kafka_compat=True):
        httpx.post(f"{live.url}/races", json=RACE, headers=live.admin).raise_for_status()
        httpx.post(f"{live.url}/races/r1/open", headers=live.admin).raise_for_status()
        yield live


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"a": 5.0}', b'{"a": 5}'),
        (b'{"a": 5.00e2, "b": -0.0}', b'{"a": 500, "b": 0}'),
        (b'{"a": 100.5}', b'{"a": 100.5}'),
        # a float would round this to 500: the literal is read exactly
        (b'{"a": 500.0000000000000001}', b'{"a": 500.0000000000000001}'),
        (b'{"a": "5.0", "b": "x\\" 5.0"}', b'{"a": "5.0", "b": "x\\" 5.0"}'),
        (b'{"a": 1e999999}', b'{"a": 1e999999}'),
    ],
)
def test_integral_numbers_are_rewritten_exactly_and_only_outside_strings(
    raw: bytes, expected: bytes
) -> None:
    assert integral_numbers(raw) == expected


def test_an_integer_field_takes_an_integral_number_as_that_integer(kafka: LiveServer) -> None:
    url = f"{kafka.url}/races/r1/bets"
    bet = httpx.post(url, json={"selection": [1.0], "stake_cents": 500.0})
    assert bet.status_code == 201, bet.text
    race = httpx.get(f"{kafka.url}/races/r1", params={"min_position": bet.json()["position"]})
    (win,) = [p for p in race.json()["pools"] if p["pool"] == "WIN"]
    assert win["gross_cents"] == 500
    for stake in ("100.5", "500.0000000000000001"):
        raw = b'{"selection": [1], "stake_cents": ' + stake.encode() + b"}"
        refused = httpx.post(url, content=raw, headers={"Content-Type": "application/json"})
        assert refused.status_code == 422, (stake, refused.text)
    # the framework's routes (the race's commands) too
    race = {
        **RACE,
        "race_id": "r2",
        "runners": [{"number": 1.0, "name": "A"}, {"number": 2e0, "name": "B"}],
    }
    assert httpx.post(f"{kafka.url}/races", json=race, headers=kafka.admin).status_code == 201
    scratch = httpx.post(f"{kafka.url}/races/r2/scratch", json={"runner": 1.5}, headers=kafka.admin)
    assert scratch.status_code == 422


def test_a_wallet_move_is_exactly_one_of_two_non_null_amounts(kafka: LiveServer) -> None:
    url = f"{kafka.url}/wallet/w1/credit"
    ok = {"amount": "5.10"}, {"amount": 5.1}, {"amount_cents": 510.0}
    for body in ok:
        answer = httpx.post(url, json=body, headers=kafka.admin)
        assert answer.status_code == 200, (body, answer.text)
        assert answer.json()["amount_cents"] == 510
    refused = (
        {"amount": None, "amount_cents": 500},  # null is not "left out"
        {"amount": 5, "amount_cents": 500},
        {"amount": " 5"},  # a string amount is digits: as the document's pattern says
        {"amount": "5e2"},
        {"amount": "0.00"},
        {},
    )
    for body in refused:
        answer = httpx.post(url, json=body, headers=kafka.admin)
        assert answer.status_code == 422, (body, answer.text)
    schema = httpx.get(f"{kafka.url}/openapi.json").json()["components"]["schemas"]["MoneyBody"]
    assert schema["oneOf"] == [{"required": ["amount"]}, {"required": ["amount_cents"]}]
    text = schema["properties"]["amount"]["anyOf"][1]["pattern"]
    assert re.search(text, "5.10")
    assert not re.search(text, " 5")
    assert not re.search(text, "0.00")


def test_race_statuses_are_a_pattern_of_the_known_ones(kafka: LiveServer) -> None:
    document = httpx.get(f"{kafka.url}/openapi.json").json()
    (status,) = [
        p for p in document["paths"]["/races"]["get"]["parameters"] if p["name"] == "status"
    ]
    pattern = status["schema"]["pattern"]
    assert re.search(pattern, " open ,closed,")
    assert not re.search(pattern, "x")
    assert httpx.get(f"{kafka.url}/races", params={"status": " open ,closed,"}).status_code == 200
    assert httpx.get(f"{kafka.url}/races", params={"status": "x"}).status_code == 422


def test_the_free_text_pattern_is_what_check_text_takes() -> None:
    pattern = re.compile(text_pattern()[:-1] + r"\Z")  # (Python's $ also takes a final \n)
    rng = random.Random(10)
    for code in [*range(0x3000), *rng.sample(range(0x110000), 20_000)]:
        char = chr(code)
        try:
            taken = check_text(char) == char
        except ValueError:
            taken = False
        assert taken == bool(pattern.match(char)), hex(code)


def test_every_confluent_write_documents_its_body(kafka: LiveServer) -> None:
    paths = httpx.get(f"{kafka.url}/openapi.json").json()["paths"]
    for path, method in [
        ("/subjects/{subject}/versions", "post"),
        ("/subjects/{subject}", "post"),
        ("/compatibility/subjects/{subject}/versions/{version}", "post"),
        ("/config/{subject}", "put"),
        ("/topics/{topic}", "post"),
    ]:
        assert paths[path][method]["requestBody"]["required"] is True, (method, path)
    version = paths["/subjects/{subject}/versions/{version}"]["get"]["parameters"][1]
    assert version["name"] == "version"
    assert not re.search(version["schema"]["pattern"], "0")
    assert re.search(version["schema"]["pattern"], "2147483647")
    assert not re.search(version["schema"]["pattern"], "2147483648")


def test_versions_as_confluent_reads_them(kafka: LiveServer) -> None:
    registered = httpx.post(
        f"{kafka.url}/subjects/v/versions",
        json={"schema": '"string"'},
        headers={"Content-Type": SR},
    )
    assert registered.status_code == 200, registered.text
    for version in ("1", "latest", "LATEST", "-1", "0" * 20 + "1"):
        answer = httpx.get(f"{kafka.url}/subjects/v/versions/{version}")
        assert answer.status_code == 200, (version, answer.text)
    for version in ("0", "2147483648", "1.0"):
        answer = httpx.get(f"{kafka.url}/subjects/v/versions/{version}")
        assert (answer.status_code, answer.json()["error_code"]) == (422, 42202), version


def test_a_subject_with_a_control_character_is_the_registry_s_to_answer(
    kafka: LiveServer,
) -> None:
    """Starlette's ``path`` stopped at a newline: the app's own 404 answered, not the
    registry (and not with its error body)."""
    read = httpx.get(f"{kafka.url}/subjects/a%0Ab/versions")
    assert (read.status_code, read.json()["error_code"]) == (404, 40401)
    write = httpx.post(f"{kafka.url}/subjects/a%0Ab/versions", json={"schema": '"string"'})
    assert (write.status_code, write.json()["error_code"]) == (422, 42208)


def test_a_path_of_another_operation_is_405_not_a_subject_with_slashes(
    kafka: LiveServer,
) -> None:
    """``POST /subjects/s/versions/1`` was a lookup in subject ``s/versions/1`` (422),
    ``DELETE /subjects/s/versions`` a delete of subject ``s/versions`` (401)."""
    for method, path, allow in [
        ("POST", "/subjects/s/versions/1", {"GET", "DELETE"}),
        ("DELETE", "/subjects/s/versions", {"GET", "POST"}),
        ("PUT", "/subjects/s/versions/1/schema", {"GET"}),
    ]:
        answer = httpx.request(method, f"{kafka.url}{path}", json={"schema": '"string"'})
        assert answer.status_code == 405, (method, path, answer.text)
        assert {m.strip() for m in answer.headers["allow"].split(",")} == allow
    # a subject holding "/" is sent with %2F, and is still a subject
    created = httpx.post(f"{kafka.url}/subjects/s%2Fx/versions", json={"schema": '"int"'})
    assert created.status_code == 200, created.text
    found = httpx.post(f"{kafka.url}/subjects/s%2Fx", json={"schema": '"int"'})
    assert found.status_code == 200, found.text
    assert found.json()["subject"] == "s/x"


def test_a_record_s_partition_may_be_an_integral_number(kafka: LiveServer) -> None:
    url = f"{kafka.url}/topics/truth"
    headers = {"Content-Type": "application/vnd.kafka.binary.v2+json"}
    ok = httpx.post(url, json={"records": [{"value": "AA==", "partition": 0.0}]}, headers=headers)
    assert ok.status_code == 200, ok.text
    half = httpx.post(url, json={"records": [{"value": "AA==", "partition": 0.5}]}, headers=headers)
    assert half.status_code == 422, half.text
