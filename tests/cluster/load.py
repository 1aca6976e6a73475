"""A load of bets for fault tests: every request recorded with its request id, its
answer and when it was sent and answered."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass

import httpx


@dataclass
class Sent:
    request_id: str
    race: str
    wallet: str | None
    started: float
    ended: float
    status: int | str  # the HTTP status, or the kind of failure
    body: dict[str, object]
    retry_after: str | None = None


async def bettors(
    urls: list[str],
    races: list[str],
    stop: asyncio.Event,
    *,
    tasks: int = 8,
    headers_of: dict[str, dict[str, str]] | None = None,
    pause: float = 0.01,
    timeout: float = 20.0,
) -> list[Sent]:
    """Bet until ``stop``, from ``tasks`` concurrent bettors (cash, or from the wallets
    ``headers_of`` maps to their keys), over every URL and race in turn."""
    sent: list[Sent] = []
    wallets = list(headers_of or {})

    async def one(task: int) -> None:
        turns = itertools.count()
        async with httpx.AsyncClient(timeout=timeout) as client:
            while not stop.is_set():
                n = next(turns)
                url = urls[(task + n) % len(urls)]
                race = races[(task * 7 + n) % len(races)]
                wallet = wallets[task % len(wallets)] if wallets and task % 2 else None
                rid = f"b{task}-{n}"
                headers = (headers_of or {}).get(wallet, {}) if wallet else {}
                started = time.monotonic()
                body = {"selection": [1 + n % 4], "stake_cents": 100, "request_id": rid}
                try:
                    r = await client.post(f"{url}/races/{race}/bets", json=body, headers=headers)
                    status: int | str = r.status_code
                    answer = r.json() if r.content else {}
                    retry_after = r.headers.get("retry-after")
                except httpx.HTTPError as exc:
                    status, answer, retry_after = type(exc).__name__, {}, None
                sent.append(
                    Sent(rid, race, wallet, started, time.monotonic(), status, answer, retry_after)
                )
                await asyncio.sleep(pause)

    await asyncio.gather(*(one(t) for t in range(tasks)))
    return sent


async def retry(url: str, sent: Sent, headers: dict[str, str]) -> httpx.Response:
    """Send ``sent``'s bet again, with its request id, and the same body."""
    n = int(sent.request_id.split("-")[1])
    body = {"selection": [1 + n % 4], "stake_cents": 100, "request_id": sent.request_id}
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(f"{url}/races/{sent.race}/bets", json=body, headers=headers)
