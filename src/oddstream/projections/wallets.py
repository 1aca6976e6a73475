"""Wallet read models: each wallet's balance and its transactions, fed from the log.

:class:`WalletProjection` follows the ``wallet-*`` streams and keeps a storage adapter
(``wallet_models/``: SQLite by default, Redis when ``ODDSTREAM_REDIS_URL`` is set) up to
date. Each batch (every event available, up to ``batch_size``) is written together with
the checkpoint in one atomic step that first checks the stored checkpoint is the one this projection
wrote last: a restart resumes exactly where the last batch ended; a checkpoint another
writer of this read model moved forward (two workers for a moment during a hand-over:
only one of two racing batches lands) is followed on from, with nothing wiped; a storage
that was wiped or moved back (a FLUSHed or restarted Redis) is detected and rebuilt from
the log while the service keeps running. See ``docs/wallets.md``.

Reads answer from the adapter. While :attr:`WalletProjection.rebuilding` is true, a
wallet the read model does not have may still exist (it is not repopulated yet): callers
that must tell "no such wallet" apart fall back to the authoritative source (the wallet's
writer). Every value shown, even then, is a state some prefix of the log produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..consumers import Batch, Consumer, ConsumerRunner, SinkCheckpoint, Subscription
from ..eventstore import CheckpointConflict, EventStore, RecordedEvent
from ..eventstore.factory import sqlite_path
from ..eventstore.registry import EventRegistry
from ..runtime.codec import registry as default_registry
from .wallet_models.base import (
    CONSUMER_NAME,
    WALLET_STREAM_PREFIX,
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


class WalletReadModel(Protocol):
    """What the API reads wallets from."""

    async def balance(self, wallet_id: str) -> WalletBalance | None:
        """The wallet's balance after its last event the model has, or None."""

    async def transactions(
        self,
        wallet_id: str,
        *,
        limit: int = 50,
        before_version: int | None = None,
        book: str | None = None,
    ) -> list[WalletTransaction]:
        """Up to ``limit`` transactions, newest first, with versions below
        ``before_version`` (the next page: the last version of this one); with ``book``,
        only the lines of that book's bets."""

    @property
    def position(self) -> int:
        """The global position the model includes: every wallet event up to it."""

    async def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until the model includes ``position``; False on timeout."""


#: After a wake-up, how long to let commits accumulate before a batch (seconds).
GATHER_SECONDS = 0.01


class _AdvancingCheckpoint(SinkCheckpoint):
    """A sink checkpoint that the projection also moves over positions without a wallet
    event (at most every ``every`` seconds, and at stop): for a read model other
    processes read (Redis in services mode), whose readers know its position only from
    the stored checkpoint. Without it a read waiting for a position a race's answer gave
    (``min_position``) would wait for the next wallet event, however long."""

    def __init__(self, every: float) -> None:
        #: the runner wakes at least this often when idle
        self.every = self._every = every
        self._moved_at = 0.0

    async def save(
        self, store: EventStore, consumer: Consumer, position: int, *, now: bool = False
    ) -> None:
        projection: WalletProjection = consumer  # type: ignore[assignment]
        if position <= projection.checkpoint:
            return
        if not now and time.monotonic() - self._moved_at < self._every:
            return
        await projection.advance(position)
        self._moved_at = time.monotonic()


class WalletProjection(Consumer):
    """Follows the wallet streams into a :class:`WalletStorage`; a :class:`WalletReadModel`.

    A consumer (``docs/consumers.md``) whose checkpoint is kept with its rows
    (:class:`~oddstream.consumers.SinkCheckpoint`). ``await start()`` opens the storage
    and follows the log from its checkpoint; ``await stop()`` stops and closes.
    ``await rebuild()`` wipes and replays from 0 (the ``oddstream replay`` path; it may
    run while following).
    """

    name = CONSUMER_NAME
    subscription = Subscription(stream_prefix=WALLET_STREAM_PREFIX)

    def __init__(
        self,
        store: EventStore,
        storage: WalletStorage,
        *,
        registry: EventRegistry | None = None,
        batch_size: int = DEFAULT_BATCH,
        check_interval: float = CHECK_INTERVAL,
        gather: float = GATHER_SECONDS,
        advance_every: float | None = None,
    ) -> None:
        """``gather``: after being woken by a commit, wait this long for more before
        writing, so that under load one batch takes many commits' events (a reader
        waiting for a position cuts it short); ``check_interval``: how often the
        storage is checked to still hold this projection's checkpoint;
        ``advance_every``: for a storage other processes read, move the stored
        checkpoint over positions without a wallet event at most this often (seconds;
        ``None``: only with wallet events, as a reader in this process follows
        :attr:`position`)."""
        self._store = store
        self._storage = storage
        self._registry = registry or default_registry
        #: the checkpoint as stored with the last batch this projection wrote
        self._committed = 0
        self._opened = False
        self.runner = ConsumerRunner(
            store,
            self,
            SinkCheckpoint() if advance_every is None else _AdvancingCheckpoint(advance_every),
            batch_size=batch_size,
            linger=gather,
            check_every=check_interval,
        )
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
        return self.runner.position

    @property
    def checkpoint(self) -> int:
        """The position stored with the last batch written (what a restart resumes)."""
        return self._committed

    @property
    def recoveries(self) -> int:
        """Rebuilds after the storage was found wiped, or its checkpoint moved back (or
        past the log's head)."""
        return self.runner.recoveries

    @property
    def resumes(self) -> int:
        """Follow-ons from a checkpoint another writer of this read model moved forward
        (no wipe, no rebuild)."""
        return self.runner.resumes

    @property
    def rebuilding(self) -> bool:
        """True while the content is being repopulated from the log (or a read has just
        seen it wiped): a missing wallet may exist, so fall back to the wallet's writer."""
        return self.runner.rebuilding or self._storage.suspect()

    @property
    def caught_up(self) -> bool:
        """True when everything in the log as of the last look is applied (and no
        rebuild is running)."""
        return self.runner.caught_up and not self.rebuilding

    async def wait_caught_up(self, timeout: float) -> bool:
        """Wait until :attr:`caught_up`; False on timeout."""
        return await self.runner.wait_caught_up(timeout) and not self.rebuilding

    # ----------------------------------------------------------------- lifecycle
    async def open(self) -> None:
        """Open the storage and load its checkpoint (``start`` and ``rebuild`` do it)."""
        if self._opened:
            return
        await self._storage.open()
        self._opened = True
        await self.runner.load()

    async def start(self) -> None:
        """Open, then follow the log from the stored checkpoint in a task."""
        await self.open()
        await self.runner.start()

    async def stop(self) -> None:
        """Stop following (a batch in flight is abandoned: its checkpoint did not move
        unless its write completed) and close the storage."""
        await self.runner.stop()
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
        self,
        wallet_id: str,
        *,
        limit: int = 50,
        before_version: int | None = None,
        book: str | None = None,
    ) -> list[WalletTransaction]:
        check_page(limit, before_version, book)
        return await self._storage.transactions(wallet_id, limit, before_version, book)

    async def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until the read model includes ``position``; False on timeout."""
        return await self.runner.wait_for(position, timeout)

    # ----------------------------------------------------------------- the consumer
    async def stored_position(self) -> int | None:
        """The checkpoint the storage holds (``None``: never written, or wiped)."""
        stored = await self._storage.checkpoint()
        self._committed = stored or 0
        return stored

    async def handle(self, batch: Batch) -> None:
        await self._write(self._rows(batch.events), batch.position)

    async def reset(self) -> None:
        await self._storage.reset()
        self._committed = 0

    async def resume_from(self, position: int) -> bool:
        """Another writer of this read model (the previous or next owner, for a moment)
        moved the stored checkpoint forward to ``position``: the storage holds this
        projection's content up to it (each batch is written only over the checkpoint it
        was read after, so the stored content is one chain of batches whoever wrote
        them, and the projection of a log prefix is the same whoever computes it).
        Nothing of it lives in this process but the checkpoint: take it and follow on."""
        self._committed = position
        self._storage.resume_at(position)
        return True

    async def check(self) -> None:
        """The periodic check (~1 s, busy or idle): the storage still holds our
        checkpoint. A FLUSHed or restarted Redis does not (the runner rebuilds it);
        neither does one another writer of this model moved on (the runner follows on
        from it, :meth:`resume_from`)."""
        found = await self._storage.checkpoint()
        if (found or 0) != self._committed:
            log.warning(
                "wallet read model (%s): stored checkpoint %s, this projection wrote %d",
                self._storage.kind,
                found,
                self._committed,
            )
            raise CheckpointConflict(self.name, self._committed, found)

    def _rows(self, events: Sequence[RecordedEvent]) -> list[TxRow]:
        decode = self._registry.decode
        return [tx_row(recorded, decode(recorded)) for recorded in events]

    async def _wallet_rows(self, wallet_id: str) -> list[TxRow]:
        return await wallet_rows(self._store, self._registry, wallet_id)

    async def _write(self, rows: Sequence[TxRow], new: int) -> None:
        """Write a batch and move the checkpoint to ``new``.

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
                    return
            raise
        self._committed = new

    async def advance(self, position: int) -> None:
        """Move the stored checkpoint to ``position``, past events that are not wallet
        events (the runner has scanned up to it): nothing else is written."""
        if position > self._committed:
            await self._write((), position)

    async def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Wipe the read model and replay every wallet event up to the log's current
        head; returns the number of events applied. ``progress(position, head)`` is
        called after each batch. Reads meanwhile show states of prefixes of the log, and
        :attr:`rebuilding` is true. Safe while following."""
        await self.open()
        return await self.runner.rebuild(progress)


class WalletReader:
    """The wallet read model as a process that does not write it reads it (an API
    process in services mode, where one worker runs the :class:`WalletProjection`).

    Reads go to the shared storage; a wallet it has lost is repaired from the log as the
    projection's own reads would be. Its position is the storage's checkpoint, looked at
    again while a read waits for a position (``min_position``)."""

    name = CONSUMER_NAME

    def __init__(
        self,
        store: EventStore,
        storage: WalletStorage,
        *,
        registry: EventRegistry | None = None,
        poll: float = 0.005,
    ) -> None:
        self._store = store
        self._storage = storage
        self._registry = registry or default_registry
        self._poll = poll
        self._position = 0
        storage.attach_log(self._wallet_rows)

    @property
    def storage(self) -> WalletStorage:
        return self._storage

    @property
    def position(self) -> int:
        """The storage's checkpoint when last looked at."""
        return self._position

    @property
    def rebuilding(self) -> bool:
        """True while the storage was last seen without its content (a flushed Redis
        being rebuilt by its writer): a missing wallet may exist."""
        return self._storage.suspect()

    async def start(self) -> None:
        await self._storage.open()
        with contextlib.suppress(ReadModelUnavailable):
            await self._look()

    async def stop(self) -> None:
        await self._storage.close()

    async def _look(self) -> int:
        # not the highest ever seen: a wiped storage being rebuilt is behind again, and
        # a read waiting for a position must wait for the rebuild to pass it
        self._position = await self._storage.checkpoint() or 0
        return self._position

    async def balance(self, wallet_id: str) -> WalletBalance | None:
        return await self._storage.balance(wallet_id)

    async def transactions(
        self,
        wallet_id: str,
        *,
        limit: int = 50,
        before_version: int | None = None,
        book: str | None = None,
    ) -> list[WalletTransaction]:
        check_page(limit, before_version, book)
        return await self._storage.transactions(wallet_id, limit, before_version, book)

    async def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until the storage's checkpoint reaches ``position``; False on timeout
        (or while the storage cannot be reached)."""
        deadline = asyncio.get_running_loop().time() + timeout
        pause = self._poll
        while True:
            try:
                if await self._look() >= position:
                    return True
            except ReadModelUnavailable:
                pass
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.1)

    async def _wallet_rows(self, wallet_id: str) -> list[TxRow]:
        return await wallet_rows(self._store, self._registry, wallet_id)


async def wallet_rows(store: EventStore, registry: EventRegistry, wallet_id: str) -> list[TxRow]:
    """One wallet's whole stream from the log, as rows (the storages' repairs)."""
    decode = registry.decode
    events = await store.read_stream(WALLET_STREAM_PREFIX + wallet_id)
    return [tx_row(recorded, decode(recorded)) for recorded in events]


def wallet_storage(settings: Settings) -> WalletStorage:
    """The storage the settings ask for: Redis when ``redis_url`` is set, else SQLite at
    ``read_model_path``."""
    if settings.redis_url:
        from .wallet_models.redis import RedisWalletStorage

        return RedisWalletStorage(settings.redis_url, prefix=settings.redis_prefix)
    path = settings.read_model_path or default_read_model_path(settings.store_url)
    return SqliteWalletStorage(path if path == ":memory:" else Path(path))


#: how often a read model other processes read moves its checkpoint over positions
#: without a wallet event (see :class:`_AdvancingCheckpoint`)
SHARED_ADVANCE_SECONDS = 0.05


def open_wallet_read_model(
    settings: Settings, store: EventStore, *, shared: bool = False
) -> WalletProjection:
    """The wallet projection the settings ask for: Redis when ``redis_url`` is set, else
    SQLite at ``read_model_path``. Not started: ``await projection.start()``.

    ``shared``: other processes read it (services mode's worker): its stored checkpoint
    also moves over positions without a wallet event, as they know no other."""
    advance = SHARED_ADVANCE_SECONDS if shared else None
    return WalletProjection(store, wallet_storage(settings), advance_every=advance)


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

    def _reader_is_a_read_model(reader: WalletReader) -> WalletReadModel:
        return reader
