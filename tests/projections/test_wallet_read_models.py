"""The wallet read models (SQLite and Redis) against what the wallet writer wrote: content,
paging, restart from the checkpoint, crashes between batches, a wiped or replaced store
detected and rebuilt while running, reads during a rebuild, rebuild == incremental."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
import redis as sync_redis

from oddstream.config import Settings
from oddstream.domain.wallet import (
    CaptureStake,
    Credit,
    Debit,
    ReleaseStake,
    ReserveStake,
    SettleStake,
    WalletRejection,
    book_market,
    book_race,
)
from oddstream.eventstore import CheckpointConflict, EventStore, NewEvent, open_store
from oddstream.projections.wallet_models.base import TxRow
from oddstream.projections.wallet_models.redis import RedisWalletStorage
from oddstream.projections.wallet_models.sqlite import SqliteWalletStorage
from oddstream.projections.wallets import (
    ReadModelUnavailable,
    WalletBalance,
    WalletProjection,
    WalletReader,
    WalletStorage,
    WalletTransaction,
    default_read_model_path,
    open_wallet_read_model,
)
from oddstream.runtime.wallet_writer import WalletWriter, wallet_stream

REDIS_URL = os.environ.get("ODDSTREAM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


WALLETS = [f"w{n}" for n in range(1, 6)]


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
async def log_store(tmp_path) -> AsyncIterator[EventStore]:
    store = await open_store(f"sqlite:///{tmp_path / 'events.db'}")
    try:
        yield store
    finally:
        await store.close()


def _delete_prefix(url: str, prefix: str, *, keep: Callable[[bytes], bool] | None = None) -> int:
    """Delete this test's keys (never FLUSHALL: other tests share this Redis)."""
    client = sync_redis.Redis.from_url(url)
    try:
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in prefix)
        keys = [k for k in client.scan_iter(match=escaped + "*", count=1000)]
        keys = [k for k in keys if keep is None or not keep(k)]
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


class Backing:
    """Where one adapter's content lives, so several instances can share it."""

    def __init__(self, kind: str, tmp_path, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        if kind == "redis":
            self.url = request.getfixturevalue("redis_url")
            self.prefix = f"oddstream-test:{uuid.uuid4().hex[:12]}:"
        else:
            self.path = tmp_path / "read_models.db"

    def storage(self, cls: type | None = None) -> WalletStorage:
        if self.kind == "redis":
            return (cls or RedisWalletStorage)(self.url, prefix=self.prefix)
        return (cls or SqliteWalletStorage)(self.path)

    def wipe_behind_our_back(self) -> None:
        """What a FLUSHALL (or a restarted Redis without persistence) does to us."""
        if self.kind == "redis":
            assert _delete_prefix(self.url, self.prefix) > 0
        else:
            with sqlite3.connect(self.path) as db:
                db.execute("DELETE FROM wallet_transactions")
                db.execute("DELETE FROM wallet_balances")
                db.execute("DELETE FROM read_model_checkpoints")

    def set_checkpoint_behind_our_back(self, position: int) -> None:
        if self.kind == "redis":
            client = sync_redis.Redis.from_url(self.url)
            client.set(f"{self.prefix}wallets:checkpoint", position)
            client.close()
        else:
            with sqlite3.connect(self.path) as db:
                db.execute("UPDATE read_model_checkpoints SET position = ?", (position,))

    def cleanup(self) -> None:
        if self.kind == "redis":
            _delete_prefix(self.url, self.prefix)


@pytest.fixture(params=["sqlite", "redis"])
def backing(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Backing]:
    b = Backing(request.param, tmp_path, request)
    yield b
    b.cleanup()


# ----------------------------------------------------------------------------- helpers


async def run_script(
    writer: WalletWriter, store: EventStore, steps: int, seed: int = 7
) -> list[Any]:
    """A random mix of every wallet command over WALLETS, some concurrent, with other
    streams' events interleaved. Returns the outcomes."""
    rng = random.Random(seed)
    reserved: dict[str, list[str]] = {w: [] for w in WALLETS}
    captured: dict[str, list[str]] = {w: [] for w in WALLETS}
    opened: set[str] = set()
    outcomes: list[Any] = []
    n = 0
    while n < steps:
        commands = []
        for _ in range(rng.randint(1, 6)):
            n += 1
            w = rng.choice(WALLETS)
            op = rng.random()
            if w not in opened or op < 0.2:
                opened.add(w)
                commands.append(Credit(wallet_id=w, amount_cents=rng.randint(1, 5000)))
            elif op < 0.35:
                commands.append(
                    Debit(wallet_id=w, amount_cents=rng.randint(1, 4000), reference=f"r{n}")
                )
            elif op < 0.6:
                bet = f"b{n}"
                reserved[w].append(bet)
                commands.append(
                    ReserveStake(
                        wallet_id=w,
                        bet_id=bet,
                        book=book_of(bet),
                        amount_cents=rng.randint(1, 3000),
                    )
                )
            elif op < 0.75 and reserved[w]:
                bet = reserved[w].pop(0)
                if rng.random() < 0.7:
                    captured[w].append(bet)
                    commands.append(CaptureStake(wallet_id=w, bet_id=bet, book=book_of(bet)))
                else:
                    commands.append(
                        ReleaseStake(wallet_id=w, bet_id=bet, book=book_of(bet), reason="scratched")
                    )
            elif captured[w]:
                bet = captured[w].pop(0)
                kind = rng.choice(["win", "refund", "lose"])
                commands.append(
                    SettleStake(
                        wallet_id=w,
                        bet_id=bet,
                        book=book_of(bet),
                        payout_cents=rng.randint(1, 9000) if kind == "win" else 0,
                        refund_cents=rng.randint(1, 100) if kind == "refund" else 0,
                        reason=kind,
                    )
                )
            else:
                commands.append(Credit(wallet_id=w, amount_cents=rng.randint(1, 5000)))
        results = await asyncio.gather(
            *(writer.execute(c) for c in commands), return_exceptions=True
        )
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, WalletRejection):
                raise r
        outcomes += results
        if rng.random() < 0.3:  # other streams in between: skipped by the projection
            await store.append(f"race-{n}", [NewEvent("tote.Other", {"n": n})])
    return outcomes


def book_of(bet: str) -> str:
    """The book of bet ``b<n>`` in :func:`run_script`: races and markets alike."""
    return "market-M1" if int(bet[1:]) % 2 else "race-R1"


def expected_transactions(events: Sequence[Any]) -> list[WalletTransaction]:
    """Newest first, built from the stored events directly (not through the adapters)."""
    out = []
    for e in events:
        d = e.data
        out.append(
            WalletTransaction(
                version=e.version,
                position=e.position,
                type=e.type.removeprefix("wallet."),
                amount_cents=d.get("amount_cents"),
                balance_cents=d.get("balance_cents", 0),
                in_play_cents=d.get("in_play_cents", 0),
                bet_id=d.get("bet_id"),
                race_id=book_race(d["book"]) if "book" in d else None,
                reason=d.get("reason"),
                reference=d.get("reference"),
                recorded_at=e.recorded_at.isoformat(timespec="microseconds"),
                stake_cents=d.get("stake_cents"),
                book=d.get("book"),
                market_id=book_market(d["book"]) if "book" in d else None,
            )
        )
    return out[::-1]


async def check_matches_log(
    projection: WalletProjection, store: EventStore, writer: WalletWriter | None = None
) -> None:
    for w in WALLETS:
        events = await store.read_stream(wallet_stream(w))
        if not events:
            assert await projection.balance(w) is None
            continue
        last = events[-1]
        balance = await projection.balance(w)
        assert balance == WalletBalance(
            w,
            last.data.get("balance_cents", 0),
            last.data.get("in_play_cents", 0),
            last.version,
            last.position,
        )
        if writer is not None:
            state = await writer.state(w)
            assert (balance.balance_cents, balance.in_play_cents) == (state.balance, state.in_play)
        txs = await projection.transactions(w, limit=10_000)
        assert txs == expected_transactions(events)


