"""Write routes refuse what the single-bet route refuses: coerced types, bodies that are
not JSON by their Content-Type, free text with control or bidi characters; malformed
bodies are 422 everywhere; unknown keys are rate-limited per client address."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from .conftest import (
    ADMIN_KEY,
    CUSTOMER_KEYS,
    LiveServer,
    free_port,
    live_settings,
    run_server,
)

RACE = {
    "meeting": "Flemington R7",
    "venue": "Flemington",
    "post_time": "2026-11-21T15:00:00+11:00",
    "runners": [{"number": n, "name": f"Runner {n}"} for n in range(1, 5)],
    "pools": [{"pool": "WIN", "takeout_bps": 1500, "profile": "us"}],
}
ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from run_server(live_settings(tmp_path_factory.mktemp("hardening")))


@pytest.fixture(scope="module")
def race(live: LiveServer) -> str:
    """An open race r1, and $100 in alice's wallet."""
    with httpx.Client(base_url=live.url, timeout=10) as c:
        assert c.post("/races", json={**RACE, "race_id": "r1"}, headers=ADMIN).status_code == 201
        assert c.post("/races/r1/open", headers=ADMIN).status_code == 200
        r = c.post("/wallet/alice/credit", json={"amount_cents": 10_000}, headers=ADMIN)
        assert r.status_code == 200, r.text
    return "r1"


@pytest.fixture
def client(live: LiveServer, race: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=10) as c:
        yield c


def _refused(r: httpx.Response, status: int, *words: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]
    assert body["message"]
    for word in words:
        assert word in r.text, (word, r.text)


# ------------------------------------------------------------------- a. strict types


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/races/r1/scratch", {"runner": True}, "body.runner"),
        ("/races/r1/scratch", {"runner": "1"}, "body.runner"),
        ("/races/r1/scratch", {"runner": 1.5}, "body.runner"),  # (1.0 is 1)
        ("/races/r1/result", {"placings": [[True], [2]]}, "body.placings.0.0"),
        ("/races/r1/abandon", {"reason": 5}, "body.reason"),
        ("/races/r1/open", {"request_id": 12345}, "body.request_id"),
        ("/races", {**RACE, "pools": [{**RACE["pools"][0], "takeout_bps": "1500"}]}, "takeout"),
        (
            "/races",
            {**RACE, "runners": [{"number": "1", "name": "A"}, {"number": 2, "name": "B"}]},
            "number",
        ),
        (
            "/races/r1/bets/batch",
            {"bets": [{"selection": [True], "stake_cents": 100}]},
            "selection",
        ),
        (
            "/races/r1/bets/batch",
            {"bets": [{"selection": [1], "stake_cents": "100"}]},
            "stake_cents",
        ),
        (
            "/races/r1/bets/batch",
            {"bets": [{"selection": [1], "stake_cents": 100.5}]},
            "stake_cents",
        ),
    ],
)
def test_admin_and_batch_routes_do_not_coerce_types(client, path, body, field) -> None:
    r = client.post(path, json=body, headers=ADMIN)
    _refused(r, 422, field)
    # as the single-bet route (the reference) refuses them
    single = client.post("/races/r1/bets", json={"selection": [True], "stake_cents": 100})
    _refused(single, 422, "selection")


