"""Wallet read models: each wallet's balance and its transactions, fed from the log.

:class:`WalletProjection` follows the ``wallet-*`` streams and keeps a storage adapter
(``wallet_models/``: SQLite by default, Redis when ``ODDSTREAM_REDIS_URL`` is set) up to
date. Each batch (every event available, up to ``batch_size``) is written together with
the checkpoint in one atomic step that first checks the stored checkpoint is the one this projection
wrote last: a restart resumes exactly where the last batch ended, and a storage that was
wiped or written by someone else (a FLUSHed or restarted Redis) is detected and
rebuilt from the log while the service keeps running. See ``docs/wallets.md``.

Reads answer from the adapter. While :attr:`WalletProjection.rebuilding` is true, a
wallet the read model does not have may still exist (it is not repopulated yet): callers
that must tell "no such wallet" apart fall back to the authoritative source (the wallet's
writer). Every value shown, even then, is a state some prefix of the log produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..eventstore import EventStore, RecordedEvent, StoreClosed, StoreUnavailable
from ..eventstore.factory import sqlite_path
from ..eventstore.registry import EventRegistry
from ..runtime.codec import registry as default_registry
from .position import AppliedPosition
from .wallet_models.base import (
    WALLET_STREAM_PREFIX,
    CheckpointMismatch,
    ReadModelUnavailable,
    TxRow,
    WalletBalance,
    WalletStorage,
    WalletTransaction,
    check_page,
    tx_row,
)
from .wallet_models.sqlite import SqliteWalletStorage

if TYPE_CHECKING:
    from ..config import Settings

__all__ = [
    "CheckpointMismatch",
    "ReadModelUnavailable",
    "WalletBalance",
    "WalletProjection",
    "WalletReadModel",
    "WalletStorage",
    "WalletTransaction",
    "open_wallet_read_model",
]

log = logging.getLogger(__name__)

DEFAULT_BATCH = 2000
#: How often an idle projection checks that its storage still holds its checkpoint.
CHECK_INTERVAL = 1.0
_STOP_TIMEOUT = 5.0


class WalletReadModel(Protocol):
    """What the API reads wallets from."""

    async def balance(self, wallet_id: str) -> WalletBalance | None:
        """The wallet's balance after its last event the model has, or None."""

    async def transactions(
        self, wallet_id: str, *, limit: int = 50, before_version: int | None = None
    ) -> list[WalletTransaction]:
        """Up to ``limit`` transactions, newest first, with versions below
        ``before_version`` (the next page: the last version of this one)."""

    @property
    def position(self) -> int:
        """The global position the model includes: every wallet event up to it."""

    async def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until the model includes ``position``; False on timeout."""


#: After a wake-up, how long to let commits accumulate before a pass (seconds).
GATHER_SECONDS = 0.01
#: The same after a pass that found no wallet event.
IDLE_GATHER_SECONDS = 0.1


class WalletProjection:
    """Follows the wallet streams into a :class:`WalletStorage`; a :class:`WalletReadModel`.

    ``await start()`` opens the storage and follows the log from its checkpoint;
    ``await stop()`` stops and closes. ``await rebuild()`` wipes and replays from 0
    (the ``oddstream replay`` path; it may run while following).
    """

    def __init__(
        self,
        store: EventStore,
        storage: WalletStorage,
        *,
        registry: EventRegistry | None = None,
        batch_size: int = DEFAULT_BATCH,
        check_interval: float = CHECK_INTERVAL,
        gather: float = GATHER_SECONDS,
        idle_gather: float = IDLE_GATHER_SECONDS,
    ) -> None:
        """``gather``: after being woken by a commit, wait this long for more before
        reading, so that under load one pass takes many commits' events;
        ``idle_gather`` instead when the last pass found no wallet event (the commits
        were other streams'). A reader waiting for a position cuts either short."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._store = store
        self._storage = storage
        self._registry = registry or default_registry
        self._batch_size = batch_size
        self._check_interval = check_interval
        self._gather = gather
        self._idle_gather = idle_gather
        self._hurry = asyncio.Event()
        #: what the reads include (may pass the checkpoint over non-wallet positions)
        self._applied = AppliedPosition()
        #: the checkpoint as stored with the last batch this projection wrote
        self._committed = 0
        self._opened = False
        self._lock = asyncio.Lock()
        self._caught_up = asyncio.Event()
        self._rebuilding = False
        self._task: asyncio.Task[None] | None = None
        #: when the stored checkpoint was last seen to be ours (loop time)
        self._checked_at = 0.0
        #: rebuilds after a detected mismatch, for tests and metrics
        self.recoveries = 0
        # a wallet whose keys the storage finds missing is read and repaired from the log
        storage.attach_log(self._wallet_rows)

    # ----------------------------------------------------------------- state
    @property
    def storage(self) -> WalletStorage:
        return self._storage

    @property
    def position(self) -> int:
        """The global position the read model includes: every wallet event up to it,
        none after (positions of other streams count as passed once scanned)."""
        return self._applied.value

    @property
    def checkpoint(self) -> int:
        """The position stored with the last batch written (what a restart resumes)."""
        return self._committed

    @property
    def rebuilding(self) -> bool:
        """True while the content is being repopulated from the log (or a read has just
        seen it wiped): a missing wallet may exist, so fall back to the wallet's writer."""
        return self._rebuilding or self._storage.suspect()

    @property
    def caught_up(self) -> bool:
        """True when everything in the log as of the last look is applied (and no
        rebuild is running)."""
        return self._caught_up.is_set() and not self.rebuilding

    async def wait_caught_up(self, timeout: float) -> bool:
        """Wait until :attr:`caught_up`; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.caught_up:
            left = deadline - loop.time()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, 0.05)):
                    await self._caught_up.wait()
        return True

    # ----------------------------------------------------------------- lifecycle
    async def open(self) -> None:
        """Open the storage and load its checkpoint (``start`` and ``rebuild`` do it)."""
        if self._opened:
            return
        await self._storage.open()
        stored = await self._storage.checkpoint()
        if stored is None:
            # Never written, or wiped (a flushed Redis): start clean from the log, so
            # that no key left behind without its checkpoint is trusted.
            await self._storage.reset()
        self._committed = stored or 0
        self._advance(self._committed)
        self._opened = True

    async def start(self) -> None:
        """Open, then follow the log from the stored checkpoint in a task."""
        await self.open()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="wallet-projection")

    async def stop(self) -> None:
        """Stop following (a batch in flight is abandoned: its checkpoint did not move
        unless its write completed) and close the storage."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, StoreClosed, TimeoutError):
                async with asyncio.timeout(_STOP_TIMEOUT):  # not wait_for (3.11)
                    await task
        if self._opened:
            self._opened = False
            await self._storage.close()

    async def __aenter__(self) -> WalletProjection:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ----------------------------------------------------------------- reads
    async def balance(self, wallet_id: str) -> WalletBalance | None:
        return await self._storage.balance(wallet_id)

    async def transactions(
        self, wallet_id: str, *, limit: int = 50, before_version: int | None = None
    ) -> list[WalletTransaction]:
        check_page(limit, before_version)
        return await self._storage.transactions(wallet_id, limit, before_version)

    async def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until the read model includes ``position``; False on timeout."""
        return await self._applied.wait_for(position, timeout, nudge=self._hurry.set)

    # ----------------------------------------------------------------- writing
    def _advance(self, position: int) -> None:
        self._applied.advance(position)

    def _rows(self, events: Sequence[RecordedEvent]) -> list[TxRow]:
        decode = self._registry.decode
        return [tx_row(recorded, decode(recorded)) for recorded in events]

    async def _wallet_rows(self, wallet_id: str) -> list[TxRow]:
        """One wallet's whole stream from the log, as rows (the storage's repairs)."""
        return self._rows(await self._store.read_stream(WALLET_STREAM_PREFIX + wallet_id))

    async def _write(self, rows: Sequence[TxRow], new: int) -> None:
        """Write a batch and move the checkpoint to ``new`` (caller holds the lock).

        A write whose outcome is unknown (the storage failed mid-way) is resolved by
        reading the checkpoint back: at ``new`` it happened, at the old one it did not.
        """
        expected = self._committed
        try:
            await self._storage.apply(rows, expected, new)
        except ReadModelUnavailable:
            with contextlib.suppress(ReadModelUnavailable):
                if await self._storage.checkpoint() == new:
                    self._committed = new
                    self._advance(new)
                    return
            raise
        self._committed = new
        self._checked_at = asyncio.get_running_loop().time()
        self._advance(new)

    async def _run(self) -> None:
        while True:
            try:
                await self._follow()
                return
            except CheckpointMismatch as exc:
                await self._recover(exc)
            except ReadModelUnavailable as exc:
                log.warning("wallet read model unavailable, retrying: %s", exc)
                self._caught_up.clear()
                await asyncio.sleep(self._check_interval)
            except StoreClosed:
                return
            except Exception:
                # A batch that failed wrote nothing (or, if the storage says otherwise,
                # the next write's checkpoint check finds out): stall, log, try again.
                log.exception("wallet projection failed; retrying")
                self._caught_up.clear()
                await asyncio.sleep(self._check_interval)

    async def _follow(self) -> None:
        store = self._store
        while True:
            start = self._applied.value
            try:
                page = await store.read_page(
                    after=start, limit=self._batch_size, stream_prefix=WALLET_STREAM_PREFIX
                )
            except StoreUnavailable as exc:
                log.warning("wallet projection: log read failed, retrying: %s", exc)
                await asyncio.sleep(self._check_interval)
                continue
            events = page.events
            full = len(events) == self._batch_size
            # The page holds every wallet event up to its position, from the snapshot it
            # was served from (never the head read apart: it may include a commit the
            # page did not, and its wallet events would be skipped).
            new = page.position
            if events:
                rows = self._rows(events)
                async with self._lock:
                    if self._applied.value != start:
                        continue  # a rebuild ran meanwhile: read again from its end
                    await self._write(rows, new)
            elif new > start:
                self._advance(new)
            if full:
                self._caught_up.clear()
                continue
            if not self._rebuilding:
                self._caught_up.set()
            loop = asyncio.get_running_loop()
            if loop.time() - self._checked_at >= self._check_interval or self.rebuilding:
                await self._verify()
            left = max(0.0, self._checked_at + self._check_interval - loop.time())
            if await store.wait_for_position(self._applied.value + 1, left):
                # Each pass costs two log reads (and a commit if it carries anything),
                # woken by every commit of every stream: gather commits first, briefly
                # while wallet events flow, longer while they do not, and not at all
                # when a reader waits for a position (``wait_for`` hurries us).
                pause = self._gather if events else self._idle_gather
                if pause and not self._hurry.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(pause):
                            await self._hurry.wait()
                self._hurry.clear()
            elif store.closed:
                return

    async def _verify(self) -> None:
        """The periodic check (~1 s, busy or idle): the storage still holds our
        checkpoint. A FLUSHed or restarted Redis does not; neither does a database
        another process wrote."""
        async with self._lock:
            found = await self._storage.checkpoint()
            self._checked_at = asyncio.get_running_loop().time()
            if (found or 0) != self._committed:
                raise CheckpointMismatch(self._committed, found)

    async def _recover(self, exc: CheckpointMismatch) -> None:
        self.recoveries += 1
        log.warning(
            "wallet read model (%s) lost its checkpoint (%s); rebuilding from the log",
            self._storage.kind,
            exc,
        )
        await self.rebuild()

    async def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Wipe the read model and replay every wallet event up to the log's current
        head; returns the number of events applied. ``progress(position, head)`` is
        called after each batch. Reads meanwhile show states of prefixes of the log, and
        :attr:`rebuilding` is true. Safe while following."""
        await self.open()
        attempts = 0
        while True:
            try:
                async with self._lock:
                    return await self._replay(progress)
            except CheckpointMismatch as exc:  # wiped again while rebuilding
                attempts += 1
                if attempts >= 5:
                    raise
                log.warning("wallet read model changed during its rebuild (%s); again", exc)

    async def _replay(self, progress: Callable[[int, int], None] | None) -> int:
        self._rebuilding = True
        self._caught_up.clear()
        try:
            await self._storage.reset()
            self._committed = 0
            self._advance(0)
            total = await self._store.head_position()
            applied = 0
            batch: list[RecordedEvent] = []
            async for recorded in self._store.scan_all(
                after=0, stream_prefix=WALLET_STREAM_PREFIX, batch_size=self._batch_size
            ):
                batch.append(recorded)
                if len(batch) >= self._batch_size:
                    await self._write(self._rows(batch), batch[-1].position)
                    applied += len(batch)
                    batch = []
                    if progress is not None:
                        progress(self._applied.value, total)
            end = max(total, *_last(batch)) if batch else max(total, self._applied.value)
            await self._write(self._rows(batch), end)
            applied += len(batch)
            if progress is not None:
                progress(end, end)
            return applied
        finally:
            self._rebuilding = False


