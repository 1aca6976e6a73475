"""Statement pages filtered by book, from each wallet read model: µs a page.

    .venv/bin/python bench/wallet_statements.py [--lines 1000 20000] [--seconds 1]

One wallet of N lines written straight into each adapter (no log): half of them a
race's bets (``race-R1``), three a market's at the very start (``market-M1``), the rest
credits. For each adapter it times pages of 50 lines, one after another for
``--seconds``: the whole statement, the race's lines (dense), the market's (sparse: the
Redis model passes over every line to find them). Redis keys use a unique prefix and are
deleted afterwards. Results go to bench/results/wallet_statements.json.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis as sync_redis

from common import machine, write_results
from oddstream.projections.wallet_models.base import TxRow, WalletStorage
from oddstream.projections.wallet_models.redis import RedisWalletStorage
from oddstream.projections.wallet_models.sqlite import SqliteWalletStorage

REDIS_URL = "redis://127.0.0.1:6379/0"
RESULTS = Path(__file__).resolve().parent / "results" / "wallet_statements.json"
BOOKS = (None, "race-R1", "market-M1")


def lines(n: int) -> list[TxRow]:
    out = []
    for v in range(1, n + 1):
        book = "market-M1" if v <= 3 else ("race-R1" if v % 2 else None)
        out.append(
            TxRow(
                "w",
                v,
                v,
                "StakeReserved" if book else "Credited",
                1,
                1,
                0,
                "b" if book else None,
                "R1" if book == "race-R1" else None,
                None,
                None,
                "2026-01-01T00:00:00.000000+00:00",
                None,
                book,
                "M1" if book == "market-M1" else None,
            )
        )
    return out


async def run(storage: WalletStorage, n: int, seconds: float) -> dict[str, float]:
    await storage.open()
    await storage.reset()
    rows = lines(n)
    for start in range(0, n, 2000):
        batch = rows[start : start + 2000]
        await storage.apply(batch, start, start + len(batch))
    timings: dict[str, float] = {}
    for book in BOOKS:
        pages = 0
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            await storage.transactions("w", 50, None, book)
            pages += 1
        timings[book or "all"] = round((time.perf_counter() - began) / pages * 1e6, 1)
    await storage.reset()
    await storage.close()
    return timings


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1000, 20000])
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.lines:
            sqlite = await run(SqliteWalletStorage(Path(tmp) / f"rm-{n}.db"), n, args.seconds)
            prefix = f"oddstream-bench:{uuid.uuid4().hex[:12]}:"
            try:
                redis = await run(RedisWalletStorage(REDIS_URL, prefix=prefix), n, args.seconds)
            finally:
                client = sync_redis.Redis.from_url(REDIS_URL)
                keys = list(client.scan_iter(match=prefix.replace("*", r"\*") + "*"))
                if keys:
                    client.delete(*keys)
                client.close()
            results[str(n)] = {"sqlite_us_per_page": sqlite, "redis_us_per_page": redis}
            print(f"{n} lines: sqlite {sqlite}  redis {redis}")
    write_results(RESULTS, {"machine": machine(), "page": 50, "results": results})


if __name__ == "__main__":
    asyncio.run(main())