def test_strict_bodies_still_take_enum_names(client) -> None:
    r = client.post(
        "/races/r1/bets/batch",
        json={"bets": [{"pool": "WIN", "selection": [2], "stake_cents": 200}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1
    r = client.get("/races/r1")
    assert r.json()["runners"][0]["scratched"] is False  # {"runner": true} scratched nobody


# -------------------------------------------------------------- b. Content-Type: JSON

BET = b'{"selection": [1], "stake_cents": 100}'


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/races/r1/bets", BET),  # a lean route
        ("/races/r1/bets/batch", b'{"bets": [' + BET + b"]}"),
        ("/races/r1/scratch", b'{"runner": 4}'),
        ("/races", b"{}"),
        ("/wallet/alice/credit", b'{"amount_cents": 100}'),  # a lean route
        ("/wallet/alice/debit", b'{"amount_cents": 100}'),  # a lean route
    ],
)
@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx",
     "application/json; charset=latin-1"],
)  # fmt: skip
def test_json_writes_need_a_json_content_type(client, path, body, content_type) -> None:
    headers = {**ADMIN, "Content-Type": content_type} if content_type else dict(ADMIN)
    r = client.post(path, content=body, headers=headers)  # raw content: no Content-Type
    _refused(r, 415, "unsupported_media_type", "JSON")


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "Application/JSON; charset=UTF-8", "application/vnd.bet+json"],
)
def test_json_content_types_are_accepted(client, content_type) -> None:
    headers = {"Content-Type": content_type, "X-API-Key": "alice-key-0123456789"}
    r = client.post("/races/r1/bets", content=BET, headers=headers)
    assert r.status_code == 201, r.text
    r = client.post("/wallet/alice/debit", content=b'{"amount_cents": 1}', headers=headers)
    assert r.status_code == 200, r.text


def test_a_write_without_a_body_needs_no_content_type(client) -> None:
    r = client.post("/races/nowhere/close", headers=ADMIN)  # httpx sends no Content-Type
    _refused(r, 404, "race_not_found")


# -------------------------------------------------------------------- c. free text

BAD_TEXT = {
    "right-to-left override": "pay\u202etxt.exe",
    "isolate": "a\u2066b",
    "zero-width space": "ali\u200bce",
    "control": "line\nbreak",
    "NUL": "a\x00b",
    "unassigned": "a\U000e0fffb",
    "private use": "a\ue000b",
    "line separator": "a\u2028b",
}


@pytest.mark.parametrize("text", BAD_TEXT.values(), ids=BAD_TEXT.keys())
def test_free_text_refuses_controls_and_bidi(client, text) -> None:
    alice = {"X-API-Key": "alice-key-0123456789"}
    r = client.post(
        "/wallet/alice/debit", json={"amount_cents": 1, "reference": text}, headers=alice
    )
    _refused(r, 422, "reference", "U+")
    r = client.post(
        "/wallet/alice/credit", json={"amount_cents": 1, "reference": text}, headers=ADMIN
    )
    _refused(r, 422, "reference", "U+")
    named = {**RACE, "runners": [{"number": 1, "name": text}, {"number": 2, "name": "B"}]}
    _refused(client.post("/races", json=named, headers=ADMIN), 422, "runners.0.name", "U+")
    for field in ("meeting", "venue", "post_time"):
        r = client.post("/races", json={**RACE, field: text}, headers=ADMIN)
        _refused(r, 422, field, "U+")
    _refused(client.post("/races/r9/abandon", json={"reason": text}, headers=ADMIN), 422, "reason")


def test_a_lone_surrogate_is_refused(client) -> None:
    raw = b'{"amount_cents": 1, "reference": "a\\ud800b"}'
    r = client.post(
        "/wallet/alice/credit", content=raw, headers={**ADMIN, "Content-Type": "application/json"}
    )
    _refused(r, 422)