async def eventually(condition: Callable[[], bool], step: float = 0.01) -> None:
    """Wait (at most 10 s) until ``condition()`` holds."""
    deadline = asyncio.get_running_loop().time() + 10
    for _ in iter(int, 1):
        if condition():
            return
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(step)


async def count_wallet_events(store: EventStore) -> int:
    return sum([len(await store.read_stream(wallet_stream(w))) for w in WALLETS])


async def dump(projection: WalletProjection) -> dict[str, Any]:
    return {
        w: (await projection.balance(w), await projection.transactions(w, limit=10_000))
        for w in WALLETS
    }


async def caught_up_to(projection: WalletProjection, store: EventStore) -> None:
    head = await store.head_position()
    assert await projection.wait_for(head, 10)
    assert await projection.wait_caught_up(10)


# ----------------------------------------------------------------------------- tests


async def test_follows_the_writer(log_store: EventStore, backing: Backing) -> None:
    writer = WalletWriter(log_store, snapshot_every=10)
    await run_script(writer, log_store, 60, seed=1)
    projection = WalletProjection(log_store, backing.storage(), batch_size=16)
    await projection.start()
    try:
        await caught_up_to(projection, log_store)
        await check_matches_log(projection, log_store, writer)
        outcomes = await run_script(writer, log_store, 120, seed=2)  # live
        last = max(o.last_position for o in outcomes if not isinstance(o, BaseException))
        assert await projection.wait_for(last, 10)
        await caught_up_to(projection, log_store)
        await check_matches_log(projection, log_store, writer)
        assert projection.position == await log_store.head_position()
        assert projection.caught_up
        assert not projection.rebuilding
        # snapshot streams exist and were ignored
        assert await log_store.read_stream("snapshot-wallet-w1")
        assert await projection.balance("nobody") is None
        assert await projection.transactions("nobody") == []
    finally:
        await projection.stop()


async def test_transaction_pages(log_store: EventStore, backing: Backing) -> None:
    writer = WalletWriter(log_store)
    for n in range(1, 24):
        await writer.execute(Credit(wallet_id="w1", amount_cents=n, reference=f"dep-{n}"))
    await writer.execute(Debit(wallet_id="w1", amount_cents=10**9))  # refused, recorded
    projection = WalletProjection(log_store, backing.storage())
    await projection.start()
    try:
        await caught_up_to(projection, log_store)
        everything = expected_transactions(await log_store.read_stream("wallet-w1"))
        assert len(everything) == 25  # WalletOpened, 23 credits, a rejection
        assert [t.version for t in everything] == list(range(25, 0, -1))
        assert everything[0].type == "DebitRejected"
        assert everything[0].reason == "insufficient_funds"
        assert everything[-1].type == "WalletOpened"
        assert everything[-1].amount_cents is None
        assert everything[-1].balance_cents == 0
        assert everything[1].reference == "dep-23"
        assert await projection.transactions("w1") == everything  # default limit 50
        assert await projection.transactions("w1", limit=5) == everything[:5]
        page: list[WalletTransaction] = []
        before = None
        while True:
            chunk = await projection.transactions("w1", limit=7, before_version=before)
            if not chunk:
                break
            page += chunk
            before = chunk[-1].version
        assert page == everything
        assert await projection.transactions("w1", limit=3, before_version=2) == everything[-1:]
        assert await projection.transactions("w1", before_version=1) == []
        assert everything[3].recorded_at.endswith("+00:00")
        for bad in ({"limit": 0}, {"limit": 10_001}, {"before_version": 0}):
            with pytest.raises(ValueError, match="must be"):
                await projection.transactions("w1", **bad)
    finally:
        await projection.stop()


class CountingStorage:
    """Records every batch an adapter is asked to write."""

    def __init__(self, inner: WalletStorage) -> None:
        self.inner = inner
        self.rows: list[TxRow] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def apply(self, rows: Sequence[TxRow], expected: int, new: int) -> None:
        await self.inner.apply(rows, expected, new)
        self.rows += rows


async def test_restart_continues_from_the_checkpoint(
    log_store: EventStore, backing: Backing
) -> None:
    writer = WalletWriter(log_store)
    await run_script(writer, log_store, 80, seed=3)
    first = CountingStorage(backing.storage())
    projection = WalletProjection(log_store, first, batch_size=10)  # type: ignore[arg-type]
    await projection.start()
    await caught_up_to(projection, log_store)
    checkpoint = projection.checkpoint
    await projection.stop()
    assert checkpoint == await log_store.head_position()

    await run_script(writer, log_store, 80, seed=4)  # while it is down
    second = CountingStorage(backing.storage())
    projection = WalletProjection(log_store, second, batch_size=10)  # type: ignore[arg-type]
    await projection.start()
    try:
        assert projection.checkpoint == checkpoint
        await caught_up_to(projection, log_store)
        await check_matches_log(projection, log_store, writer)
        # nothing applied twice: the second run wrote exactly the events after the first
        assert second.rows
        assert min(r.position for r in second.rows) > checkpoint
        applied = [(r.wallet_id, r.version) for r in first.rows + second.rows]
        assert len(applied) == len(set(applied))
        assert len(applied) == await count_wallet_events(log_store)
    finally:
        await projection.stop()


class FailingSqlite(SqliteWalletStorage):
    """Fails the Nth commit after writing its rows (the transaction must roll back)."""

    fail_at = 3
    calls = 0

    def _commit(self, db: sqlite3.Connection) -> None:
        type(self).calls += 1
        if type(self).calls == self.fail_at:
            raise RuntimeError("simulated failure before COMMIT")
        super()._commit(db)


async def test_failed_batch_is_retried_without_doubling(tmp_path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'events.db'}")
    try:
        writer = WalletWriter(store)
        await run_script(writer, store, 80, seed=5)
        storage = FailingSqlite(tmp_path / "rm.db")
        projection = WalletProjection(store, storage, batch_size=8, check_interval=0.05)
        await projection.start()
        try:
            await caught_up_to(projection, store)
            assert FailingSqlite.calls > FailingSqlite.fail_at
            await check_matches_log(projection, store, writer)
        finally:
            await projection.stop()
    finally:
        await store.close()


class StallingStorage:
    """Hangs in the Nth write before anything reaches the storage: the process 'dies'
    there (stop() cancels it), between two committed batches."""

    def __init__(self, inner: WalletStorage, stall_at: int) -> None:
        self.inner = inner
        self.stall_at = stall_at
        self.calls = 0
        self.stalled = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def apply(self, rows: Sequence[TxRow], expected: int, new: int) -> None:
        self.calls += 1
        if self.calls == self.stall_at:
            self.stalled.set()
            await asyncio.Event().wait()
        await self.inner.apply(rows, expected, new)


async def test_crash_between_batches_loses_nothing(log_store: EventStore, backing: Backing) -> None:
    writer = WalletWriter(log_store)
    await run_script(writer, log_store, 100, seed=6)
    stalling = StallingStorage(backing.storage(), stall_at=4)
    projection = WalletProjection(log_store, stalling, batch_size=9)  # type: ignore[arg-type]
    await projection.start()
    async with asyncio.timeout(10):
        await stalling.stalled.wait()
    reached = projection.checkpoint
    assert 0 < reached < await log_store.head_position()
    await projection.stop()  # the stuck batch never committed

    projection = WalletProjection(log_store, backing.storage(), batch_size=9)
    await projection.start()
    try:
        assert projection.checkpoint == reached
        await caught_up_to(projection, log_store)
        await check_matches_log(projection, log_store, writer)
    finally:
        await projection.stop()


