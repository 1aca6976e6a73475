"""Bets on fixed-odds markets over HTTP, end to end on SQLite and PostgreSQL stores:
``POST /odds/{external_id}/bets`` paid from the customer's wallet, at the current price
or refused (``price_worse``, suspended, closed) with the stake back, settled (win,
void, dead heat) into the wallet exactly, retries by request id, keys confined to
their wallets, read-your-writes on the balance, refusals 4xx with stable codes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest

from .conftest import LiveServer, live_settings, run_server
from .test_tote_api import RACE

ACME_KEY = "acme-provider-key-7Qx2Lm9Zr4"
ACME = {"X-API-Key": ACME_KEY}


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps({"keys": [{"key": ACME_KEY, "role": "provider", "provider": "acme"}]})
    )
    overrides: dict[str, Any] = {"api_keys_file": str(keys)}
    if request.param == "postgres":
        overrides["store_url"] = request.getfixturevalue("pg_url")
        overrides["pg_schema"] = request.getfixturevalue("pg_schema")
    settings = live_settings(tmp_path, **overrides)
    yield from run_server(settings)


def send(server: LiveServer, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{server.url}{path}", timeout=10, **kw)


def new_market(server: LiveServer, request_id: str, **line: Any) -> str:
    body = {
        "RequestID": request_id,
        "Provider": "acme",
        "Command": "NewOdds",
        "Payload": {"GameID": f"g-{request_id}", "MoneyLine": line},
    }
    answer = send(server, "POST", "/odds", json=body, headers=ACME)
    assert answer.status_code == 201, answer.text
    external_id: str = answer.json()["ExternalID"]
    return external_id


def credit(server: LiveServer, wallet: str, cents: int) -> None:
    answer = send(
        server,
        "POST",
        f"/wallet/{wallet}/credit",
        json={"amount_cents": cents},
        headers=server.admin,
    )
    assert answer.status_code == 200, answer.text


def place(server: LiveServer, market: str, headers: dict[str, str], **body: Any) -> httpx.Response:
    return send(server, "POST", f"/odds/{market}/bets", json=body, headers=headers)


def balance(server: LiveServer, wallet: str, position: int = 0) -> tuple[int, int]:
    answer = send(
        server,
        "GET",
        f"/wallet/{wallet}/balance?min_position={position}",
        headers=server.customer(wallet),
    )
    assert answer.status_code == 200, answer.text
    data = answer.json()
    return data["balance_cents"], data["in_play_cents"]


def settled_balance(server: LiveServer, wallet: str, expected: tuple[int, int]) -> tuple[int, int]:
    """The wallet's balance once the cashier has paid (it follows the log)."""
    deadline = time.monotonic() + 10
    while (found := balance(server, wallet)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def lifecycle(
    server: LiveServer,
    market: str,
    command: str,
    request_id: str,
    *,
    headers: dict[str, str] | None = None,
    provider: str = "acme",
    **body: Any,
) -> httpx.Response:
    """``POST /odds/{market}/<command>`` (``suspend``, ``resume``, ``close``, ``result``,
    ``void``) as a ``CommandRequest`` in ``provider``'s name, with acme's key by default."""
    request = {
        "RequestID": request_id,
        "Provider": provider,
        "Command": f"{command.capitalize()}Odds",
        **body,
    }
    return send(server, "POST", f"/odds/{market}/{command}", json=request, headers=headers or ACME)


def provider(server: LiveServer, *steps: tuple[str, str, dict[str, Any]]) -> int:
    """Lifecycle commands ``(market, command, payload)`` that must succeed; the log
    position of the last."""
    position = 0
    for n, (market, command, payload) in enumerate(steps):
        body = {"Payload": payload} if payload else {}
        answer = lifecycle(server, market, command, f"{command}-{market}-{n}", **body)
        assert answer.status_code == 200, answer.text
        position = answer.json()["Position"]
    return position


def test_a_bet_is_taken_at_the_current_price_and_a_win_paid(server: LiveServer) -> None:
    market = new_market(server, "m-win", Home=1.91, Away=2.1)
    credit(server, "alice", 10_000)
    alice = server.customer("alice")
    taken = place(server, market, alice, outcome="home", stake_cents=1_000, price=1.9)
    assert taken.status_code == 201, taken.text
    bet = taken.json()
    assert bet["price"] == {"num": 191, "den": 100, "decimal": "1.91", "exact": "1.91"}
    assert bet["requested"]["decimal"] == "1.90"
    assert bet["bet_id"].startswith("alice~")
    assert bet["events"] == ["BetAccepted"]
    assert balance(server, "alice", bet["position"]) == (9_000, 1_000)
    provider(server, (market, "close", {}), (market, "result", {"Winners": ["home"]}))
    assert settled_balance(server, "alice", (10_910, 0)) == (10_910, 0)


def test_a_worse_price_is_refused_and_the_stake_stays_in_the_wallet(server: LiveServer) -> None:
    market = new_market(server, "m-worse", Home=1.91, Away=2.1)
    credit(server, "alice", 10_000)
    refused = place(
        server, market, server.customer("alice"), outcome="home", stake_cents=500, price="1.95"
    )
    assert refused.status_code == 409
    assert refused.json()["error"] == "price_worse"
    assert "1.91" in refused.json()["message"]
    assert balance(server, "alice") == (10_000, 0)
    statement = send(server, "GET", "/wallet/alice/transactions", headers=server.customer("alice"))
    kinds = [t["type"] for t in statement.json()["transactions"]]
    assert kinds[:2] == ["StakeReleased", "StakeReserved"]


def test_suspended_and_closed_markets_refuse_bets(server: LiveServer) -> None:
    suspended = new_market(server, "m-susp", Home=2, Away=2)
    closed = new_market(server, "m-closed", Home=2, Away=2)
    provider(server, (suspended, "suspend", {}), (closed, "close", {}))
    credit(server, "bob", 5_000)
    bob = server.customer("bob")
    for market, code in ((suspended, "market_suspended"), (closed, "market_closed")):
        answer = place(server, market, bob, outcome="away", stake_cents=100, price=2)
        assert answer.status_code == 409
        assert answer.json()["error"] == code
    assert balance(server, "bob") == (5_000, 0)


def test_void_and_dead_heat_settle_exactly(server: LiveServer) -> None:
    three = new_market(server, "m-dh", Home=2.5, Away=1.62, Draw=3)
    void = new_market(server, "m-void", Home=1.91, Away=1.91)
    credit(server, "bob", 10_000)
    bob = server.customer("bob")
    for market, outcome, stake, price in (
        (three, "home", 1_001, {"price": 2.5}),
        (three, "draw", 1_001, {"price_fractional": "2/1"}),
        (three, "away", 1_300, {"price": "1.62"}),
        (void, "away", 777, {"price": 1.5}),
    ):
        answer = place(server, market, bob, outcome=outcome, stake_cents=stake, **price)
        assert answer.status_code == 201, answer.text
    assert balance(server, "bob") == (10_000 - 4_079, 4_079)
    provider(
        server,
        (three, "close", {}),
        (three, "result", {"Winners": ["home", "draw"]}),
        (void, "void", {"Reason": "abandoned"}),
    )
    # ⌊1001 × 2.5 / 2⌋ = 1251, ⌊1001 × 3 / 2⌋ = 1501, the away bet lost, 777 back
    expected = (10_000 - 4_079 + 1_251 + 1_501 + 777, 0)
    assert settled_balance(server, "bob", expected) == expected


def test_a_request_id_makes_a_retry_answer_the_first_time(server: LiveServer) -> None:
    market = new_market(server, "m-retry", Home=1.91, Away=2.1)
    credit(server, "alice", 10_000)
    alice = server.customer("alice")
    body = {"outcome": "away", "stake_cents": 1_000, "price": 2, "request_id": "r-1"}
    first = place(server, market, alice, **body)
    again = place(server, market, alice, **body)
    assert first.status_code == again.status_code == 201
    assert again.json()["repeated"] is True
    assert again.json()["bet_id"] == first.json()["bet_id"]
    changed = place(server, market, alice, **{**body, "stake_cents": 2_000})
    assert changed.status_code == 422
    assert changed.json()["error"] == "request_id_reused"
    assert balance(server, "alice") == (9_000, 1_000)


def test_keys_are_confined_to_their_wallets(server: LiveServer) -> None:
    market = new_market(server, "m-keys", Home=1.91, Away=2.1)
    credit(server, "bob", 1_000)
    body = {"outcome": "home", "stake_cents": 100, "price": 1.5}
    assert place(server, market, {}, **body).status_code == 401
    other = place(server, market, server.customer("alice"), wallet_id="bob", **body)
    assert other.status_code == 403
    assert place(server, market, ACME, **body).status_code == 403  # a provider key
    assert place(server, market, server.admin, **body).json()["error"] == "wallet_required"
    by_admin = place(server, market, server.admin, wallet_id="bob", **body)
    assert by_admin.status_code == 201, by_admin.text
    assert balance(server, "bob") == (900, 100)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"outcome": "home", "stake_cents": 100}, 422, "bad_price"),
        (
            {"outcome": "home", "stake_cents": 100, "price": 1.5, "price_fractional": "1/2"},
            422,
            "bad_price",
        ),
        ({"outcome": "home", "stake_cents": 100, "price": 1.0}, 422, "odds_too_low"),
        ({"outcome": "home", "stake_cents": 100, "price_fractional": "x"}, 422, "bad_odds"),
        ({"outcome": "draw", "stake_cents": 100, "price": 1.5}, 422, "unknown_outcome"),
        ({"outcome": "home", "stake_cents": 0, "price": 1.5}, 422, "bad_amount"),
        ({"outcome": "home", "stake_cents": 99_999_999, "price": 1.5}, 409, "insufficient_funds"),
        ({"outcome": "side", "stake_cents": 100, "price": 1.5}, 422, None),
    ],
)
def test_bad_bets_are_4xx_with_a_reason(server: LiveServer, body: dict, status: int, code) -> None:
    market = new_market(server, "m-bad", Home=1.91, Away=2.1)
    credit(server, "alice", 1_000)
    answer = place(server, market, server.customer("alice"), **body)
    assert answer.status_code == status, answer.text
    if code is not None:
        assert answer.json()["error"] == code
    assert answer.json()["message"]
    assert balance(server, "alice") == (1_000, 0)