def test_ordinary_unicode_text_is_kept(client) -> None:
    r = client.post(
        "/wallet/alice/credit",
        json={"amount_cents": 1, "reference": "Café Zoë ★ 東京 — שלום"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    r = client.post(
        "/wallet/alice/debit",
        json={"amount_cents": 1, "reference": "x" * 201},
        headers=ADMIN,
    )
    _refused(r, 422, "200")


# ----------------------------------------------------------- e. malformed bodies: 422


@pytest.mark.parametrize(
    "path", ["/races/r1/bets", "/races/r1/scratch", "/races", "/wallet/alice/debit"]
)
@pytest.mark.parametrize(
    "raw",
    [b"{", b"", b"[]", b"null", b'"x"', b'{"runner": "\xc3"}', b"[" * 100_000 + b"]" * 100_000],
    ids=["truncated", "empty", "array", "null", "string", "invalid UTF-8", "deep nesting"],
)
def test_malformed_bodies_are_422(client, path, raw) -> None:
    r = client.post(path, content=raw, headers={**ADMIN, "Content-Type": "application/json"})
    _refused(r, 422, "invalid_request")


# ------------------------------------------------------- g. failed keys are limited


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = live_settings(
        tmp_path_factory.mktemp("limited"), auth_failure_limit=3, auth_failure_window_seconds=60
    )
    yield from run_server(settings)


def test_failed_keys_are_rate_limited_per_address(limited: LiveServer) -> None:
    with httpx.Client(base_url=limited.url, timeout=10) as c:
        for guess in range(3):
            r = c.post("/races/r1/close", headers={"X-API-Key": f"guess-{guess}-0123456789"})
            _refused(r, 403, "not known")
        for method, path, body in [
            ("POST", "/races/r1/close", None),
            ("POST", "/wallet/alice/debit", {"amount_cents": 1}),  # a lean route
            ("GET", "/wallet/alice/balance", None),  # a lean route
            ("GET", "/wallet/alice/transactions", None),
        ]:
            # even the right key is not looked at while the address is over its limit
            r = c.request(method, path, headers=ADMIN, json=body)
            _refused(r, 429, "too_many_failures")
            assert 0 < int(r.headers["Retry-After"]) <= 60
        assert c.get("/races").status_code == 200  # requests without a key are not refused
        # every refusal is counted, on every surface
        metrics = c.get("/metrics").text
        assert 'oddstream_auth_refused_total{reason="unknown_key"} 3.0' in metrics
        assert 'oddstream_auth_refused_total{reason="locked"} 4.0' in metrics


@pytest.fixture(scope="module")
def limited_in_use(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = live_settings(
        tmp_path_factory.mktemp("limited-in-use"),
        auth_failure_limit=3,
        auth_failure_window_seconds=60,
        schema_registry_port=free_port(),
        rest_proxy_port=free_port(),
    )
    # with the Kafka integration on: its Schema Registry is one of the surfaces checked
    yield from run_server(settings, kafka_compat=True)


def test_keys_in_use_keep_working_while_guesses_lock_their_address(
    limited_in_use: LiveServer,
) -> None:
    """Guesses from the admin's address do not shut the admin (or a customer already
    working from there) out of any surface: the framework's routes, the lean routes and
    the Schema Registry all see that these keys authenticated from this address."""
    alice, bob = {"X-API-Key": CUSTOMER_KEYS["alice"]}, {"X-API-Key": CUSTOMER_KEYS["bob"]}
    compat = {"compatibility": "BACKWARD"}
    with httpx.Client(base_url=limited_in_use.url, timeout=10) as c:
        assert c.post("/races", json={**RACE, "race_id": "r1"}, headers=ADMIN).status_code == 201
        r = c.post("/wallet/alice/credit", json={"amount_cents": 500}, headers=ADMIN)
        assert r.status_code == 200, r.text  # a lean route
        assert c.get("/wallet/alice/balance", headers=alice).status_code == 200
        r = c.put("/config", json=compat, headers=ADMIN)  # the Schema Registry
        assert r.status_code == 200, r.text
        for guess in range(3):
            r = c.post("/races/r1/open", headers={"X-API-Key": f"guess-{guess}-0123456789"})
            _refused(r, 403, "not known")
        r = c.post("/races/r1/open", headers={"X-API-Key": "guess-3-0123456789"})
        _refused(r, 429, "too_many_failures")
        assert c.post("/races/r1/open", headers=ADMIN).status_code == 200
        r = c.post("/wallet/alice/credit", json={"amount_cents": 500}, headers=ADMIN)
        assert r.status_code == 200, r.text
        seen = {"min_position": r.json()["position"]}  # read-your-writes
        r = c.get("/wallet/alice/balance", params=seen, headers=alice)
        assert (r.status_code, r.json()["balance_cents"]) == (200, 1000), r.text
        assert c.put("/config", json=compat, headers=ADMIN).status_code == 200
        # bob's key is right but never worked from here: refused like a guess
        _refused(c.get("/wallet/bob/balance", headers=bob), 429, "too_many_failures")