@pytest.mark.parametrize("write_after", [False, True], ids=["idle", "busy"])
async def test_wiped_storage_is_detected_and_repopulated(
    log_store: EventStore, backing: Backing, write_after: bool
) -> None:
    writer = WalletWriter(log_store)
    await run_script(writer, log_store, 80, seed=8)
    projection = WalletProjection(log_store, backing.storage(), batch_size=10, check_interval=0.1)
    await projection.start()
    try:
        await caught_up_to(projection, log_store)
        before = await dump(projection)
        backing.wipe_behind_our_back()
        if write_after:  # detected by the next batch's checkpoint check
            await run_script(writer, log_store, 20, seed=9)
        await eventually(lambda: projection.recoveries > 0)
        await caught_up_to(projection, log_store)
        assert projection.recoveries == 1
        if not write_after:
            assert await dump(projection) == before
        await check_matches_log(projection, log_store, writer)
    finally:
        await projection.stop()


@pytest.mark.parametrize("where", ["behind", "past-the-head"])
async def test_checkpoint_mismatch_rebuilds(
    log_store: EventStore, backing: Backing, where: str
) -> None:
    """A checkpoint moved back, or past the log's head (no writer of this log put it
    there), is not followed on from: the model is rebuilt to the same content."""
    writer = WalletWriter(log_store)
    await run_script(writer, log_store, 60, seed=10)
    projection = WalletProjection(log_store, backing.storage(), batch_size=10, check_interval=0.1)
    await projection.start()
    try:
        await caught_up_to(projection, log_store)
        before = await dump(projection)
        head = await log_store.head_position()
        backing.set_checkpoint_behind_our_back(head - 5 if where == "behind" else head + 1000)
        await eventually(lambda: projection.recoveries > 0)
        assert projection.resumes == 0
        await caught_up_to(projection, log_store)
        assert projection.checkpoint == head
        assert await dump(projection) == before
    finally:
        await projection.stop()


async def test_a_checkpoint_past_the_head_at_start_rebuilds_not_fails(
    log_store: EventStore, backing: Backing, tmp_path
) -> None:
    """Review (issue 12): sinks' checkpoints past the log's head were made to FAIL the
    consumer at start, and the wallet read model shares that checkpoint class. A storage
    kept from another log (Redis kept over a log reset) holds a checkpoint past this
    log's head: the read model is rebuilt from this log, as docs/wallets.md says, not
    left FAILED (wallet reads dead) nor followed from there (every event up to it
    skipped)."""
    writer = WalletWriter(log_store)
    await run_script(writer, log_store, 60, seed=31)
    first = WalletProjection(log_store, backing.storage(), batch_size=10)
    await first.start()
    try:
        await caught_up_to(first, log_store)
    finally:
        await first.stop()
    other = await open_store(f"sqlite:///{tmp_path / 'another-log.db'}")
    try:
        other_writer = WalletWriter(other)
        await run_script(other_writer, other, 10, seed=32)
        assert await other.head_position() < await log_store.head_position()
        projection = WalletProjection(other, backing.storage(), batch_size=10)
        await projection.start()
        try:
            await caught_up_to(projection, other)
            assert projection.checkpoint == await other.head_position()
            await check_matches_log(projection, other, other_writer)
        finally:
            await projection.stop()
    finally:
        await other.close()


@pytest.mark.parametrize("shared", [False, True], ids=["own", "shared"])
async def test_two_writers_overlapping_follow_on_from_each_other_without_a_rebuild(
    log_store: EventStore, backing: Backing, shared: bool
) -> None:
    """Review (services mode's hand-over of the wallet read model): while the old owner
    still runs, the new one's first write found the checkpoint the old one had moved
    since it loaded it; it took that for a wiped storage, deleted every key and
    rebuilt from position 0 (and its reset made the old owner's next write conflict
    too). Now only one of two racing batches lands and the loser follows on from the
    stored checkpoint: nothing is deleted, no reader sees the model go back, and the
    content is exactly what a replay of the log gives."""
    writer = WalletWriter(log_store)
    await run_script(writer, log_store, 60, seed=21)
    advance = 0.02 if shared else None  # the worker's mode: the checkpoint moves alone too

    def projection() -> WalletProjection:
        return WalletProjection(
            log_store, backing.storage(), batch_size=4, check_interval=0.02, advance_every=advance
        )

    old, new = projection(), projection()
    await old.start()
    await caught_up_to(old, log_store)
    watcher = backing.storage()  # a reader of the shared storage, as an API process
    await watcher.open()
    problems: list[str] = []
    looks = {"n": 0}
    stop = asyncio.Event()

    async def watch() -> None:
        highest = 0
        known: dict[str, int] = {}
        while not stop.is_set():
            checkpoint = await watcher.checkpoint()
            if checkpoint is None or checkpoint < highest:
                problems.append(f"checkpoint {checkpoint} after {highest}")
            highest = max(highest, checkpoint or 0)
            for w in WALLETS:
                b = await watcher.balance(w)
                if w in known and (b is None or b.version < known[w]):
                    problems.append(f"{w} went from version {known[w]} to {b}")
                if b is not None:
                    known[w] = b.version
            looks["n"] += 1
            await asyncio.sleep(0.001)

    watching = asyncio.create_task(watch())
    try:
        await new.open()  # the new owner loads the checkpoint...
        await run_script(writer, log_store, 40, seed=22)  # ...the old one moves it on
        await new.start()  # both follow now, racing for every batch
        await run_script(writer, log_store, 120, seed=23)
        await caught_up_to(old, log_store)
        await caught_up_to(new, log_store)
        await old.stop()  # the old owner notices it was deposed
        await run_script(writer, log_store, 30, seed=24)
        await caught_up_to(new, log_store)
        await asyncio.sleep(0.05)
    finally:
        stop.set()
        await watching
        await watcher.close()
        await old.stop()
    try:
        assert problems == []
        assert looks["n"] > 10
        assert (old.recoveries, new.recoveries) == (0, 0)  # no reset, no rebuild from 0
        assert new.resumes >= 1  # its first write lost to the old owner's
        assert not new.rebuilding
        await check_matches_log(new, log_store, writer)
        replay = WalletProjection(log_store, SqliteWalletStorage(":memory:"))
        try:
            await replay.rebuild()
            assert await dump(new) == await dump(replay)
        finally:
            await replay.stop()
    finally:
        await new.stop()


async def test_a_refused_batch_writes_nothing(log_store: EventStore, backing: Backing) -> None:
    writer = WalletWriter(log_store)
    await run_script(writer, log_store, 20, seed=11)
    projection = WalletProjection(log_store, backing.storage())
    await projection.start()
    await caught_up_to(projection, log_store)
    content = await dump(projection)
    await projection.stop()
    storage = backing.storage()
    await storage.open()
    try:
        checkpoint = await storage.checkpoint()
        assert checkpoint is not None
        row = TxRow(
            "w1", 999, checkpoint + 1, "Credited", 1, 1, 0, None, None, None, None, "", None
        )
        with pytest.raises(CheckpointConflict) as info:
            await storage.apply([row], checkpoint - 1, checkpoint + 1)
        assert info.value.actual == checkpoint
        assert await storage.checkpoint() == checkpoint
        assert await storage.balance("w1") == content["w1"][0]
        assert await storage.transactions("w1", 10_000, None) == content["w1"][1]
    finally:
        await storage.close()


async def test_rebuild_gives_what_following_gave(log_store: EventStore, backing: Backing) -> None:
    writer = WalletWriter(log_store, snapshot_every=7)
    await run_script(writer, log_store, 150, seed=12)
    projection = WalletProjection(log_store, backing.storage(), batch_size=3)
    await projection.start()
    try:
        await caught_up_to(projection, log_store)
        followed = await dump(projection)
        seen: list[tuple[int, int]] = []
        applied = await projection.rebuild(lambda done, total: seen.append((done, total)))
        head = await log_store.head_position()
        assert applied == await count_wallet_events(log_store)
        assert seen[-1] == (head, head)
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)
        assert await dump(projection) == followed
        assert projection.position == head
        # stored with the last wallet event's rows (the writer's snapshots come after)
        last = max([(await log_store.read_stream(wallet_stream(w)))[-1].position for w in WALLETS])
        assert projection.checkpoint == last
        # following goes on after a rebuild
        await run_script(writer, log_store, 30, seed=13)
        await caught_up_to(projection, log_store)
        await check_matches_log(projection, log_store, writer)
    finally:
        await projection.stop()
    # and a cold rebuild (the `oddstream replay` path, not following) agrees too
    fresh = backing.storage()
    cold = WalletProjection(log_store, fresh, batch_size=50)
    try:
        await cold.rebuild()
        await check_matches_log(cold, log_store, writer)
    finally:
        await cold.stop()


