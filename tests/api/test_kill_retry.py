"""The kill test (issue 9): credits and bets under load, SIGKILL, restart, retry everything.

A real ``oddstream serve`` process takes concurrent credits, cash bets and wallet bets,
each with a request id. It is killed with SIGKILL in the middle of the load, restarted on
the same store, and every request sent so far (acknowledged or not) is sent again with the
same id and body. Then, from the log itself: every acknowledged request is stored exactly
once, no request is stored twice, every retry of an acknowledged one answered
``repeated`` with its original position, and the wallets' balances are exactly what the
stored requests add up to. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from oddstream.eventstore import open_store

from .conftest import ADMIN_KEY, CUSTOMER_KEYS, free_port

pytestmark = pytest.mark.slow

WALLETS = ("alice", "bob")
ROUNDS = 2
#: a round is killed once this many requests were acknowledged (or after LOAD_LIMIT s):
#: by count, not by time, so that a busy machine still kills under enough load
KILL_AFTER_ACKS = 400
LOAD_LIMIT = 20.0


@dataclass
class Sent:
    """One request of the load: what was sent, and its answer if one came."""

    path: str
    body: dict
    headers: dict[str, str]
    sent: bool = False
    status: int | None = None
    answer: dict | None = None
    error: str | None = None  # the refusal's code, when one came


class Server:
    """``oddstream serve`` in a child process, killed and restarted on one store."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "oddstream.cli", "serve", "--port", str(port)),
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(timeout=1) as client:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"the server exited with {self.proc.returncode}")
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("the server did not become ready within 30 s")

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        async with asyncio.timeout(10):
            await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await self.proc.wait()
            except TimeoutError:
                await self.kill()


