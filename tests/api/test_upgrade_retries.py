"""Retries sent across the upgrade to scoped request ids and owner-scoped bet ids
(re-review of issue 9): a request the previous version answered must be recognised, not
executed again. The previous version's events are written here as it wrote them: the
client's id in the metadata in its old form, with no fingerprint."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from oddstream.domain.tote.race import OpenBetting
from oddstream.domain.wallet import CaptureStake, Credit, ReserveStake
from oddstream.eventstore import open_store
from oddstream.runtime.race_writer import RaceWriter
from oddstream.runtime.wallet_writer import WalletWriter
from runtime.wallet_helpers import bet, schedule  # tests/ is on the path (no package)

from .conftest import LiveServer, live_settings, run_server

#: the namespace the previous version derived bet ids in
_OLD_BETS = uuid.UUID("6f1f2f7e-4f3a-4a53-9a55-0d7c1b9e3a10")


def _old(request_id: str) -> dict[str, str]:
    return {"request_id": request_id}


async def _written_by_the_previous_version(url: str) -> dict[str, str]:
    """A race, a credit, a cash bet and two wallet bets as the previous version stored
    them; the ids it answered."""
    store = await open_store(url)
    races, wallets = RaceWriter(store), WalletWriter(store)
    try:
        await races.execute(schedule("r1"))
        await races.execute(OpenBetting("r1"))
        await wallets.execute(Credit(wallet_id="alice", amount_cents=5_000), metadata=_old("dep-1"))
        # an id this version's runtime used (stored with a fingerprint, as it does now)
        await wallets.execute(Credit(wallet_id="bob", amount_cents=100), request_id="internal-1")
        cash_id = uuid.uuid5(_OLD_BETS, "r1/cb-1").hex
        await races.execute(bet("r1", cash_id, 1, 300, None), metadata=_old("client:cb-1"))
        derived = uuid.uuid5(_OLD_BETS, "r1/alice/wb-1").hex
        for bet_id, stake in (("up1", 500), (derived, 700)):  # the cashier's three steps
            await wallets.execute(
                ReserveStake(wallet_id="alice", bet_id=bet_id, book="race-r1", amount_cents=stake)
            )
            await races.execute(
                bet("r1", bet_id, 2, stake, "alice"), metadata=_old(f"wallet-bet:alice:{bet_id}")
            )
            await wallets.execute(CaptureStake(wallet_id="alice", bet_id=bet_id, book="race-r1"))
    finally:
        await store.close()
    return {"cash": cash_id, "derived": derived}


@pytest.fixture
def upgraded(tmp_path: Path) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    import asyncio

    settings = live_settings(tmp_path)
    ids = asyncio.run(_written_by_the_previous_version(settings.store_url))
    for server in run_server(settings):
        yield server, ids


def test_retries_of_requests_the_previous_version_answered(
    upgraded: tuple[LiveServer, dict[str, str]],
) -> None:
    server, ids = upgraded
    alice = server.customer("alice")
    with httpx.Client(base_url=server.url, timeout=10) as c:
        credit = c.post(
            "/wallet/alice/credit",
            json={"amount_cents": 5_000, "request_id": "dep-1"},
            headers=server.admin,
        )
        assert credit.json()["repeated"] is True, credit.text
        cash = c.post(
            "/races/r1/bets", json={"selection": [1], "stake_cents": 300, "request_id": "cb-1"}
        )
        assert (cash.json()["repeated"], cash.json()["bet_id"]) == (True, ids["cash"]), cash.text
        for body, bet_id in (
            ({"selection": [2], "stake_cents": 500, "bet_id": "up1"}, "up1"),
            ({"selection": [2], "stake_cents": 700, "request_id": "wb-1"}, ids["derived"]),
        ):
            placed = c.post("/races/r1/bets", json=body, headers=alice)
            assert placed.status_code == 201, placed.text
            assert (placed.json()["repeated"], placed.json()["bet_id"]) == (True, bet_id)
        at = f"?min_position={placed.json()['position']}"
        balance = c.get(f"/wallet/alice/balance{at}", headers=alice).json()
        assert (balance["balance_cents"], balance["in_play_cents"]) == (3_800, 1_200), balance
        race = c.get(f"/races/r1{at}").json()
        assert sum(p["gross_cents"] for p in race["pools"]) == 300 + 500 + 700


def test_a_legacy_id_written_by_this_version_is_not_a_legacy_answer(
    upgraded: tuple[LiveServer, dict[str, str]],
) -> None:
    """Old ids are looked up among events stored without a fingerprint only: a client's
    request id that reads like an id the runtime uses now is a request of its own."""
    server, _ = upgraded
    with httpx.Client(base_url=server.url, timeout=10) as c:
        credit = c.post(
            "/wallet/bob/credit",
            json={"amount_cents": 100, "request_id": "internal-1"},
            headers=server.admin,
        )
        assert credit.json()["repeated"] is False, credit.text
        assert credit.json()["balance_cents"] == 200