class YieldingStorage:
    """Gives the loop a turn around every write, so readers interleave with a rebuild."""

    def __init__(self, inner: WalletStorage) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def apply(self, rows: Sequence[TxRow], expected: int, new: int) -> None:
        await asyncio.sleep(0)
        await self.inner.apply(rows, expected, new)
        await asyncio.sleep(0)

    async def reset(self) -> None:
        await asyncio.sleep(0)
        await self.inner.reset()
        await asyncio.sleep(0)


@pytest.mark.parametrize("trigger", ["rebuild", "wipe"])
async def test_reads_during_a_rebuild_show_only_log_states(
    log_store: EventStore, backing: Backing, trigger: str
) -> None:
    writer = WalletWriter(log_store)
    await run_script(writer, log_store, 200, seed=14)
    # every state the log justifies: (wallet, version) → the balance after that event
    states: dict[tuple[str, int], WalletBalance] = {}
    for w in WALLETS:
        for e in await log_store.read_stream(wallet_stream(w)):
            d = e.data
            states[(w, e.version)] = WalletBalance(
                w, d.get("balance_cents", 0), d.get("in_play_cents", 0), e.version, e.position
            )
    final = {w: max(v for (x, v) in states if x == w) for w in WALLETS}
    storage = YieldingStorage(backing.storage())
    projection = WalletProjection(
        log_store,
        storage,  # type: ignore[arg-type]
        batch_size=7,
        check_interval=0.05,
    )
    await projection.start()
    await caught_up_to(projection, log_store)

    window = {"open": False}
    reads = {"none": 0, "partial": 0, "final": 0}
    problems: list[str] = []
    stop = asyncio.Event()

    async def reader(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            w = rng.choice(WALLETS)
            during = window["open"] or projection.rebuilding
            b = await projection.balance(w)
            during = during or window["open"] or projection.rebuilding
            if b is None:
                reads["none"] += 1
                if not during:
                    problems.append(f"{w} missing outside a rebuild")
            elif states.get((w, b.version)) != b:
                problems.append(f"{b} is no state of the log")
            else:
                reads["final" if b.version == final[w] else "partial"] += 1
            txs = await projection.transactions(w, limit=5)
            if txs and b is not None and txs[0].version < b.version and not during:
                problems.append(f"{w}: transactions behind the balance outside a rebuild")
            for t in txs:
                s = states.get((w, t.version))
                if s is None or (s.balance_cents, s.position) != (t.balance_cents, t.position):
                    problems.append(f"{t} is no transaction of the log")
            await asyncio.sleep(0)

    readers = [asyncio.create_task(reader(n)) for n in range(8)]
    try:
        await asyncio.sleep(0.05)
        window["open"] = True
        if trigger == "rebuild":
            await projection.rebuild()
        else:
            backing.wipe_behind_our_back()
            await eventually(lambda: projection.recoveries > 0 and not projection.rebuilding, 0)
        await caught_up_to(projection, log_store)
        window["open"] = False
        await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*readers)
        await projection.stop()
    assert problems == []
    assert reads["partial"] > 0, reads  # the readers really did look mid-rebuild
    assert reads["final"] > 0


def test_the_default_read_model_lives_beside_an_sqlite_store() -> None:
    assert default_read_model_path("sqlite:///data/oddstream.db") == (
        "data/oddstream.read-models.db"
    )
    assert default_read_model_path("sqlite:////srv/tote/log.db") == "/srv/tote/log.read-models.db"
    assert default_read_model_path("postgresql://u@h/db") == "data/read_models.db"


async def test_settings_choose_the_adapter(log_store: EventStore, tmp_path) -> None:
    base = Settings()
    assert base.read_model_path == ""  # beside the store, see the next test
    assert base.redis_url is None
    assert base.redis_prefix == "oddstream:"
    sqlite_settings = base.with_overrides(read_model_path=str(tmp_path / "x" / "rm.db"))
    projection = open_wallet_read_model(sqlite_settings, log_store)
    assert isinstance(projection.storage, SqliteWalletStorage)
    await projection.start()
    await projection.stop()
    assert (tmp_path / "x" / "rm.db").exists()
    memory = open_wallet_read_model(base.with_overrides(read_model_path=":memory:"), log_store)
    assert isinstance(memory.storage, SqliteWalletStorage)
    redis_settings = base.with_overrides(redis_url=REDIS_URL, redis_prefix="p:")
    projection = open_wallet_read_model(redis_settings, log_store)
    assert isinstance(projection.storage, RedisWalletStorage)
    assert projection.storage.prefix == "p:"


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODDSTREAM_READ_MODEL_PATH", "/tmp/rm.db")
    monkeypatch.setenv("ODDSTREAM_REDIS_URL", "redis://h:1/2")
    monkeypatch.setenv("ODDSTREAM_REDIS_PREFIX", "x:")
    s = Settings()
    assert (s.read_model_path, s.redis_url, s.redis_prefix) == ("/tmp/rm.db", "redis://h:1/2", "x:")


async def test_redis_reads_are_coalesced(log_store: EventStore, redis_url: str) -> None:
    prefix = f"oddstream-test:{uuid.uuid4().hex[:12]}:"
    writer = WalletWriter(log_store)
    await run_script(writer, log_store, 40, seed=15)
    storage = RedisWalletStorage(redis_url, prefix=prefix)
    projection = WalletProjection(log_store, storage)
    await projection.start()
    try:
        await caught_up_to(projection, log_store)
        client = storage._redis()
        sent: list[tuple[Any, ...]] = []
        original = client.execute_command

        async def spy(*args: Any, **kw: Any) -> Any:
            sent.append(args)
            return await original(*args, **kw)

        client.execute_command = spy  # type: ignore[method-assign]
        answers = await asyncio.gather(*(projection.balance(w) for w in WALLETS * 13))
        client.execute_command = original  # type: ignore[method-assign]
        assert len(answers) == 65
        assert None not in answers
        assert [s[0] for s in sent] == ["EVALSHA"]  # 65 reads, one script call
        expect = {w: await projection.balance(w) for w in WALLETS}
        assert answers == [expect[w] for w in WALLETS * 13]
        # a caller that gives up does not disturb the others
        task = asyncio.create_task(projection.balance("w1"))
        other = asyncio.create_task(projection.balance("w2"))
        await asyncio.sleep(0)
        task.cancel()
        assert await other == expect["w2"]
    finally:
        await projection.stop()
        _delete_prefix(redis_url, prefix)


# ----------------------------------------------------------------------------- lost keys


class RedisModel:
    """A Redis read model followed from a scripted log, and a plain client to lose its
    keys with (deleted here as an operator would, or as an eviction does)."""

    def __init__(self, store: EventStore, url: str) -> None:
        self.store = store
        self.url = url
        self.prefix = f"oddstream-test:{uuid.uuid4().hex[:12]}:"
        self.writer = WalletWriter(store)
        self.storage = RedisWalletStorage(url, prefix=self.prefix)
        self.projection = WalletProjection(store, self.storage, check_interval=0.05)
        self.client = sync_redis.Redis.from_url(url)

    def balance_key(self, wallet_id: str) -> str:
        return f"{self.prefix}wallet:{wallet_id}"

    def statement_key(self, wallet_id: str) -> str:
        return f"{self.prefix}wallet-tx:{wallet_id}"

    @property
    def index_key(self) -> str:
        return f"{self.prefix}wallets:index"

    def hold_repairs(self) -> asyncio.Event:
        """Repairs wait until the returned event is set (to look at reads meanwhile)."""
        gate = asyncio.Event()
        repair = getattr(self.storage, "_repair", None)
        if repair is None:
            return gate  # an adapter that does not repair: nothing to hold

        async def held(wallet_id: str, version: int) -> None:
            await gate.wait()
            await repair(wallet_id, version)

        self.storage._repair = held  # type: ignore[method-assign]
        return gate

    async def expected(self, wallet_id: str) -> tuple[WalletBalance, list[WalletTransaction]]:
        events = await self.store.read_stream(wallet_stream(wallet_id))
        last = events[-1]
        balance = WalletBalance(
            wallet_id,
            last.data.get("balance_cents", 0),
            last.data.get("in_play_cents", 0),
            last.version,
            last.position,
        )
        return balance, expected_transactions(events)