def _last(events: Sequence[RecordedEvent]) -> tuple[int, ...]:
    return (events[-1].position,) if events else ()


def open_wallet_read_model(settings: Settings, store: EventStore) -> WalletProjection:
    """The wallet projection the settings ask for: Redis when ``redis_url`` is set, else
    SQLite at ``read_model_path``. Not started: ``await projection.start()``."""
    storage: WalletStorage
    if settings.redis_url:
        from .wallet_models.redis import RedisWalletStorage

        storage = RedisWalletStorage(settings.redis_url, prefix=settings.redis_prefix)
    else:
        path = settings.read_model_path or default_read_model_path(settings.store_url)
        storage = SqliteWalletStorage(path if path == ":memory:" else Path(path))
    return WalletProjection(store, storage)


def default_read_model_path(store_url: str) -> str:
    """Where the SQLite read model lives unless configured: beside an SQLite store's file
    (``data/oddstream.db`` → ``data/oddstream.read-models.db``), else
    ``data/read_models.db``."""
    store_file = sqlite_path(store_url)
    if store_file and store_file != ":memory:":
        file = Path(store_file)
        return str(file.with_name(f"{file.stem}.read-models.db"))
    return "data/read_models.db"


if TYPE_CHECKING:

    def _is_a_read_model(projection: WalletProjection) -> WalletReadModel:
        return projection  # mypy checks that the projection fulfils the protocol
