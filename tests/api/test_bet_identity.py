"""Bets are identified by race and bet id (issue 9, defect 5): a bet id is unique per race
only, so another race's bet of the same id must neither show instead of a customer's bet
nor take its settlement."""

from __future__ import annotations

import httpx
import pytest

from .conftest import LiveServer
from .test_tote_api import open_race


@pytest.fixture
async def client(server: LiveServer):
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
        yield c


async def test_a_bet_of_the_same_id_in_another_race_takes_nothing(
    client, server: LiveServer
) -> None:
    alice = server.customer("alice")
    for race in ("r1", "r2"):
        await open_race(client, server, race)
    r = await client.post("/wallet/alice/credit", json={"amount": 50}, headers=server.admin)
    assert r.status_code == 200, r.text
    mine = await client.post(
        "/races/r1/bets",
        json={"selection": [1], "stake_cents": 1_000, "bet_id": "b1"},
        headers=alice,
    )
    assert mine.status_code == 201, mine.text
    assert mine.json()["race_id"] == "r1"
    squat = await client.post(
        "/races/r2/bets", json={"selection": [2], "stake_cents": 700, "bet_id": "b1"}
    )
    assert squat.status_code == 201, squat.text
    # r2 is abandoned: its bet is refunded; alice's bet in r1 must stay open
    done = await client.post("/races/r2/abandon", json={}, headers=server.admin)
    assert done.status_code == 200, done.text
    at = f"?min_position={done.json()['position']}"

    own = await client.get(f"/races/r1/bets/b1{at}", headers=alice)
    assert own.status_code == 200, own.text
    assert (own.json()["race_id"], own.json()["status"], own.json()["stake_cents"]) == (
        "r1",
        "open",
        1_000,
    )
    other = (await client.get(f"/races/r2/bets/b1{at}")).json()
    assert (other["status"], other["refund_cents"]) == ("settled", 700)

    # by id alone: alice names her bet by the id she gave; anyone else sees the cash bet
    by_id = await client.get(f"/bets/b1{at}", headers=alice)
    assert (by_id.json()["race_id"], by_id.json()["bet_id"]) == ("r1", "alice~b1")
    anonymous = await client.get(f"/bets/b1{at}")
    assert anonymous.json()["race_id"] == "r2"
    operator = await client.get(f"/bets/alice~b1{at}", headers=server.admin)
    assert operator.json()["race_id"] == "r1"


async def test_a_customers_bet_id_cannot_be_taken_or_probed_by_a_cash_bet(
    client, server: LiveServer
) -> None:
    """A wallet bet's id in the race is ``<wallet>~<id>``: a cash bet of the same id
    neither refuses it nor learns from a refusal that it exists."""
    alice = server.customer("alice")
    await open_race(client, server, "r1")
    await client.post("/wallet/alice/credit", json={"amount": 50}, headers=server.admin)
    for body, headers in (
        ({"selection": [1], "stake_cents": 500, "bet_id": "b7"}, {}),  # first, by anyone
        ({"selection": [1], "stake_cents": 500, "bet_id": "b7"}, alice),
        ({"selection": [2], "stake_cents": 500, "bet_id": "b8"}, alice),
        ({"selection": [2], "stake_cents": 500, "bet_id": "b8"}, {}),  # after her, by anyone
    ):
        r = await client.post("/races/r1/bets", json=body, headers=headers)
        assert r.status_code == 201, r.text
    for bad in ("alice~b8", "alice/b8"):  # nobody can name a wallet's bet when placing
        r = await client.post(
            "/races/r1/bets", json={"selection": [2], "stake_cents": 500, "bet_id": bad}
        )
        assert r.status_code == 422, r.text


async def test_one_id_in_two_races_is_ambiguous_by_id_alone(client, server: LiveServer) -> None:
    for race in ("r1", "r2"):
        await open_race(client, server, race)
        r = await client.post(
            f"/races/{race}/bets", json={"selection": [1], "stake_cents": 500, "bet_id": "c1"}
        )
        assert r.status_code == 201, r.text
    at = f"?min_position={r.json()['position']}"
    both = await client.get(f"/bets/c1{at}")
    assert both.status_code == 409, both.text
    assert both.json()["error"] == "ambiguous_bet"
    assert sorted(both.json()["races"]) == ["r1", "r2"]
    one = await client.get(f"/races/r2/bets/c1{at}")
    assert one.json()["race_id"] == "r2"


async def test_a_wallet_bet_of_a_race_is_hidden_from_others(client, server: LiveServer) -> None:
    await open_race(client, server, "r1")
    await client.post("/wallet/alice/credit", json={"amount": 50}, headers=server.admin)
    r = await client.post(
        "/races/r1/bets",
        json={"selection": [1], "stake_cents": 1_000, "bet_id": "b1"},
        headers=server.customer("alice"),
    )
    at = f"?min_position={r.json()['position']}"
    for headers in ({}, server.customer("bob")):
        hidden = await client.get(f"/races/r1/bets/b1{at}", headers=headers)
        assert hidden.status_code == 404, hidden.text
        assert "alice" not in hidden.text