@pytest.fixture
async def redis_model(log_store: EventStore, redis_url: str) -> AsyncIterator[RedisModel]:
    model = RedisModel(log_store, redis_url)
    await run_script(model.writer, log_store, 80, seed=16)
    await model.projection.start()
    try:
        await caught_up_to(model.projection, log_store)
        yield model
    finally:
        await model.projection.stop()
        model.client.close()
        _delete_prefix(redis_url, model.prefix)


async def test_redis_lost_statement_is_read_from_the_log_and_repaired(
    redis_model: RedisModel,
) -> None:
    m, projection, storage = redis_model, redis_model.projection, redis_model.storage
    balance, statement = await m.expected("w1")
    assert len(statement) > 6
    gate = m.hold_repairs()
    assert m.client.delete(m.statement_key("w1")) == 1
    # meanwhile: whole pages, from the log
    assert await projection.transactions("w1", limit=10_000) == statement
    assert await projection.transactions("w1", limit=3) == statement[:3]
    before = statement[2].version
    assert await projection.transactions("w1", limit=3, before_version=before) == statement[3:6]
    assert await projection.balance("w1") == balance
    assert m.client.exists(m.statement_key("w1")) == 0  # the repair is held
    assert storage.log_reads == 3
    gate.set()
    await eventually(lambda: storage.repairs == 1)
    assert m.client.zcard(m.statement_key("w1")) == len(statement)
    assert await projection.transactions("w1", limit=10_000) == statement
    assert storage.log_reads == 3  # from Redis again
    assert projection.recoveries == 0  # one wallet repaired, not a rebuild
    await check_matches_log(projection, m.store, m.writer)


async def test_redis_lost_balance_is_read_from_the_log_and_repaired(
    redis_model: RedisModel,
) -> None:
    m, projection, storage = redis_model, redis_model.projection, redis_model.storage
    balance, statement = await m.expected("w2")
    others = {w: await projection.balance(w) for w in WALLETS if w != "w2"}
    gate = m.hold_repairs()
    assert m.client.delete(m.balance_key("w2")) == 1
    reads = await asyncio.gather(*(projection.balance(w) for w in WALLETS * 3))
    assert reads == [balance if w == "w2" else others[w] for w in WALLETS * 3]
    assert await projection.transactions("w2", limit=10_000) == statement
    assert storage.log_reads >= 1
    assert m.client.exists(m.balance_key("w2")) == 0  # the repair is held
    gate.set()
    await eventually(lambda: storage.repairs == 1)
    assert m.client.exists(m.balance_key("w2")) == 1
    served = storage.log_reads
    assert await projection.balance("w2") == balance
    assert storage.log_reads == served  # from Redis again
    assert projection.recoveries == 0
    await check_matches_log(projection, m.store, m.writer)


async def test_redis_repair_never_overwrites_a_newer_batch(redis_model: RedisModel) -> None:
    m, projection, storage = redis_model, redis_model.projection, redis_model.storage
    gate = m.hold_repairs()
    assert m.client.delete(m.balance_key("w3"), m.statement_key("w3")) == 2
    old, _ = await m.expected("w3")
    assert await projection.balance("w3") == old  # from the log; repair queued, held
    # a batch moves the wallet on before the repair runs (its rows were read at `old`)
    outcome = await m.writer.execute(Credit(wallet_id="w3", amount_cents=777))
    assert await projection.wait_for(outcome.last_position, 10)
    gate.set()
    await eventually(lambda: storage.repairs == 1)
    new, statement = await m.expected("w3")
    assert new.version > old.version
    assert await projection.balance("w3") == new
    assert await projection.transactions("w3", limit=10_000) == statement
    assert m.client.zcard(m.statement_key("w3")) == len(statement)
    await check_matches_log(projection, m.store, m.writer)


async def test_redis_lost_marker_is_rewritten(redis_model: RedisModel) -> None:
    m, projection, storage = redis_model, redis_model.projection, redis_model.storage
    balance, statement = await m.expected("w4")
    assert m.client.hdel(m.index_key, "w4") == 1  # the wallet's marker
    assert await projection.balance("w4") == balance  # its balance key is still whole
    await eventually(lambda: storage.repairs == 1)
    assert m.client.hget(m.index_key, "w4") == str(balance.version).encode()
    # with its marker back, a later loss of both its keys is still noticed
    assert m.client.delete(m.balance_key("w4"), m.statement_key("w4")) == 2
    assert await projection.balance("w4") == balance
    await eventually(lambda: storage.repairs == 2)
    assert await projection.transactions("w4", limit=10_000) == statement
    assert projection.recoveries == 0


def count_log_lookups(storage: RedisWalletStorage) -> list[str]:
    """Wrap the loader the projection attached: the wallets it is asked for, in order."""
    load = storage._load
    assert load is not None
    asked: list[str] = []

    async def counted(wallet_id: str) -> Sequence[TxRow]:
        asked.append(wallet_id)
        return await load(wallet_id)

    storage.attach_log(counted)
    return asked


async def test_redis_wallet_that_lost_all_its_keys_is_read_from_the_log_and_repaired(
    redis_model: RedisModel,
) -> None:
    """Balance, statement and marker all gone (evicted one by one): the model does not
    know the wallet, but it passed the wallet's events, so it lost it."""
    m, projection, storage = redis_model, redis_model.projection, redis_model.storage
    balance, statement = await m.expected("w5")
    assert len(statement) > 6
    gate = m.hold_repairs()
    assert m.client.delete(m.balance_key("w5"), m.statement_key("w5")) == 2
    assert m.client.hdel(m.index_key, "w5") == 1
    # meanwhile: what the model showed before, whole, from the log
    assert await projection.balance("w5") == balance
    assert await projection.transactions("w5", limit=10_000) == statement
    before = statement[2].version
    assert await projection.transactions("w5", limit=3, before_version=before) == statement[3:6]
    assert m.client.exists(m.balance_key("w5"), m.statement_key("w5")) == 0  # repair held
    assert storage.log_reads == 3
    gate.set()
    await eventually(lambda: storage.repairs == 1)
    assert m.client.hget(m.index_key, "w5") == str(balance.version).encode()
    assert m.client.zcard(m.statement_key("w5")) == len(statement)
    assert await projection.transactions("w5", limit=10_000) == statement
    assert await projection.balance("w5") == balance
    assert storage.log_reads == 3  # from Redis again
    assert projection.recoveries == 0  # one wallet repaired, not a rebuild
    await check_matches_log(projection, m.store, m.writer)


