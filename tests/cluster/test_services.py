"""Services mode end to end: two workers and two API processes on PostgreSQL, NATS
and Redis. A bet taken by one API process is on the other's board and in its reads;
money through the tote is paid exactly once; every process answers for every race."""

from __future__ import annotations

import asyncio
import json

import httpx

from .conftest import ADMIN, Cluster, customer

RACE = {
    "meeting": "Flemington R7",
    "venue": "Flemington",
    "post_time": "2026-11-21T15:00:00+11:00",
    "runners": [{"number": n, "name": f"Runner {n}"} for n in range(1, 5)],
    "pools": [{"pool": "WIN", "takeout_bps": 1500, "profile": "us"}],
}


async def schedule(client: httpx.AsyncClient, race_id: str) -> None:
    r = await client.post("/races", json={**RACE, "race_id": race_id}, headers=ADMIN)
    assert r.status_code == 201, r.text
    r = await client.post(f"/races/{race_id}/open", headers=ADMIN)
    assert r.status_code == 200, r.text


async def test_two_apis_two_workers_one_log(cluster: Cluster) -> None:
    cluster.worker("w0")
    cluster.worker("w1")
    a, b = cluster.api(), cluster.api()
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=15) as ca,
        httpx.AsyncClient(base_url=b.url, timeout=15) as cb,
    ):
        races = [f"r{i}" for i in range(8)]  # spread over the partitions of both workers
        for race in races:
            await schedule(ca, race)
        # cash bets through A, read-your-writes on B
        last = 0
        for i, race in enumerate(races):
            r = await ca.post(
                f"/races/{race}/bets",
                json={"selection": [1 + i % 4], "stake_cents": 1000, "request_id": f"cash-{race}"},
            )
            assert r.status_code == 201, r.text
            last = max(last, r.json()["position"])
        for race in races:
            board = (await cb.get(f"/races/{race}/odds?min_position={last}")).json()
            win = next(p for p in board["board"]["pools"] if p["pool"] == "WIN")
            assert win["gross_cents"] == 1000
        # the same request id on the other API process: the original answer, nothing new
        again = await cb.post(
            "/races/r0/bets",
            json={"selection": [1], "stake_cents": 1000, "request_id": "cash-r0"},
        )
        assert again.status_code == 201
        assert again.json()["repeated"] is True

        # money: credit on A, read on B (Redis), bet from the wallet on B, paid once
        r = await ca.post("/wallet/alice/credit", json={"amount_cents": 10_000}, headers=ADMIN)
        assert r.status_code == 200, r.text
        credited = r.json()["position"]
        r = await cb.get(
            f"/wallet/alice/balance?min_position={credited}", headers=customer("alice")
        )
        assert r.status_code == 200, r.text
        assert r.json()["balance_cents"] == 10_000
        bet = await cb.post(
            "/races/r3/bets",
            json={"selection": [2], "stake_cents": 4_000, "request_id": "alice-1"},
            headers=customer("alice"),
        )
        assert bet.status_code == 201, bet.text
        retry = await ca.post(
            "/races/r3/bets",
            json={"selection": [2], "stake_cents": 4_000, "request_id": "alice-1"},
            headers=customer("alice"),
        )
        assert retry.status_code == 201, retry.text
        assert retry.json()["repeated"] is True
        for step, body in [("close", None), ("result", {"placings": [[2], [1], [3]]})]:
            r = await ca.post(f"/races/r3/{step}", json=body, headers=ADMIN)
            assert r.status_code == 200, r.text
        r = await ca.post("/races/r3/dividends", headers=ADMIN)
        assert r.status_code == 200, r.text
        settled = await cb.get(
            f"/races/r3/bets/{bet.json()['bet_id']}?min_position={r.json()['position']}",
            headers=customer("alice"),
        )
        assert settled.status_code == 200, settled.text
        payout = settled.json()["payout_cents"]
        assert payout > 4_000  # alice's runner won: she holds all of the winning pool
        expected = 10_000 - 4_000 + payout
        for _ in range(100):
            r = await ca.get("/wallet/alice/balance", headers=customer("alice"))
            if r.json()["balance_cents"] == expected:
                break
            await asyncio.sleep(0.1)
        assert r.json()["balance_cents"] == expected, r.text
        assert r.json()["in_play_cents"] == 0
        tx = (await cb.get("/wallet/alice/transactions", headers=customer("alice"))).json()
        kinds = [t["type"] for t in tx["transactions"]]
        assert kinds.count("WinningsCredited") == 1
        assert kinds.count("StakeReserved") == 1


