"""Read models that follow part of the log, on every adapter: under concurrent writers
none moves its position past an event it has not applied, and each moves over the
events it leaves out (so read-your-writes and readiness do not stall on them)."""

from __future__ import annotations

import asyncio
import random
import time

from oddstream.domain.tote.events import PoolConfig, Runner
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.race import OpenBetting, ScheduleRace
from oddstream.domain.wallet import Credit
from oddstream.eventstore import EventStore, NewEvent, ReadPage, RecordedEvent
from oddstream.eventstore.sqlite import SqliteEventStore
from oddstream.projections.tote_view import ToteView
from oddstream.projections.wallet_models.sqlite import SqliteWalletStorage
from oddstream.projections.wallets import WalletProjection
from oddstream.runtime.race_writer import RaceWriter
from oddstream.runtime.wallet_writer import WalletWriter, wallet_stream

CLIENTS = 32
CREDITS = 40
WALLETS = ("alice", "bob")


def _busy_server(store: EventStore) -> None:
    """Make ``store`` (SQLite with commits on their own thread) behave as on a busy
    server: reads queue for the reader threads, and the loop is slow to take a commit's
    rows into the in-memory tail once they are visible in the database. Both widen the
    window between the two in which a follower used to skip events."""
    if not isinstance(store, SqliteEventStore) or store._committer_thread is None:
        return
    commit, head = store._commit_group_db, store._head

    def slow_to_report(group):  # type: ignore[no-untyped-def]
        result = commit(group)
        time.sleep(0.003)
        return result

    async def queued_head() -> int:
        await asyncio.sleep(0.002)
        return await head()

    store._commit_group_db = slow_to_report  # type: ignore[method-assign]
    store._head = queued_head  # type: ignore[method-assign]


async def _client(writer: WalletWriter, store: EventStore, n: int) -> None:
    rng = random.Random(n)
    for k in range(CREDITS):
        wallet = WALLETS[(n + k) % len(WALLETS)]
        await writer.execute(Credit(wallet_id=wallet, amount_cents=rng.randint(1, 999)))
        if rng.random() < 0.2:  # another stream's commit in between
            await store.append(f"other-{n}", [NewEvent("Other", {"n": n, "k": k})])


async def test_wallet_read_model_loses_no_row_under_concurrent_writers(
    store_factory, tmp_path
) -> None:
    """Issue 9 item 3: rows went missing when the read model took the end of its page
    from the head (which already saw a commit) while the page itself came from the
    in-memory tail (which did not yet hold it)."""
    store = await store_factory()
    _busy_server(store)
    projection = WalletProjection(store, SqliteWalletStorage(tmp_path / "read_models.db"), gather=0)
    await projection.start()
    try:
        writer = WalletWriter(store)
        async with asyncio.timeout(60):
            await asyncio.gather(*(_client(writer, store, n) for n in range(CLIENTS)))
            head = await store.head_position()
            assert await projection.wait_for(head, 10)
        credited = 0
        for wallet in WALLETS:
            logged = await store.read_stream(wallet_stream(wallet))
            shown = await projection.transactions(wallet, limit=10_000)
            assert sorted(t.position for t in shown) == [e.position for e in logged]
            credited += sum(e.type.endswith("Credited") for e in logged)
        assert credited == CLIENTS * CREDITS
    finally:
        await projection.stop()
        await store.close()


async def test_read_models_move_over_events_they_leave_out(store_factory, tmp_path) -> None:
    """Issue 9 item 6: a read after a write the read model does not concern itself with
    must not wait for a later event of its own kind."""
    store = await store_factory()
    view = ToteView(store)
    wallets = WalletProjection(store, SqliteWalletStorage(tmp_path / "read_models.db"))
    await view.start()
    await wallets.start()
    try:
        races = RaceWriter(store)
        await races.execute(
            ScheduleRace(
                race_id="r1",
                meeting="Flemington",
                venue="Flemington",
                post_time="2026-11-21T15:00:00+11:00",
                runners=tuple(Runner(n, f"Runner {n}") for n in range(1, 5)),
                pools=(PoolConfig(pool=PoolType.WIN, takeout_bps=1500, profile="us"),),
            )
        )
        await races.execute(OpenBetting("r1"))
        assert await view.wait_for(await store.head_position(), 5)

        credited = await WalletWriter(store).execute(Credit(wallet_id="alice", amount_cents=1))
        assert await view.wait_for(credited.last_position, 2)  # no race event after it
        assert view.position == credited.last_position

        other = await store.append("other-1", [NewEvent("Other", {}) for _ in range(50)])
        assert await view.wait_for(other.last_position, 2)
        assert await wallets.wait_for(other.last_position, 2)
        assert (view.position, wallets.position) == (other.last_position,) * 2
    finally:
        await view.stop()
        await wallets.stop()
        await store.close()


def _wanted(event: RecordedEvent, prefix: str | None, types: frozenset[str] | None) -> bool:
    return (prefix is None or event.stream_id.startswith(prefix)) and (
        types is None or event.type in types
    )


async def test_filtered_pages_hold_every_event_up_to_their_position(store_factory) -> None:
    """The port's promise under concurrent writers: a page holds every matching event
    between the previous page's position and its own, whether polled (``read_page``)
    or subscribed (``subscribe_pages``), on every adapter."""
    store = await store_factory()
    _busy_server(store)
    pages: dict[str, list[tuple[int, ReadPage]]] = {"polled": [], "subscribed": []}
    prefix, types = "wallet-", frozenset({"Credited", "End"})

    def done(page: ReadPage) -> bool:
        return any(e.type == "End" for e in page.events)

    async def poll() -> None:
        position = 0
        while True:
            page = await store.read_page(position, 500, stream_prefix=prefix)
            pages["polled"].append((position, page))
            if done(page):
                return
            position = page.position
            await store.wait_for_position(position + 1, 1.0)

    async def subscribe() -> None:
        position = 0
        async for page in store.subscribe_pages(types=types, batch_size=7):
            pages["subscribed"].append((position, page))
            if done(page):
                return
            position = page.position

    async def write(n: int) -> None:
        rng = random.Random(n)
        for k in range(60):
            stream = rng.choice([f"wallet-{n % 3}", f"other-{n}", f"wallet-x{n}"])
            kind = rng.choice(["Credited", "Debited"])
            await store.append(stream, [NewEvent(kind, {"n": n, "k": k})] * rng.randint(1, 3))

    followers = [asyncio.create_task(poll()), asyncio.create_task(subscribe())]
    try:
        async with asyncio.timeout(60):
            await asyncio.gather(*(write(n) for n in range(CLIENTS)))
            await store.append("wallet-end", [NewEvent("End", {})])
            await asyncio.gather(*followers)
        log = await store.read_all(0, 100_000)
        for name, flt in [("polled", (prefix, None)), ("subscribed", (None, types))]:
            previous = 0
            for after, page in pages[name]:
                assert after == previous, name
                assert page.position >= after
                got = [e.position for e in page.events]
                assert got == [
                    e.position
                    for e in log
                    if after < e.position <= page.position and _wanted(e, *flt)
                ], name
                previous = page.position
            assert previous == log[-1].position, name
    finally:
        for task in followers:
            task.cancel()
        await store.close()