async def test_redis_unknown_wallet_costs_one_log_lookup_and_no_repair(
    redis_model: RedisModel,
) -> None:
    """A wallet that does not exist (the 404 path), or whose events the model has not
    reached yet: one lookup however many reads (concurrent or not), nothing queued,
    nothing written."""
    m, projection, storage = redis_model, redis_model.projection, redis_model.storage
    asked = count_log_lookups(storage)
    reads = await asyncio.gather(*(projection.balance("nobody") for _ in range(5)))
    assert reads == [None] * 5
    assert asked == ["nobody"]  # the concurrent reads shared one lookup
    for _ in range(5):
        assert await projection.balance("nobody") is None
    assert await projection.transactions("nobody", limit=10) == []
    # batches of other wallets move the checkpoint on: still no lookup
    outcome = await m.writer.execute(Credit(wallet_id="w1", amount_cents=5))
    assert await projection.wait_for(outcome.last_position, 10)
    assert await projection.balance("nobody") is None
    assert asked == ["nobody"]
    assert (storage.log_reads, storage.repairs, storage._lost) == (0, 0, {})
    assert m.client.hexists(m.index_key, "nobody") == 0
    assert m.client.exists(m.balance_key("nobody"), m.statement_key("nobody")) == 0

    # events past the checkpoint the read saw: not lost, just not applied yet
    checkpoint = await storage.checkpoint()
    assert checkpoint is not None
    row = (await projection._wallet_rows("w1"))[0]._replace(
        wallet_id="newcomer", position=checkpoint + 1
    )

    async def ahead(wallet_id: str) -> Sequence[TxRow]:
        return [row] if wallet_id == "newcomer" else []

    storage.attach_log(ahead)
    assert await projection.balance("newcomer") is None
    assert await projection.transactions("newcomer", limit=10) == []
    assert (storage.log_reads, storage.repairs, storage._lost) == (0, 0, {})
    assert storage._absent["newcomer"] == checkpoint + 1  # its first event's position


async def test_redis_unknown_wallet_that_gets_its_first_event_is_not_hidden(
    redis_model: RedisModel,
) -> None:
    """The remembered "the log has nothing of W" lasts until a batch applies W's first
    event: W then reads from Redis, and if it later loses all its keys, the read still
    notices (asks the log, answers from it and repairs)."""
    m, projection, storage = redis_model, redis_model.projection, redis_model.storage
    asked = count_log_lookups(storage)
    assert await projection.balance("late") is None
    assert await projection.balance("late") is None
    assert asked == ["late"]
    outcome = await m.writer.execute(Credit(wallet_id="late", amount_cents=1234))
    assert await projection.wait_for(outcome.last_position, 10)
    balance, statement = await m.expected("late")
    assert balance.balance_cents == 1234
    assert await projection.balance("late") == balance  # from Redis
    # all three of its keys lost: the log is asked again, not the forgotten answer
    assert m.client.delete(m.balance_key("late"), m.statement_key("late")) == 2
    assert m.client.hdel(m.index_key, "late") == 1
    assert await projection.balance("late") == balance
    assert asked == ["late", "late"]
    assert storage.log_reads == 1
    await eventually(lambda: storage.repairs == 1)
    assert m.client.hget(m.index_key, "late") == str(balance.version).encode()
    assert await projection.transactions("late", limit=10) == statement
    assert storage.log_reads == 1  # whole again: from Redis


async def test_redis_resume_forgets_the_wallets_the_log_held_nothing_of(
    redis_model: RedisModel,
) -> None:
    """Review: "the log has nothing of W" is forgotten when a batch of this process
    applies W's first event; a batch another writer applied (two owners for a moment)
    never told it, so after following on from that writer's checkpoint (without having
    tried a batch with W: its check saw the checkpoint move first) a later loss of all
    W's keys read as no wallet. Following on forgets what it remembered."""
    m, projection, storage = redis_model, redis_model.projection, redis_model.storage
    asked = count_log_lookups(storage)
    assert await projection.balance("late") is None
    assert asked == ["late"]
    await projection.runner.stop()  # this owner pauses; the other one writes W
    outcome = await m.writer.execute(Credit(wallet_id="late", amount_cents=1234))
    other = WalletProjection(m.store, RedisWalletStorage(m.url, prefix=m.prefix))
    await other.start()
    assert await other.wait_for(outcome.last_position, 10)
    await other.stop()
    stored = await storage.checkpoint()
    assert stored is not None
    assert stored > projection.checkpoint
    assert await projection.resume_from(stored)  # what the runner's check leads to
    assert projection.checkpoint == stored
    balance, _ = await m.expected("late")
    assert m.client.delete(m.balance_key("late"), m.statement_key("late")) == 2
    assert m.client.hdel(m.index_key, "late") == 1
    assert await projection.balance("late") == balance  # the log is asked again
    assert asked == ["late", "late"]


async def test_redis_lookup_that_a_batch_overtakes_is_not_remembered(
    redis_model: RedisModel,
) -> None:
    """A lookup that read the log before W's first event, and ends after a batch applied
    it: its empty answer is right for the read that asked, but must not be remembered
    (nor joined by later reads), or a later loss of W's keys would read as no wallet."""
    m, projection, storage = redis_model, redis_model.projection, redis_model.storage
    load = storage._load
    assert load is not None
    gate, looked = asyncio.Event(), asyncio.Event()

    async def slow(wallet_id: str) -> Sequence[TxRow]:
        rows = await load(wallet_id)  # the log as it was before the credit below
        looked.set()
        await gate.wait()
        return rows

    storage.attach_log(slow)
    first = asyncio.create_task(projection.balance("racer"))
    try:
        await looked.wait()
        outcome = await m.writer.execute(Credit(wallet_id="racer", amount_cents=99))
        assert await projection.wait_for(outcome.last_position, 10)
        storage.attach_log(load)
        balance, _ = await m.expected("racer")
        assert await projection.balance("racer") == balance  # from Redis
        assert m.client.delete(m.balance_key("racer"), m.statement_key("racer")) == 2
        assert m.client.hdel(m.index_key, "racer") == 1
        async with asyncio.timeout(10):  # joining the held lookup would wait for ever
            assert await projection.balance("racer") == balance  # its own lookup: the log
    finally:
        gate.set()
    assert await first is None  # right for the checkpoint it read with
    await eventually(lambda: storage.repairs == 1)
    assert await projection.balance("racer") == balance
    # its old empty answer was not remembered: losing all its keys again is noticed
    assert m.client.delete(m.balance_key("racer"), m.statement_key("racer")) == 2
    assert m.client.hdel(m.index_key, "racer") == 1
    assert await projection.balance("racer") == balance
    await eventually(lambda: storage.repairs == 2)


