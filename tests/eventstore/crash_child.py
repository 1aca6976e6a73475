"""Child process for the crash test: appends batches and reports each acknowledged one.

Usage: python crash_child.py sqlite PATH ROUND | postgres URL SCHEMA ROUND
Prints ``ready`` once open, then one line ``<batch> <first_position> <count>`` per
acknowledged append, flushed, until it is killed.
"""

from __future__ import annotations

import asyncio
import random
import sys

from oddstream.eventstore import NewEvent
from oddstream.eventstore.postgres import PostgresEventStore
from oddstream.eventstore.sqlite import SqliteEventStore


async def main(argv: list[str]) -> None:
    backend, target = argv[0], argv[1]
    if backend == "sqlite":
        store = await SqliteEventStore.open(target)
        round_id = argv[2]
    else:
        store = await PostgresEventStore.open(target, schema=argv[2])
        round_id = argv[3]
    rng = random.Random(round_id)
    print("ready", flush=True)

    async def client(c: int) -> None:
        k = 0
        while True:
            k += 1
            batch = f"{round_id}-{c}-{k}"
            n = rng.randint(1, 20)
            events = [
                NewEvent("Crashy", {"batch": batch, "i": i, "n": n}, {"round": round_id})
                for i in range(n)
            ]
            result = await store.append(f"crash-{rng.randrange(5)}", events)
            sys.stdout.write(f"{batch} {result.first_position} {n}\n")
            sys.stdout.flush()

    await asyncio.gather(*(client(c) for c in range(4)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
