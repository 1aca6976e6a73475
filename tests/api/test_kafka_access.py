"""Who may call what on the Schema Registry and the REST Proxy (issue 9, items 7 and 9a).

One live service with ``--kafka-compat`` (the main port and the 8081/8082-style ports)
and anonymous producers switched off: the role matrix (anonymous / customer / producer /
admin × read / register / produce / delete / config) answers the same on every port,
Confluent-shaped; keys come as ``X-API-Key``, ``Bearer`` or HTTP basic auth (Confluent's
own client authenticates); an oversized chunked produce answers 413 on both ports.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from oddstream.api.app import create_app
from oddstream.api.auth import KeyConfigError, KeyRing, basic_auth_key
from oddstream.config import Settings, SettingsError

from .conftest import ADMIN_KEY, CUSTOMER_KEYS, free_port, live_settings, run_server

PRODUCER_KEY = "producer-key-0123456789"
SR = "application/vnd.schemaregistry.v1+json"
JSON = "application/vnd.kafka.json.v2+json"
SCHEMA = json.dumps(
    {"type": "record", "name": "T", "fields": [{"name": "a", "type": "int", "default": 0}]}
)
WHO = {
    "anonymous": {},
    "customer": {"X-API-Key": CUSTOMER_KEYS["alice"]},
    "producer": {"X-API-Key": PRODUCER_KEY},
    "admin": {"X-API-Key": ADMIN_KEY},
}


def _keys_file(directory: Path) -> str:
    path = directory / "keys.json"
    path.write_text(json.dumps({"keys": [{"key": PRODUCER_KEY, "role": "producer"}]}))
    return str(path)


@dataclass
class Ports:
    main: str
    sr: str
    rp: str


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ports]:
    tmp = tmp_path_factory.mktemp("compat-access")
    sr_port, rp_port = free_port(), free_port()
    settings = live_settings(
        tmp,
        api_keys_file=_keys_file(tmp),
        schema_registry_port=sr_port,
        rest_proxy_port=rp_port,
        kafka_anonymous_producers=False,
        auth_failure_limit=10_000,  # this module tries many bad keys; the limit is tested below
    )
    for server in run_server(settings, kafka_compat=True):
        found = Ports(server.url, f"http://127.0.0.1:{sr_port}", f"http://127.0.0.1:{rp_port}")
        deadline = time.monotonic() + 10
        while True:  # the side ports start with the app's lifespan
            try:
                httpx.get(f"{found.sr}/subjects").raise_for_status()
                httpx.get(f"{found.rp}/topics").raise_for_status()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the compat ports did not start"
                time.sleep(0.05)
        yield found


def _subject() -> str:
    return f"s{uuid.uuid4().hex[:12]}-value"


def _register(base: str, subject: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{base}/subjects/{subject}/versions",
        json={"schema": SCHEMA},
        headers={"Content-Type": SR, **headers},
    )


def _produce(base: str, headers: dict[str, str], topic: str = "access") -> httpx.Response:
    return httpx.post(
        f"{base}/topics/{topic}",
        json={"records": [{"value": {"x": 1}}]},
        headers={"Content-Type": JSON, **headers},
    )


def _answer(response: httpx.Response) -> tuple[int, int | None]:
    body = response.json()
    return response.status_code, body.get("error_code") if isinstance(body, dict) else None


EXPECTED = {
    #            read  register        produce         delete          config
    "anonymous": (200, (401, 40101), (401, 40101), (401, 40101), (401, 40101)),
    "customer": (200, (403, 40301), (403, 40301), (403, 40301), (403, 40301)),
    "producer": (200, (200, None), (200, None), (403, 40301), (403, 40301)),
    "admin": (200, (200, None), (200, None), (200, None), (200, None)),
}


def _matrix(sr: str, rp: str) -> dict[str, tuple[object, ...]]:
    answers: dict[str, tuple[object, ...]] = {}
    for who, headers in WHO.items():
        victim = _subject()
        _register(sr, victim, WHO["admin"]).raise_for_status()
        read = httpx.get(f"{sr}/subjects", headers=headers).status_code
        assert httpx.get(f"{rp}/topics", headers=headers).status_code == read
        register = _answer(_register(sr, _subject(), headers))
        produce = _answer(_produce(rp, headers))
        delete = _answer(httpx.delete(f"{sr}/subjects/{victim}", headers=headers))
        config = _answer(
            httpx.put(
                f"{sr}/config/{victim}",
                json={"compatibility": "NONE"},
                headers={"Content-Type": SR, **headers},
            )
        )
        answers[who] = (read, register, produce, delete, config)
    return answers


def test_the_role_matrix_on_the_main_port(ports: Ports) -> None:
    assert _matrix(ports.main, ports.main) == EXPECTED


def test_the_role_matrix_on_the_compat_ports(ports: Ports) -> None:
    assert _matrix(ports.sr, ports.rp) == EXPECTED


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("DELETE", "/subjects/tote_win_bets-value", None),
        ("DELETE", "/subjects/tote_win_bets-value/versions/1", None),
        ("PUT", "/config", {"compatibility": "NONE"}),
        ("DELETE", "/config", None),
        ("PUT", "/config/tote_win_bets-value", {"compatibility": "NONE"}),
        ("DELETE", "/config/tote_win_bets-value", None),
        ("POST", "/subjects/tote_win_bets-value/versions", {"schema": SCHEMA}),
        ("POST", "/topics/tote_win_bets", {"records": [{"value": {"x": 1}}]}),
        ("POST", "/topics/tote_win_bets/partitions/0", {"records": [{"value": {"x": 1}}]}),
    ],
)
def test_every_port_answers_exactly_alike(
    ports: Ports, method: str, path: str, body: object
) -> None:
    side = ports.rp if path.startswith("/topics") else ports.sr
    for headers in (WHO["anonymous"], WHO["customer"], {"X-API-Key": "no-such-key-0123456789"}):
        answers = [
            httpx.request(
                method,
                f"{base}{path}",
                content=None if body is None else json.dumps(body),
                headers={"Content-Type": JSON if "topics" in path else SR, **headers},
            )
            for base in (ports.main, side)
        ]
        assert answers[0].status_code in (401, 403)
        assert [(a.status_code, a.json()) for a in answers[1:]] == [
            (answers[0].status_code, answers[0].json())
        ]
        assert answers[0].json()["message"]
    # nothing of it happened: the POC's subject is still there, at its level
    latest = httpx.get(f"{ports.main}/subjects/tote_win_bets-value/versions/latest").json()
    assert latest["id"] == 1


def test_an_unknown_key_is_refused_even_where_none_is_needed(ports: Ports) -> None:
    wrong = {"X-API-Key": "no-such-key-0123456789"}
    assert _answer(_produce(ports.rp, wrong)) == (403, 40301)
    # reads stay open: a key is not looked at there
    assert httpx.get(f"{ports.sr}/subjects", headers=wrong).status_code == 200


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_keys_come_as_basic_auth_and_bearer_too(ports: Ports) -> None:
    for base_sr, base_rp in ((ports.main, ports.main), (ports.sr, ports.rp)):
        for headers in (
            _basic("anyone", PRODUCER_KEY),
            _basic(PRODUCER_KEY, ""),
            {"Authorization": f"Bearer {PRODUCER_KEY}"},
        ):
            assert _register(base_sr, _subject(), headers).status_code == 200
            assert _produce(base_rp, headers).status_code == 200
        assert _answer(_register(base_sr, _subject(), _basic("u", "wrong-key"))) == (403, 40301)
        assert _answer(_produce(base_rp, {"Authorization": "Basic !!!"})) == (403, 40301)
        victim = _subject()
        _register(base_sr, victim, _basic("admin", ADMIN_KEY)).raise_for_status()
        deleted = httpx.delete(f"{base_sr}/subjects/{victim}", headers=_basic("x", ADMIN_KEY))
        assert deleted.json() == [1]


def test_confluents_client_authenticates_with_basic_auth(ports: Ports) -> None:
    sr_module = pytest.importorskip("confluent_kafka.schema_registry")
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    schema = sr_module.Schema(SCHEMA, "AVRO")
    subject = _subject()
    anonymous = sr_module.SchemaRegistryClient({"url": ports.sr})
    with pytest.raises(SchemaRegistryError) as refused:
        anonymous.register_schema(subject, schema)
    assert (refused.value.http_status_code, refused.value.error_code) == (401, 40101)
    producer = sr_module.SchemaRegistryClient(
        {"url": ports.sr, "basic.auth.user.info": f"producer:{PRODUCER_KEY}"}
    )
    assert producer.register_schema(subject, schema) > 0
    with pytest.raises(SchemaRegistryError) as refused:
        producer.delete_subject(subject)
    assert (refused.value.http_status_code, refused.value.error_code) == (403, 40301)
    admin = sr_module.SchemaRegistryClient(
        {"url": ports.sr, "basic.auth.user.info": f"admin:{ADMIN_KEY}"}
    )
    assert admin.delete_subject(subject) == [1]


# ----------------------------------------------------------------- the anonymous setting
def _anonymous_produce(tmp_path: Path, **overrides: object) -> int:
    settings = live_settings(
        tmp_path,
        schema_registry_port=free_port(),
        rest_proxy_port=free_port(),
        **overrides,
    )
    with TestClient(create_app(settings, kafka_compat=True)) as client:
        answer = client.post(
            "/topics/anon",
            json={"records": [{"value": {"x": 1}}]},
            headers={"Content-Type": JSON},
        )
        # deletes and config never become anonymous
        assert client.put("/config", json={"compatibility": "NONE"}).status_code == 401
        return answer.status_code


def test_anonymous_producers_by_default_with_the_integration(tmp_path: Path) -> None:
    assert _anonymous_produce(tmp_path / "a") == 200


def test_the_setting_decides_when_given(tmp_path: Path) -> None:
    assert _anonymous_produce(tmp_path / "a", kafka_anonymous_producers=True) == 200
    assert _anonymous_produce(tmp_path / "b", kafka_anonymous_producers=False) == 401


def test_the_old_variable_is_refused_with_the_new_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # a renamed variable left in a deployment must not be ignored silently: "0" there
    # meant "keys required"
    monkeypatch.setenv("ODDSTREAM_COMPAT_ANONYMOUS_PRODUCERS", "0")
    with pytest.raises(SettingsError, match="ODDSTREAM_KAFKA_ANONYMOUS_PRODUCERS"):
        Settings()


def test_without_the_integration_nothing_of_it_runs(tmp_path: Path) -> None:
    """Off (the default): no route, no Schema Registry opened or subject written, no
    topic declared, no bridge following the log."""
    settings = live_settings(
        tmp_path, schema_registry_port=free_port(), rest_proxy_port=free_port()
    )
    assert settings.kafka_compat is False
    with TestClient(create_app(settings)) as client:
        for method, path in [
            ("GET", "/subjects"),
            ("GET", "/topics"),
            ("POST", "/topics/tote_win_bets"),
            ("POST", "/subjects/tote_win_bets-value/versions"),
        ]:
            assert client.request(method, path, json={}).status_code in (404, 405), path
        paths = client.get("/openapi.json").json()["paths"]
        assert not [p for p in paths if p.startswith(("/subjects", "/topics", "/schemas"))]
        store = client.app.state.services.store  # type: ignore[attr-defined]
        for stream in ("schema-registry", "kafka-topics", "topic-tote_win_bets"):
            assert client.portal.call(store.read_stream, stream) == [], stream  # type: ignore[union-attr]
        assert client.portal.call(store.get_checkpoint, "poc-bets") == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "value"), [("1", True), ("yes", True), ("0", False), ("off", False), ("", None)]
)
def test_the_anonymous_producers_variable(
    monkeypatch: pytest.MonkeyPatch, text: str, value: bool | None
) -> None:
    monkeypatch.setenv("ODDSTREAM_KAFKA_ANONYMOUS_PRODUCERS", text)
    assert Settings().kafka_anonymous_producers is value


def test_the_anonymous_producers_variable_refuses_nonsense(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ODDSTREAM_KAFKA_ANONYMOUS_PRODUCERS", "maybe")
    with pytest.raises(ValueError, match="yes/no"):
        Settings()


# ----------------------------------------------------------------- keys
def test_producer_keys_come_from_the_keys_file(tmp_path: Path) -> None:
    ring = KeyRing.from_settings(Settings().with_overrides(api_keys_file=_keys_file(tmp_path)))
    principal = ring.lookup(PRODUCER_KEY)
    assert principal is not None
    assert principal.role == "producer"
    assert principal.wallet_id is None
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"keys": [{"key": PRODUCER_KEY, "role": "producer", "wallet": "w"}]}))
    with pytest.raises(KeyConfigError, match="a producer key names no wallet"):
        KeyRing.from_settings(Settings().with_overrides(api_keys_file=str(bad)))


def test_basic_auth_key() -> None:
    def headers(value: str) -> list[tuple[bytes, bytes]]:
        return [(b"authorization", value.encode())]

    token = base64.b64encode(b"user:the:key").decode()
    assert basic_auth_key(headers(f"Basic {token}")) == "the:key"
    assert basic_auth_key(headers(f"basic {base64.b64encode(b'k:').decode()}")) == "k"
    assert basic_auth_key(headers("Basic not base64!")) == ""
    assert basic_auth_key(headers("Bearer abc")) is None
    assert basic_auth_key([]) is None


# ----------------------------------------------------------------- 9a: body limits
def _chunks(size: int, piece: int = 256 * 1024) -> Iterator[bytes]:
    """A produce body of about ``size`` bytes, sent chunked (no Content-Length)."""
    yield b'{"records": [{"value": "'
    sent = 0
    while sent < size:
        yield b"x" * piece
        sent += piece
    yield b'"}]}'


def test_an_oversized_chunked_produce_is_413_on_every_port(ports: Ports) -> None:
    headers = {"Content-Type": JSON, **WHO["producer"]}
    # the main port's limit is the service's (4 MiB in these tests)
    main = httpx.post(f"{ports.main}/topics/big", content=_chunks(5 << 20), headers=headers)
    assert main.status_code == 413, main.text
    assert "limited to" in main.json()["message"]
    # the REST Proxy port's own limit is 16 MiB
    side = httpx.post(f"{ports.rp}/topics/big", content=_chunks(17 << 20), headers=headers)
    assert side.status_code == 413, side.text
    assert side.json()["error_code"] == 413
    assert "limit" in side.json()["message"]
    # and the service is fine afterwards
    assert _produce(ports.main, WHO["producer"], topic="big").status_code == 200


def test_failed_keys_on_the_compat_surfaces_count_against_the_limit() -> None:
    """Key guessing through the registry or the proxy is limited like everywhere else."""
    from fastapi import Request

    from oddstream.api.auth import FailureLimiter, KeyRing
    from oddstream.integrations.kafka.access import Access
    from oddstream.integrations.kafka.access_policy import kafka_authorizer
    from oddstream.integrations.kafka.errors import ConfluentError

    ring = KeyRing(failures=FailureLimiter(limit=2, window=60))
    ring.add(ADMIN_KEY, "admin")
    authorize = kafka_authorizer(ring, anonymous_producers=False)

    def request(key: str) -> Request:
        headers = [(b"x-api-key", key.encode())]
        return Request({"type": "http", "headers": headers, "client": ("10.9.8.7", 1234)})

    for guess in range(2):
        with pytest.raises(ConfluentError) as refused:
            authorize(request(f"guess-{guess}-0123456789abcdef"), Access.ADMIN)
        assert refused.value.status == 403
    with pytest.raises(ConfluentError) as limited:
        authorize(request(ADMIN_KEY), Access.ADMIN)  # the right key is not even looked at
    assert (limited.value.status, limited.value.error_code) == (429, 42901)


# ----------------------------------------------------------------- topics the service writes
ODDS = "tote_win_bet_race_runners_odds"
FAKE_ODDS = {"records": [{"value": {"RACE_ID": 1, "RUNNER_ID": 1, "ODDS": -5.0, "FAKE": True}}] * 3}


def test_nobody_may_produce_to_the_odds_topic_the_service_writes(ports: Ports) -> None:
    """Not even the admin: the bridge writes the odds rows, and fake ones would reach
    every consumer of the topic. 403/40301 saying why, alike on every port."""
    for base in (ports.main, ports.rp):
        answers = {}
        for who, headers in WHO.items():
            r = httpx.post(
                f"{base}/topics/{ODDS}", json=FAKE_ODDS, headers={"Content-Type": JSON, **headers}
            )
            answers[who] = _answer(r)
            if who in ("producer", "admin"):
                assert "is written by the service" in r.json()["message"]
        assert answers == {
            "anonymous": (401, 40101),  # anonymous producers are off here
            "customer": (403, 40301),
            "producer": (403, 40301),
            "admin": (403, 40301),
        }
        partition = httpx.post(
            f"{base}/topics/{ODDS}/partitions/0",
            json=FAKE_ODDS,
            headers={"Content-Type": JSON, **WHO["admin"]},
        )
        assert _answer(partition) == (403, 40301)
    assert httpx.get(f"{ports.rp}/topics/{ODDS}").status_code == 200  # reading it is open


def test_anonymous_producers_may_not_write_the_odds_topic(tmp_path: Path) -> None:
    """The reviewer's case: --kafka-compat, anonymous producers on by default."""
    rp_port = free_port()
    settings = live_settings(tmp_path, schema_registry_port=free_port(), rest_proxy_port=rp_port)
    with TestClient(create_app(settings, kafka_compat=True)) as client:
        r = client.post(f"/topics/{ODDS}", json=FAKE_ODDS, headers={"Content-Type": JSON})
        assert (r.status_code, r.json()["error_code"]) == (403, 40301)
        assert "is written by the service" in r.json()["message"]
        deadline = time.monotonic() + 10
        while True:  # the side port starts with the app's lifespan
            try:
                side = httpx.post(
                    f"http://127.0.0.1:{rp_port}/topics/{ODDS}",
                    json=FAKE_ODDS,
                    headers={"Content-Type": JSON},
                )
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the REST proxy port did not start"
                time.sleep(0.05)
        assert (side.status_code, side.json()) == (r.status_code, r.json())
        # producing elsewhere stays anonymous, as configured
        bets = {"records": [{"value": {"RACE_ID": 1, "RUNNER_ID": 1, "AMOUNT": 5.0}}]}
        assert (
            client.post(
                "/topics/tote_win_bets", json=bets, headers={"Content-Type": JSON}
            ).status_code
            == 200
        )