async def test_redis_remembered_unknown_wallets_are_bounded(
    redis_model: RedisModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most ABSENT_MAX wallets, the least recently read forgotten first; a rebuild
    forgets them all."""
    from oddstream.projections.wallet_models import redis as redis_model_module

    monkeypatch.setattr(redis_model_module, "ABSENT_MAX", 3)
    projection, storage = redis_model.projection, redis_model.storage
    asked = count_log_lookups(storage)
    for wallet_id in ("g1", "g2", "g3", "g1", "g4"):
        assert await projection.balance(wallet_id) is None
    assert list(storage._absent) == ["g3", "g1", "g4"]  # g1 read again, g2 the oldest
    assert await projection.balance("g1") is None
    assert await projection.balance("g2") is None
    assert asked == ["g1", "g2", "g3", "g4", "g2"]
    await projection.rebuild()
    assert len(storage._absent) == 0
    assert await projection.balance("g1") is None
    assert asked[-1] == "g1"


async def test_redis_repair_of_an_unknown_wallet_is_guarded_by_the_checkpoint(
    redis_model: RedisModel,
) -> None:
    """The repair of a wallet the model does not know writes it only at the version the
    checkpoint is at: not an older one (the model passed its next event)."""
    m, storage = redis_model, redis_model.storage
    balance, statement = await m.expected("w3")
    assert balance.version > 1
    assert m.client.delete(m.balance_key("w3"), m.statement_key("w3")) == 2
    assert m.client.hdel(m.index_key, "w3") == 1
    await storage._repair("w3", balance.version - 1)  # stale: refused
    assert m.client.exists(m.balance_key("w3"), m.statement_key("w3")) == 0
    assert m.client.hexists(m.index_key, "w3") == 0
    assert storage.repairs == 0
    await storage._repair("w3", balance.version)
    assert storage.repairs == 1
    assert await storage.balance("w3") == balance
    assert await storage.transactions("w3", 10_000, None) == statement
    assert storage.log_reads == 0  # whole again: served from Redis


async def test_redis_lost_index_rebuilds_everything(redis_model: RedisModel) -> None:
    """Without the index a wallet that lost both its keys would look like no wallet:
    losing it counts as losing the checkpoint, and the model is rebuilt."""
    m, projection = redis_model, redis_model.projection
    lost_index = m.client.delete(m.index_key)
    assert m.client.delete(m.balance_key("w5"), m.statement_key("w5")) == 2
    await eventually(lambda: projection.recoveries > 0)
    await caught_up_to(projection, m.store)
    assert lost_index == 1
    assert projection.recoveries == 1
    assert m.client.exists(m.index_key) == 1
    assert m.client.exists(m.balance_key("w5"), m.statement_key("w5")) == 2
    await check_matches_log(projection, m.store, m.writer)


@pytest.mark.parametrize(
    ("policy", "warned"),
    [
        ("noeviction", False),
        ("volatile-lru", False),
        ("volatile-ttl", False),
        ("allkeys-lru", True),
        ("allkeys-lfu", True),
        ("allkeys-random", True),
        (None, True),  # CONFIG refused (a managed Redis)
    ],
)
async def test_redis_eviction_policy_is_checked_at_open(
    redis_url: str, caplog: pytest.LogCaptureFixture, policy: str | None, warned: bool
) -> None:
    import redis.asyncio as aioredis
    from redis.exceptions import ResponseError

    client = aioredis.Redis.from_url(redis_url)
    asked: list[str] = []

    async def config_get(pattern: str) -> dict[str, str]:
        asked.append(pattern)
        if policy is None:
            raise ResponseError("unknown command 'CONFIG'")
        return {pattern: policy}

    client.config_get = config_get  # type: ignore[method-assign]
    prefix = f"oddstream-test:{uuid.uuid4().hex[:12]}:"
    storage = RedisWalletStorage(redis_url, prefix=prefix, client=client)
    caplog.set_level("WARNING", logger="oddstream.projections.wallet_models.redis")
    try:
        await storage.open()
        assert asked == ["maxmemory-policy"]
        assert storage.eviction_policy == policy
        messages = [r.getMessage() for r in caplog.records]
        if not warned:
            assert messages == []
        elif policy is None:
            assert any("cannot read Redis maxmemory-policy" in t for t in messages), messages
        else:
            assert any(f"maxmemory-policy is {policy}" in t and "EVICT" in t for t in messages)
    finally:
        await storage.close()
        await client.aclose()
        _delete_prefix(redis_url, prefix)


async def test_redis_eviction_policy_is_the_servers(redis_url: str) -> None:
    prefix = f"oddstream-test:{uuid.uuid4().hex[:12]}:"
    storage = RedisWalletStorage(redis_url, prefix=prefix)
    client = sync_redis.Redis.from_url(redis_url)
    try:
        await storage.open()
        assert storage.eviction_policy == client.config_get("maxmemory-policy")["maxmemory-policy"]
    finally:
        await storage.close()
        client.close()
        _delete_prefix(redis_url, prefix)


# ----------------------------------------------------------------------------- books


async def _bets_in_two_books(writer: WalletWriter) -> None:
    """w1: a market bet won and a race bet lost, each reserved, captured and settled."""
    await writer.execute(Credit(wallet_id="w1", amount_cents=1_000))
    for book, payout, reason in (("market-M7", 250, "won"), ("race-R7", 0, "lost")):
        await writer.execute(ReserveStake(wallet_id="w1", bet_id="b", book=book, amount_cents=100))
        await writer.execute(CaptureStake(wallet_id="w1", bet_id="b", book=book))
        await writer.execute(
            SettleStake(
                wallet_id="w1",
                bet_id="b",
                book=book,
                payout_cents=payout,
                refund_cents=0,
                reason=reason,
            )
        )


async def test_stake_and_settlement_lines_name_their_book(
    log_store: EventStore, backing: Backing
) -> None:
    """A statement says where every stake went: a market bet's lines (its settlement's
    too) name its market's book and the market, with no race; a race bet's its race's."""
    writer = WalletWriter(log_store)
    await _bets_in_two_books(writer)
    projection = WalletProjection(log_store, backing.storage())
    await projection.start()
    try:
        await caught_up_to(projection, log_store)
        lines = await projection.transactions("w1", limit=100)
    finally:
        await projection.stop()
    assert [(t.type, t.book, t.race_id, t.market_id) for t in lines if t.bet_id] == [
        ("StakeLost", "race-R7", "R7", None),
        ("StakeCaptured", "race-R7", "R7", None),
        ("StakeReserved", "race-R7", "R7", None),
        ("WinningsCredited", "market-M7", None, "M7"),
        ("StakeCaptured", "market-M7", None, "M7"),
        ("StakeReserved", "market-M7", None, "M7"),
    ]
    assert all((t.book, t.race_id, t.market_id) == (None,) * 3 for t in lines if not t.bet_id)


@pytest.mark.parametrize("chunk", [7, 1000])
async def test_a_statement_filtered_by_book_pages_like_the_whole(
    log_store: EventStore, backing: Backing, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """``book=`` keeps that book's lines only, newest first, paged by version as the
    whole statement is (Redis looking at 7 members a call, so that pages span calls, or
    at up to 1,000 in growing steps within one call)."""
    monkeypatch.setattr("oddstream.projections.wallet_models.redis.FILTER_CHUNK", chunk)
    writer = WalletWriter(log_store)
    await run_script(writer, log_store, 600, seed=11)
    # a book with two lines 150 apart: Redis finds the older in a later step or call
    sparse = ReserveStake(wallet_id="w1", bet_id="s1", book="market-sparse", amount_cents=1)
    await writer.execute(sparse)
    for _ in range(150):
        await writer.execute(Credit(wallet_id="w1", amount_cents=1))
    await writer.execute(
        ReserveStake(wallet_id="w1", bet_id="s2", book=sparse.book, amount_cents=1)
    )
    projection = WalletProjection(log_store, backing.storage())
    await projection.start()
    try:
        await caught_up_to(projection, log_store)
        for w in WALLETS:
            whole = await projection.transactions(w, limit=10_000)
            for book in ("market-M1", "race-R1", "market-R1", "race-nothing", "market-sparse"):
                wanted = [t for t in whole if t.book == book]
                assert await projection.transactions(w, limit=10_000, book=book) == wanted
                pages, before = [], None
                while True:
                    page = await projection.transactions(
                        w, limit=3, before_version=before, book=book
                    )
                    pages += page
                    if len(page) < 3:
                        break
                    before = page[-1].version
                assert pages == wanted
        assert any(t.book == "market-M1" for t in whole)
        sparse_lines = await projection.transactions("w1", limit=10, book="market-sparse")
        assert [t.bet_id for t in sparse_lines] == ["s2", "s1"]
        for bad in ("", "race-", "M1", "market-M 1", "pool-M1", "race-" + "r" * 101):
            with pytest.raises(ValueError, match="book must be"):
                await projection.transactions("w1", book=bad)
    finally:
        await projection.stop()


_V1_SQLITE = """
CREATE TABLE wallet_balances (
    wallet_id TEXT PRIMARY KEY, balance_cents INTEGER NOT NULL,
    in_play_cents INTEGER NOT NULL, version INTEGER NOT NULL, position INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE wallet_transactions (
    wallet_id TEXT NOT NULL, version INTEGER NOT NULL, position INTEGER NOT NULL,
    type TEXT NOT NULL, amount_cents INTEGER, balance_cents INTEGER NOT NULL,
    in_play_cents INTEGER NOT NULL, bet_id TEXT, race_id TEXT, reason TEXT,
    reference TEXT, recorded_at TEXT NOT NULL, stake_cents INTEGER,{book}
    PRIMARY KEY (wallet_id, version)
) WITHOUT ROWID;
CREATE TABLE read_model_checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL)
    WITHOUT ROWID;
INSERT INTO wallet_balances VALUES ('stale', 1, 0, 1, 1);
INSERT INTO wallet_transactions VALUES
    ('stale', 1, 1, 'Credited', 1, 1, 0, NULL, NULL, NULL, NULL, 't1', NULL{book_value});
INSERT INTO read_model_checkpoints VALUES ('wallets', {head});
"""


@pytest.mark.parametrize("with_book", [False, True], ids=["before-books", "books-unversioned"])
async def test_a_sqlite_model_of_an_older_version_is_rebuilt_at_start(
    log_store: EventStore, tmp_path, with_book: bool
) -> None:
    """A read model file of version 1 (written before books, or with the ``book`` column
    but no version) is not read or altered in place: its tables are replaced and the
    projection rebuilds it from the log, although its checkpoint is at the log's head."""
    writer = WalletWriter(log_store)
    await _bets_in_two_books(writer)
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            _V1_SQLITE.format(
                head=await log_store.head_position(),
                book="\n    book TEXT," if with_book else "",
                book_value=", NULL" if with_book else "",
            )
        )
    db.close()
    projection = WalletProjection(log_store, SqliteWalletStorage(path))
    await projection.start()
    try:
        await caught_up_to(projection, log_store)
        assert await projection.balance("stale") is None  # not in the log: gone
        events = await log_store.read_stream(wallet_stream("w1"))
        assert await projection.transactions("w1", limit=100) == expected_transactions(events)
    finally:
        await projection.stop()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT name, version FROM read_model_versions").fetchall() == [
            ("wallets", 2)
        ]
    db.close()
    # opened again at this version: kept as it is, followed from its checkpoint
    again = SqliteWalletStorage(path)
    await again.open()
    try:
        assert await again.checkpoint() == await log_store.head_position()
    finally:
        await again.close()