async def test_a_bet_on_one_api_is_streamed_by_the_other(cluster: Cluster) -> None:
    cluster.worker("w0")
    a, b = cluster.api(), cluster.api()
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=15) as ca,
        httpx.AsyncClient(base_url=b.url, timeout=15) as cb,
    ):
        await schedule(ca, "live")
        async with cb.stream("GET", "/races/live/odds/stream") as stream:
            lines = stream.aiter_lines()

            async def next_board() -> dict[str, object]:
                data = None
                async for line in lines:
                    if line.startswith("data: "):
                        data = json.loads(line.removeprefix("data: "))
                    elif line == "" and data is not None:
                        return data
                raise AssertionError("the stream ended")

            first = await asyncio.wait_for(next_board(), 10)
            r = await ca.post("/races/live/bets", json={"selection": [3], "stake_cents": 700})
            assert r.status_code == 201
            board = await asyncio.wait_for(next_board(), 10)
            while board["position"] < r.json()["position"]:
                board = await asyncio.wait_for(next_board(), 10)
            assert board["position"] > first["position"]
            win = next(p for p in board["board"]["pools"] if p["pool"] == "WIN")
            assert win["gross_cents"] == 700


async def test_readiness_says_whether_commands_can_be_taken(cluster: Cluster) -> None:
    """An API process is ready only while a worker owns every partition and its bus is
    connected; /healthz says how many workers and owners there are."""
    worker = cluster.worker("w0")
    api = cluster.api()
    async with httpx.AsyncClient(base_url=api.url, timeout=15) as client:
        health = (await client.get("/healthz")).json()["services"]
        assert health["bus"] == "connected"
        assert health["workers"] == 1
        assert health["partitions_owned"] == health["partitions"] == 16
        cluster.kill(worker)
        for _ in range(100):
            ready = await client.get("/readyz")
            if ready.status_code == 503:
                break
            await asyncio.sleep(0.1)
        assert ready.status_code == 503
        assert ready.headers["retry-after"] == "1"
        assert "no worker is running" in ready.json()["reason"]
        # a command meanwhile: a clear 503 once its deadline passes, not a 500
        r = await client.post("/races", json={**RACE, "race_id": "x"}, headers=ADMIN)
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "1"
        assert r.json()["error"] == "store_unavailable"
        # a market's command too (routed the same way), in the odds service's shape
        new = {
            "RequestID": "m-x",
            "Provider": "acme",
            "Command": "NewOdds",
            "Payload": {"GameID": "g1", "MoneyLine": {"Home": 2.5, "Away": 1.6}},
        }
        r = await client.post("/odds", json=new, headers=ADMIN)
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "1"
        assert (r.json()["Status"], r.json()["error"]) == ("fail", "store_unavailable")
        assert r.json()["outcome_unknown"] is False  # no owner answered: nothing was done
        cluster.worker("w1")
        cluster.wait_ready(api, timeout=30)
        r = await client.post("/races", json={**RACE, "race_id": "x"}, headers=ADMIN)
        assert r.status_code == 201, r.text
        r = await client.post("/odds", json=new, headers=ADMIN)
        assert r.status_code == 201, r.text
        assert r.json()["Repeated"] is False


async def test_a_wallet_read_waits_for_no_wallet_event_that_is_not_there(
    cluster: Cluster,
) -> None:
    """``min_position`` from a race's answer (a cash bet, the dividends) on a wallet
    read: the read model includes every wallet event up to it once it has passed the
    wallet events before it — as the embedded one answers at once. Its checkpoint in
    Redis only moves with wallet events, so without them the read waited out
    ``ODDSTREAM_READ_WAIT_SECONDS`` and answered 409 ``position_not_reached``."""
    cluster.worker("w0")
    api = cluster.api()
    async with httpx.AsyncClient(base_url=api.url, timeout=15) as client:
        r = await client.post("/wallet/alice/credit", json={"amount_cents": 500}, headers=ADMIN)
        assert r.status_code == 200, r.text
        await schedule(client, "quiet")
        bet = await client.post("/races/quiet/bets", json={"selection": [1], "stake_cents": 200})
        assert bet.status_code == 201, bet.text
        later = bet.json()["position"]
        started = asyncio.get_running_loop().time()
        r = await client.get(
            f"/wallet/alice/balance?min_position={later}", headers=customer("alice")
        )
        waited = asyncio.get_running_loop().time() - started
        assert r.status_code == 200, r.text
        assert r.json()["balance_cents"] == 500
        assert waited < 2.0  # not the read wait (5 s here)
        r = await client.get(
            f"/wallet/alice/transactions?min_position={later}", headers=customer("alice")
        )
        assert r.status_code == 200, r.text


