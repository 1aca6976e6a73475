"""Balance reads per second from the wallet read models: 64 concurrent readers for 5 s.

    .venv/bin/python bench/wallet_reads.py [--seconds 5] [--readers 64]

The read models alone, without HTTP (bench/wallet.py measures the API). It fills an
SQLite event store with 1,000 wallets, follows it into each adapter, then runs the
readers on one event loop. Each reader yields to the loop after every read (as a request
handler would), so the Redis adapter's coalescing has company to coalesce with. Redis
keys use a unique prefix and are deleted afterwards. Results go to
bench/results/wallet_reads.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
import uuid
from pathlib import Path

import redis as sync_redis

from common import machine, write_results
from oddstream.domain.wallet import Credit
from oddstream.eventstore import EventStore, open_store
from oddstream.projections.wallet_models.redis import RedisWalletStorage
from oddstream.projections.wallet_models.sqlite import SqliteWalletStorage
from oddstream.projections.wallets import WalletProjection, WalletStorage
from oddstream.runtime.wallet_writer import WalletWriter

RESULTS = Path(__file__).resolve().parent / "results" / "wallet_reads.json"

WALLETS = 1000


async def readers(projection: WalletProjection, count: int, seconds: float) -> float:
    ids = [f"w{n}" for n in range(WALLETS)]
    done = 0
    deadline = time.perf_counter() + seconds

    async def one(seed: int) -> None:
        nonlocal done
        rng = random.Random(seed)
        choice = rng.choice
        while time.perf_counter() < deadline:
            balance = await projection.balance(choice(ids))
            assert balance is not None
            done += 1
            await asyncio.sleep(0)

    start = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(count)))
    return done / (time.perf_counter() - start)


async def single_read_us(projection: WalletProjection, n: int = 20000) -> float:
    start = time.perf_counter()
    for i in range(n):
        await projection.balance(f"w{i % WALLETS}")
    return (time.perf_counter() - start) / n * 1e6


async def measure(store: EventStore, storage: WalletStorage, args: argparse.Namespace) -> dict:
    projection = WalletProjection(store, storage)
    await projection.start()
    try:
        assert await projection.wait_for(await store.head_position(), 30)
        serial = await single_read_us(projection)
        rate = await readers(projection, args.readers, args.seconds)
        return {"reads_per_s": round(rate), "one_read_us": round(serial, 1)}
    finally:
        await projection.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--readers", type=int, default=64)
    parser.add_argument(
        "--redis", default=os.environ.get("ODDSTREAM_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_store(f"sqlite:///{Path(tmp) / 'events.db'}", synchronous="NORMAL")
        writer = WalletWriter(store)
        await asyncio.gather(
            *(
                writer.execute(Credit(wallet_id=f"w{n}", amount_cents=100 + n))
                for n in range(WALLETS)
            )
        )
        results = {"readers": args.readers, "seconds": args.seconds}
        results["sqlite"] = await measure(store, SqliteWalletStorage(Path(tmp) / "rm.db"), args)
        prefix = f"oddstream-bench:{uuid.uuid4().hex[:8]}:"
        try:
            results["redis"] = await measure(
                store, RedisWalletStorage(args.redis, prefix=prefix), args
            )
        finally:
            client = sync_redis.Redis.from_url(args.redis)
            keys = list(client.scan_iter(match=prefix + "*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()
        await store.close()
    print(json.dumps(results, indent=2))
    write_results(RESULTS, {"benchmark": "wallet_reads", "machine": machine(), **results})


if __name__ == "__main__":
    asyncio.run(main())