async def test_a_sqlite_model_an_older_release_wrote_after_this_one_is_rebuilt(
    log_store: EventStore, tmp_path
) -> None:
    """A rollback, then the upgrade again: a release before versions opening a file of
    version 2 writes its lines as it always did (no ``market_id``) with its checkpoint
    row ``wallets``, and leaves the version row alone. This release, opening the file
    again, must not take those lines for its own: it rebuilds them from the log."""
    writer = WalletWriter(log_store)
    await _bets_in_two_books(writer)
    path = tmp_path / "rolled-back.db"
    projection = WalletProjection(log_store, SqliteWalletStorage(path))
    await projection.start()
    try:
        await caught_up_to(projection, log_store)
    finally:
        await projection.stop()
    events = await log_store.read_stream(wallet_stream("w1"))
    head = await log_store.head_position()
    # what the release before versions writes, from its checkpoint or from 0 alike
    columns = [f for f in WalletTransaction.__struct_fields__ if f != "market_id"]
    with sqlite3.connect(path) as db:
        db.executemany(
            f"INSERT OR REPLACE INTO wallet_transactions (wallet_id, {', '.join(columns)}) "
            f"VALUES (?{', ?' * len(columns)})",
            [("w1", *(getattr(t, f) for f in columns)) for t in expected_transactions(events)],
        )
        db.execute("INSERT OR REPLACE INTO read_model_checkpoints VALUES ('wallets', ?)", (head,))
    db.close()
    again = WalletProjection(log_store, SqliteWalletStorage(path))
    await again.start()
    try:
        await caught_up_to(again, log_store)
        lines = await again.transactions("w1", limit=100)
        assert [t.market_id for t in lines if t.book == "market-M7"] == ["M7"] * 3
        assert lines == expected_transactions(events)
    finally:
        await again.stop()


async def test_a_redis_model_of_an_older_version_is_rebuilt_at_start(
    log_store: EventStore, redis_url: str
) -> None:
    """Keys of version 1 under the prefix (its index's sentinel ``\\0checkpoint``,
    members without the market) are deleted and rebuilt from the log at start, although
    their checkpoint is at the log's head; keys of other prefixes are left alone."""
    prefix = f"oddstream-test:{uuid.uuid4().hex[:12]}:"
    writer = WalletWriter(log_store)
    await _bets_in_two_books(writer)
    head = await log_store.head_position()
    client = sync_redis.Redis.from_url(redis_url)
    try:
        client.set(f"{prefix}wallets:checkpoint", head)
        client.hset(f"{prefix}wallets:index", mapping={"\0checkpoint": head, "stale": 1})
        client.set(f"{prefix}wallet:stale", json.dumps([1, 0, 1, 1]))
        old_member = [1, 1, "Credited", 1, 1, 0, None, None, None, None, "t1", None, None]
        client.zadd(f"{prefix}wallet-tx:stale", {json.dumps(old_member): 1})
        client.set(f"{prefix}odds:other", "kept")
        projection = WalletProjection(log_store, RedisWalletStorage(redis_url, prefix=prefix))
        await projection.start()
        try:
            await caught_up_to(projection, log_store)
            assert await projection.balance("stale") is None
            events = await log_store.read_stream(wallet_stream("w1"))
            lines = await projection.transactions("w1", limit=100)
            assert lines == expected_transactions(events)
            assert client.hexists(f"{prefix}wallets:index", "\0checkpoint:2")
            assert not client.hexists(f"{prefix}wallets:index", "\0checkpoint")
            assert client.get(f"{prefix}odds:other") == b"kept"
        finally:
            await projection.stop()
    finally:
        client.close()
        _delete_prefix(redis_url, prefix)


async def test_a_redis_reader_meeting_older_keys_reads_statements_from_the_log(
    log_store: EventStore, redis_url: str
) -> None:
    """An API process of this release reading keys of version 1 (its worker has not
    rebuilt them yet, or an old worker still writes them) answers statements from the
    log, filtered or not, never by misreading (or failing on) the old members."""
    prefix = f"oddstream-test:{uuid.uuid4().hex[:12]}:"
    writer = WalletWriter(log_store)
    await _bets_in_two_books(writer)
    events = await log_store.read_stream(wallet_stream("w1"))
    client = sync_redis.Redis.from_url(redis_url)
    try:
        client.set(f"{prefix}wallets:checkpoint", events[-1].position)
        client.hset(f"{prefix}wallets:index", mapping={"\0checkpoint": 1, "w1": len(events)})
        last = events[-1].data
        balance = [last["balance_cents"], last["in_play_cents"], len(events), events[-1].position]
        client.set(f"{prefix}wallet:w1", json.dumps(balance))
        for line in expected_transactions(events):  # as version 1 wrote them: no market
            old = [getattr(line, f) for f in WalletTransaction.__struct_fields__[:13]]
            client.zadd(f"{prefix}wallet-tx:w1", {json.dumps(old): line.version})
        reader = WalletReader(log_store, RedisWalletStorage(redis_url, prefix=prefix))
        await reader.start()
        try:
            assert await reader.transactions("w1", limit=100) == expected_transactions(events)
            market = await reader.transactions("w1", limit=100, book="market-M7")
            assert [t.market_id for t in market] == ["M7"] * 3
        finally:
            await reader.stop()
        storage = RedisWalletStorage(redis_url, prefix=prefix)  # no log to fall back on
        await storage.open()
        try:
            with pytest.raises(ReadModelUnavailable, match="another version"):
                await storage.transactions("w1", 100, None)
        finally:
            await storage.close()
    finally:
        client.close()
        _delete_prefix(redis_url, prefix)


async def test_redis_filtered_statement_of_a_wallet_with_lost_keys_comes_from_the_log(
    redis_model: RedisModel,
) -> None:
    """A filtered read of a wallet whose statement key is gone is answered from the log,
    filtered the same way."""
    m = redis_model
    await _bets_in_two_books(m.writer)
    await caught_up_to(m.projection, m.store)
    before = await m.projection.transactions("w1", limit=100, book="market-M7")
    assert [t.type for t in before] == ["WinningsCredited", "StakeCaptured", "StakeReserved"]
    m.client.delete(m.statement_key("w1"))
    assert await m.projection.transactions("w1", limit=100, book="market-M7") == before
    assert m.storage.log_reads >= 1