async def test_a_bet_on_a_market_through_one_api_is_paid_once(cluster: Cluster) -> None:
    """Fixed-odds markets in services mode: the provider's commands go to the market's
    owner from either API process; a bet through API process A is placed by the
    wallet's owner (which took the 501 of the embedded-only days), its retry through B
    answers ``repeated``; the result is paid into the wallet once, to the cent."""
    cluster.worker("w0")
    cluster.worker("w1")
    a, b = cluster.api(), cluster.api()
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=15) as ca,
        httpx.AsyncClient(base_url=b.url, timeout=15) as cb,
    ):
        new = {
            "RequestID": "m-1",
            "Provider": "acme",
            "Command": "NewOdds",
            "Payload": {"GameID": "football:g1", "MoneyLine": {"Home": 2.5, "Away": 1.6}},
        }
        created = await ca.post("/odds", json=new, headers=ADMIN)
        assert created.status_code == 201, created.text
        market = created.json()["ExternalID"]
        again = await cb.post("/odds", json=new, headers=ADMIN)
        assert again.status_code == 201, again.text
        assert again.json()["Repeated"] is True
        assert again.json()["Position"] == created.json()["Position"]

        r = await ca.post("/wallet/alice/credit", json={"amount_cents": 10_000}, headers=ADMIN)
        assert r.status_code == 200, r.text
        body = {"outcome": "home", "stake_cents": 1_001, "price": 2.5, "request_id": "bet-1"}
        bet = await ca.post(f"/odds/{market}/bets", json=body, headers=customer("alice"))
        assert bet.status_code == 201, bet.text
        assert (bet.json()["price"]["num"], bet.json()["price"]["den"]) == (5, 2)
        retry = await cb.post(f"/odds/{market}/bets", json=body, headers=customer("alice"))
        assert retry.status_code == 201, retry.text
        assert retry.json()["repeated"] is True
        assert retry.json()["bet_id"] == bet.json()["bet_id"]
        r = await cb.get(
            f"/wallet/alice/balance?min_position={bet.json()['position']}",
            headers=customer("alice"),
        )
        assert (r.json()["balance_cents"], r.json()["in_play_cents"]) == (8_999, 1_001)

        for n, (step, payload) in enumerate([("close", None), ("result", {"Winners": ["home"]})]):
            command = {
                "RequestID": f"{step}-{n}",
                "Provider": "acme",
                "Command": f"{step.capitalize()}Odds",
                **({"Payload": payload} if payload else {}),
            }
            r = await cb.post(f"/odds/{market}/{step}", json=command, headers=ADMIN)
            assert r.status_code == 200, r.text
        expected = (10_000 - 1_001 + 2_502, 0)  # ⌊1001 × 2.5⌋ = 2502, stake included
        for _ in range(150):
            r = await ca.get("/wallet/alice/balance", headers=customer("alice"))
            if (r.json()["balance_cents"], r.json()["in_play_cents"]) == expected:
                break
            await asyncio.sleep(0.1)
        assert (r.json()["balance_cents"], r.json()["in_play_cents"]) == expected, r.text
        await asyncio.sleep(0.5)  # nothing is paid twice meanwhile
        tx = (await cb.get("/wallet/alice/transactions", headers=customer("alice"))).json()
        kinds = [t["type"] for t in tx["transactions"]]
        assert kinds.count("WinningsCredited") == 1
        assert kinds.count("StakeReserved") == 1
        r = await ca.get("/wallet/alice/balance", headers=customer("alice"))
        assert (r.json()["balance_cents"], r.json()["in_play_cents"]) == expected
