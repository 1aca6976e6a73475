"""Request ids over HTTP (issue 9, defect 2): scoped by sender and kind of command,
checked against the request they were first used for."""

from __future__ import annotations

import httpx
import pytest

from .conftest import LiveServer
from .test_tote_api import open_race


@pytest.fixture
async def client(server: LiveServer):
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
        yield c


async def test_an_anonymous_bet_cannot_take_the_admins_close(client, server: LiveServer) -> None:
    await open_race(client, server, "r1")
    squat = await client.post(
        "/races/r1/bets", json={"selection": [1], "stake_cents": 500, "request_id": "close-rq1"}
    )
    assert squat.status_code == 201, squat.text
    close = await client.post(
        "/races/r1/close", json={"request_id": "close-rq1"}, headers=server.admin
    )
    assert close.status_code == 200, close.text
    assert close.json()["repeated"] is False
    race = await client.get(f"/races/r1?min_position={close.json()['position']}")
    assert race.json()["status"] == "closed"
    late = await client.post("/races/r1/bets", json={"selection": [1], "stake_cents": 500})
    assert late.status_code == 409, late.text


async def test_a_customers_debit_cannot_take_the_id_of_a_deposit(
    client, server: LiveServer
) -> None:
    first = await client.post(
        "/wallet/alice/credit", json={"amount": 10, "request_id": "setup"}, headers=server.admin
    )
    assert first.status_code == 200, first.text
    squat = await client.post(
        "/wallet/alice/debit",
        json={"amount": 1, "request_id": "dep-7"},
        headers=server.customer("alice"),
    )
    assert squat.status_code == 200, squat.text
    deposit = await client.post(
        "/wallet/alice/credit", json={"amount": 50, "request_id": "dep-7"}, headers=server.admin
    )
    assert deposit.status_code == 200, deposit.text
    assert deposit.json()["repeated"] is False
    assert deposit.json()["balance_cents"] == (10 - 1 + 50) * 100


@pytest.mark.parametrize(
    ("path", "first", "second"),
    [
        ("/wallet/alice/credit", {"amount": 5}, {"amount": 6}),
        (
            "/races/r1/bets",
            {"selection": [1], "stake_cents": 500},
            {"selection": [2], "stake_cents": 500},
        ),
    ],
)
async def test_the_same_id_with_a_different_request_is_422(
    client, server: LiveServer, path: str, first: dict, second: dict
) -> None:
    await open_race(client, server, "r1")
    one = await client.post(path, json={**first, "request_id": "x-1"}, headers=server.admin)
    assert one.status_code in (200, 201), one.text
    again = await client.post(path, json={**first, "request_id": "x-1"}, headers=server.admin)
    assert again.json()["repeated"] is True
    other = await client.post(path, json={**second, "request_id": "x-1"}, headers=server.admin)
    assert other.status_code == 422, other.text
    assert other.json()["error"] == "request_id_reused"


async def test_a_wallet_bet_retried_with_another_stake_is_422_and_moves_no_money(
    client, server: LiveServer
) -> None:
    await open_race(client, server, "r1")
    alice = server.customer("alice")
    await client.post("/wallet/alice/credit", json={"amount": 20}, headers=server.admin)
    body = {"selection": [1], "stake_cents": 500, "request_id": "b-1"}
    placed = await client.post("/races/r1/bets", json=body, headers=alice)
    assert placed.status_code == 201, placed.text
    changed = await client.post("/races/r1/bets", json={**body, "stake_cents": 900}, headers=alice)
    assert changed.status_code == 422, changed.text
    assert changed.json()["error"] == "request_id_reused"
    balance = await client.get(
        f"/wallet/alice/balance?min_position={placed.json()['position']}", headers=alice
    )
    assert balance.json()["balance_cents"] == 1500


async def test_scheduling_with_a_request_id_and_no_race_id_is_idempotent(
    client, server: LiveServer
) -> None:
    race = {
        "meeting": "M",
        "venue": "V",
        "post_time": "2026-11-29T15:00:00Z",
        "runners": [{"number": 1, "name": "A"}, {"number": 2, "name": "B"}],
        "pools": [{"pool": "WIN", "takeout_bps": 1500}],
        "request_id": "sched-1",
    }
    first = await client.post("/races", json=race, headers=server.admin)
    assert first.status_code == 201, first.text
    again = await client.post("/races", json=race, headers=server.admin)
    assert again.json()["race_id"] == first.json()["race_id"]
    assert again.json()["repeated"] is True
