"""Regressions from the review of the wallet work (HTTP side): each test once
demonstrated a defect (a 500, sub-cent money accepted, a wallet's existence leaked, one
customer's request id colliding with another's, a cash bet taking over a wallet bet's
request id); all are fixed. The runtime side is tests/runtime/test_wallet_regressions.py.
"""

from __future__ import annotations

import httpx
import pytest

from oddstream.application.bodies import decode
from oddstream.application.errors import ApiError
from oddstream.application.wallets import cents_in, money_decoder

from .conftest import LiveServer
from .test_tote_api import open_race as open_race_http

# ----------------------------------------------------------------------------- amounts


@pytest.mark.parametrize(
    "raw",
    [
        b'{"amount": 5.00000000000000000000000000001}',  # 29 decimals: rounded away
        b'{"amount": "0.00999999999999999999999999999999"}',  # under a cent → 1 cent
    ],
)
def test_amounts_with_more_than_two_decimals_are_refused_beyond_28_digits(raw: bytes) -> None:
    """``amount * 100`` runs in the default decimal context (28 digits): the sub-cent
    part is rounded away before the two-decimals check."""
    with pytest.raises(ApiError) as refused:
        cents_in(decode(money_decoder, raw))
    assert refused.value.status == 422


# ----------------------------------------------------------------------------- over HTTP


@pytest.fixture
async def client(server: LiveServer):
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
        yield c


JSON = {"content-type": "application/json"}


async def test_a_huge_exponent_is_422_not_500(client, server: LiveServer) -> None:
    """``Decimal * 100`` overflows the default context (Emax 999999): decimal.Overflow
    escapes as a 500 on both credit and debit, with a number or a string."""
    answers = []
    for path in ("credit", "debit"):
        for raw in (b'{"amount": 1e999999}', b'{"amount": "1e999999"}'):
            r = await client.post(
                f"/wallet/alice/{path}", content=raw, headers={**server.admin, **JSON}
            )
            answers.append((path, raw, r.status_code))
    assert all(status == 422 for _, _, status in answers), answers


async def test_a_bet_does_not_show_its_wallet_to_anyone(client, server: LiveServer) -> None:
    """GET /bets/{id} needs no key and answers the wallet id (and stake, payout) of a
    wallet bet: anybody learns that wallet "alice" exists and what she bets."""
    await open_race_http(client, server)
    r = await client.post("/wallet/alice/credit", json={"amount": 50}, headers=server.admin)
    assert r.status_code == 200, r.text
    r = await client.post(
        "/races/r1/bets",
        json={"selection": [1], "stake_cents": 1_000, "bet_id": "alices-bet"},
        headers=server.customer("alice"),
    )
    assert r.status_code == 201, r.text
    position = r.json()["position"]
    for headers in ({}, server.customer("bob")):
        r = await client.get(f"/bets/alices-bet?min_position={position}", headers=headers)
        assert "alice" not in r.text.replace("alices-bet", ""), (headers, r.text)


async def test_request_id_bet_ids_do_not_collide_between_customers(
    client,
    server: LiveServer,
) -> None:
    """A bet id derived from a request id is uuid5(race/request_id), the same for every
    customer: bob's bet is refused (409 duplicate_bet) because alice used his request id."""
    await open_race_http(client, server)
    for wallet in ("alice", "bob"):
        r = await client.post(f"/wallet/{wallet}/credit", json={"amount": 50}, headers=server.admin)
        assert r.status_code == 200, r.text
    answers = []
    for wallet in ("alice", "bob"):
        r = await client.post(
            "/races/r1/bets",
            json={"selection": [1], "stake_cents": 1_000, "request_id": "bet-1"},
            headers=server.customer(wallet),
        )
        answers.append((wallet, r.status_code, r.text))
    assert [a[1] for a in answers] == [201, 201], answers


async def test_a_cash_bet_cannot_squat_a_wallet_bets_request_id(
    client,
    server: LiveServer,
) -> None:
    """Client request ids share the race's namespace with the cashier's internal
    ``wallet-bet:<wallet>:<bet>``: an anonymous cash bet sent with that request id makes
    alice's later bet get the cash bet's answer (repeated), and her stake is captured
    for a bet that is not hers: in play forever, never settled to her wallet."""
    await open_race_http(client, server)
    r = await client.post("/wallet/alice/credit", json={"amount": 50}, headers=server.admin)
    assert r.status_code == 200, r.text
    r = await client.post(  # no key: a cash bet
        "/races/r1/bets",
        json={
            "selection": [1],
            "stake_cents": 100,
            "bet_id": "ab",
            "request_id": "wallet-bet:alice:ab",
        },
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/races/r1/bets",
        json={"selection": [2], "stake_cents": 1_000, "bet_id": "ab"},
        headers=server.customer("alice"),
    )
    # her bet is hers (its id in the race is alice~ab): placed, paid from her wallet,
    # untouched by the cash bet's request id
    assert r.status_code == 201, r.text
    assert (r.json()["bet_id"], r.json()["repeated"]) == ("alice~ab", False)
    b = await client.get(
        f"/wallet/alice/balance?min_position={r.json()['position']}", headers=server.admin
    )
    body = b.json()
    assert (body["balance_cents"], body["in_play_cents"]) == (4_000, 1_000), body