# ----------------------------------------------------------------- producer keys elsewhere
def test_a_producer_key_is_a_key_with_no_rights_on_wallets(ports: Ports) -> None:
    """Outside the compat routes a producer key is not "no key" (401): it is a key that
    may use no wallet (403 saying so) and no admin route (403)."""
    producer = WHO["producer"]
    for method, path, body in (
        ("GET", "/wallet/alice/balance", None),
        ("GET", "/wallet/alice/transactions", None),
        ("POST", "/wallet/alice/debit", {"amount_cents": 100}),
        ("POST", "/wallet/alice/credit", {"amount_cents": 100}),
        ("POST", "/races/p1/bets", {"selection": [1], "stake_cents": 100, "wallet_id": "alice"}),
    ):
        url = f"{ports.main}{path}"
        if method == "POST":
            assert httpx.post(url, json=body).status_code == 401
            r = httpx.post(url, json=body, headers=producer)
        else:
            assert httpx.get(url).status_code == 401
            r = httpx.get(url, headers=producer)
        assert r.status_code == 403, (path, r.text)
        assert r.json() == {
            "error": "forbidden",
            "message": "a producer key may only register schemas and produce to topics: "
            "it has no wallet and may use none",
        }
    r = httpx.post(f"{ports.main}/races/p1/close", headers=producer)
    assert (r.status_code, r.json()["error"]) == (403, "forbidden")