def _env(tmp_path: Path, store_url: str, pg_schema: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODDSTREAM_")}
    env.update(
        ODDSTREAM_STORE_URL=store_url,
        ODDSTREAM_ADMIN_KEY=ADMIN_KEY,
        ODDSTREAM_CUSTOMER_KEYS=",".join(f"{CUSTOMER_KEYS[w]}={w}" for w in WALLETS),
        ODDSTREAM_READ_MODEL_PATH=str(tmp_path / "read_models.db"),
        ODDSTREAM_READ_WAIT_SECONDS="5",
    )
    if pg_schema is not None:
        env["ODDSTREAM_PG_SCHEMA"] = pg_schema
    return env


def _requests(rng: random.Random, round_no: int, count: int) -> list[Sent]:
    """A mix: admin credits, cash bets and wallet bets, each with its own request id."""
    admin = {"X-API-Key": ADMIN_KEY}
    sent: list[Sent] = []
    for n in range(count):
        rid = f"k{round_no}-{n}"
        kind = rng.random()
        if kind < 0.5:
            wallet = rng.choice(WALLETS)
            body = {"amount_cents": rng.randint(1, 5_000), "request_id": rid}
            sent.append(Sent(f"/wallet/{wallet}/credit", body, admin))
        elif kind < 0.75:
            body = {"selection": [rng.randint(1, 4)], "stake_cents": 200, "request_id": rid}
            sent.append(Sent("/races/kr/bets", body, {}))
        else:
            wallet = rng.choice(WALLETS)
            body = {"selection": [rng.randint(1, 4)], "stake_cents": 100, "request_id": rid}
            sent.append(Sent("/races/kr/bets", body, {"X-API-Key": CUSTOMER_KEYS[wallet]}))
    return sent


async def _send(client: httpx.AsyncClient, url: str, item: Sent) -> None:
    item.sent = True
    try:
        r = await client.post(url + item.path, json=item.body, headers=item.headers)
    except httpx.HTTPError:
        return  # no answer: the outcome is unknown, the retry will tell
    item.status = r.status_code
    if r.status_code in (200, 201):
        item.answer = r.json()
    elif r.headers.get("content-type", "").startswith("application/json"):
        item.error = r.json().get("error")


async def _load_then_kill(server: Server, items: list[Sent]) -> None:
    queue: asyncio.Queue[Sent] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            await _send(client, server.url, queue.get_nowait())

    async with httpx.AsyncClient(timeout=5) as client:
        workers = [asyncio.create_task(worker(client)) for _ in range(16)]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LOAD_LIMIT
        while sum(i.answer is not None for i in items) < KILL_AFTER_ACKS:
            if loop.time() > deadline or queue.empty():
                break
            await asyncio.sleep(0.02)
        await server.kill()
        await asyncio.gather(*workers)


async def _setup(server: Server) -> None:
    admin = {"X-API-Key": ADMIN_KEY}
    race = {
        "race_id": "kr",
        "meeting": "Kill",
        "venue": "Test",
        "post_time": "2026-11-29T15:00:00Z",
        "runners": [{"number": n, "name": f"R{n}"} for n in range(1, 5)],
        "pools": [{"pool": "WIN", "takeout_bps": 1500}],
        "request_id": "setup-race",
    }
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for path, body in (
            ("/races", race),
            ("/races/kr/open", {"request_id": "setup-open"}),
            *(
                (f"/wallet/{w}/credit", {"amount": 1000, "request_id": f"float-{w}"})
                for w in WALLETS
            ),
        ):
            r = await client.post(path, json=body, headers=admin)
            assert r.status_code in (200, 201), r.text


@pytest.mark.parametrize("adapter", ["sqlite", "postgres"])
async def test_kill_under_load_then_retry_everything(
    adapter: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if adapter == "postgres":
        schema = request.getfixturevalue("pg_schema")
        store_url = request.getfixturevalue("pg_url")
    else:
        schema, store_url = None, f"sqlite:///{tmp_path}/kill.db"
    server = Server(_env(tmp_path, store_url, schema))
    rng = random.Random(9)
    everything: list[Sent] = []
    try:
        await server.start()
        await _setup(server)
        for round_no in range(ROUNDS):
            items = _requests(rng, round_no, 3_000)
            await _load_then_kill(server, items)
            await server.start()
            everything += [i for i in items if i.sent]
        # retry everything ever sent, with the same ids and bodies
        originals = {id(i): (i.status, i.answer) for i in everything}
        async with httpx.AsyncClient(timeout=10) as client:
            sem = asyncio.Semaphore(16)

            async def retry(item: Sent) -> None:
                async with sem:
                    await _send(client, server.url, item)
                    # a bet the restarted cashier is resolving right now (its stale
                    # reservation swept) answers 409 bet_in_progress: retry, as the
                    # docs tell a client to
                    for _ in range(100):
                        if (item.status, item.error) != (409, "bet_in_progress"):
                            break
                        await asyncio.sleep(0.05)
                        await _send(client, server.url, item)

            acked_before = [i for i in everything if originals[id(i)][1] is not None]
            for item in everything:
                item.status, item.answer = None, None
            await asyncio.gather(*(retry(i) for i in everything))
    finally:
        await server.stop()

    acked = 0
    for item in everything:
        answer = originals[id(item)][1]
        assert item.status in (200, 201), (item.path, item.body, item.status)
        assert item.answer is not None
        if answer is not None:
            acked += 1
            assert item.answer["repeated"] is True, (item.path, item.body)
            assert item.answer["position"] == answer["position"], (item.path, item.body)
    assert acked == len(acked_before) > 500  # enough load to mean something

    # the log: each request stored once (a command's events are consecutive in its
    # stream and share its request id); balances are what the stored requests add up to
    store = await open_store(store_url, **({"schema": schema} if schema else {}))
    try:
        stored: Counter[tuple[str, str]] = Counter()
        last_rid: dict[str, str | None] = {}
        credited = dict.fromkeys(WALLETS, 0)
        final: dict[str, tuple[int, int]] = {}
        placed_from: Counter[str] = Counter()
        async for recorded in store.scan_all():
            stream, rid = recorded.stream_id, recorded.metadata.get("request_id")
            if rid is not None and last_rid.get(stream) != rid:
                stored[stream, rid] += 1
            last_rid[stream] = rid
            data = recorded.data
            if stream.startswith("wallet-"):
                wallet = stream.removeprefix("wallet-")
                if recorded.type == "wallet.Credited":
                    credited[wallet] += data["amount_cents"]
                if "balance_cents" in data:
                    final[wallet] = (data["balance_cents"], data["in_play_cents"])
            elif recorded.type == "tote.BetPlaced" and data.get("wallet_id"):
                placed_from[data["wallet_id"]] += data["stake_cents"]
    finally:
        await store.close()
    twice = {k: n for k, n in stored.items() if n > 1}
    assert not twice, twice
    for item in everything:
        answer = originals[id(item)][1]
        if answer is None:
            continue
        rid, wallet = item.body["request_id"], item.path.split("/")[2]
        if item.path.endswith("/credit"):
            key = (f"wallet-{wallet}", f"client:admin:Credit:{rid}")
        elif "X-API-Key" in item.headers:
            owner = next(w for w, k in CUSTOMER_KEYS.items() if item.headers["X-API-Key"] == k)
            key = ("race-kr", f"wallet-bet:{owner}:{answer['bet_id']}")
        else:
            key = ("race-kr", f"client:anonymous:PlaceBet:{rid}")
        assert stored[key] == 1, key
    for wallet in WALLETS:
        balance, in_play = final[wallet]
        assert balance + in_play == credited[wallet], wallet  # no money made or lost
        assert in_play >= placed_from[wallet], wallet  # every placed bet is paid for