def test_unknown_markets_and_bad_ids(server: LiveServer) -> None:
    credit(server, "alice", 1_000)
    alice = server.customer("alice")
    body = {"outcome": "home", "stake_cents": 100, "price": 1.5}
    missing = place(server, market="00000000-0000-0000-0000-000000000001", headers=alice, **body)
    assert missing.status_code == 404
    assert missing.json()["error"] == "market_not_found"
    assert place(server, "not-a-uuid", alice, **body).json()["error"] == "bad_external_id"
    assert balance(server, "alice") == (1_000, 0)


def statement(server: LiveServer, wallet: str, **query: Any) -> httpx.Response:
    return send(
        server,
        "GET",
        f"/wallet/{wallet}/transactions",
        params=query,
        headers=server.customer(wallet),
    )


def test_the_statement_names_each_lines_book_and_filters_by_it(server: LiveServer) -> None:
    """A market bet's stake and settlement lines name its book and market (no race); a
    race bet's name its race; ``?book=`` keeps one book's lines; a bad book is a 422
    that says what a book is."""
    market = new_market(server, "m-statement", Home=1.91, Away=2.1)
    credit(server, "alice", 10_000)
    alice = server.customer("alice")
    taken = place(server, market, alice, outcome="home", stake_cents=1_000, price=1.9)
    assert taken.status_code == 201, taken.text
    provider(server, (market, "close", {}), (market, "result", {"Winners": ["home"]}))
    assert settled_balance(server, "alice", (10_910, 0)) == (10_910, 0)
    race = {**RACE, "race_id": "r-statement"}
    assert send(server, "POST", "/races", json=race, headers=server.admin).status_code == 201
    assert send(server, "POST", "/races/r-statement/open", headers=server.admin).is_success
    bet = send(
        server,
        "POST",
        "/races/r-statement/bets",
        json={"selection": [1], "stake_cents": 500},
        headers=alice,
    )
    assert bet.status_code == 201, bet.text
    answer = statement(server, "alice", min_position=bet.json()["position"], limit=50)
    assert answer.status_code == 200, answer.text
    lines = [
        (t["type"], t["book"], t["race_id"], t["market_id"])
        for t in answer.json()["transactions"]
        if t["bet_id"]
    ]
    book = f"market-{market}"
    assert [line for line in lines if line[1] == "race-r-statement"] == [
        ("StakeCaptured", "race-r-statement", "r-statement", None),
        ("StakeReserved", "race-r-statement", "r-statement", None),
    ]
    assert [line for line in lines if line[1] == book] == [
        ("WinningsCredited", book, None, market),
        ("StakeCaptured", book, None, market),
        ("StakeReserved", book, None, market),
    ]
    # the answer is what the OpenAPI document says (a market line included)
    document = send(server, "GET", "/openapi.json").json()
    answer_schema = document["paths"]["/wallet/{wallet_id}/transactions"]["get"]["responses"]
    validator = jsonschema_rs.Draft202012Validator(
        answer_schema["200"]["content"]["application/json"]["schema"]
    )
    validator.validate(answer.json())
    wrong = {**answer.json()["transactions"][0], "market_id": 7}
    assert not validator.is_valid({**answer.json(), "transactions": [wrong]})
    only = statement(server, "alice", book=book, limit=2)
    assert only.status_code == 200, only.text
    assert [t["type"] for t in only.json()["transactions"]] == ["WinningsCredited", "StakeCaptured"]
    rest = statement(server, "alice", book=book, before=only.json()["next_before"])
    assert [t["type"] for t in rest.json()["transactions"]] == ["StakeReserved"]
    assert rest.json()["next_before"] is None
    for bad in ("market-", "market-a b", "pool-1", "race-" + "r" * 101):
        refused = statement(server, "alice", book=bad)
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["error"] == "invalid_request"
        assert "book" in refused.json()["message"]