def test_a_cash_bet_with_a_producer_key_has_the_producers_request_ids(ports: Ports) -> None:
    """A bet with a producer key is a cash bet; its request id is the producer's, not an
    anonymous bettor's: the same id from both is two bets, a retry is one."""
    admin = WHO["admin"]
    race = {
        "race_id": "prod1",
        "meeting": "m",
        "venue": "v",
        "post_time": "2026-11-21T15:00:00+11:00",
        "runners": [{"number": n, "name": f"R{n}"} for n in (1, 2)],
        "pools": [{"pool": "WIN", "takeout_bps": 1500, "profile": "us"}],
    }
    assert httpx.post(f"{ports.main}/races", json=race, headers=admin).status_code == 201
    assert httpx.post(f"{ports.main}/races/prod1/open", headers=admin).status_code == 200
    bet = {"selection": [1], "stake_cents": 200, "request_id": "same-1"}
    url = f"{ports.main}/races/prod1/bets"
    by_producer = httpx.post(url, json=bet, headers=WHO["producer"])
    assert by_producer.status_code == 201, by_producer.text
    by_anyone = httpx.post(url, json=bet)
    assert by_anyone.status_code == 201, by_anyone.text
    again = httpx.post(url, json=bet, headers=WHO["producer"])
    assert again.status_code == 201, again.text
    assert by_producer.json()["bet_id"] != by_anyone.json()["bet_id"]
    assert not by_anyone.json()["repeated"]
    assert again.json()["repeated"]
    assert again.json()["bet_id"] == by_producer.json()["bet_id"]
    shown = httpx.get(f"{url}/{by_producer.json()['bet_id']}").json()
    assert shown["wallet_id"] is None  # a cash bet
