"""The wallet read model in an SQLite database of its own (the embedded default).

Tables: ``wallet_balances`` (one row per wallet), ``wallet_transactions`` (one row per
event, primary key ``(wallet_id, version)``), ``read_model_checkpoints`` (``name`` →
position; this release's row is ``wallets:v2``, see :func:`checkpoint_row`) and
``read_model_versions`` (``name`` → the version of the tables, see
:data:`~.base.MODEL_VERSION`). A batch and its checkpoint commit in one transaction.

Everything runs on the event loop with the stdlib driver: a read is one indexed lookup
(a few microseconds), far cheaper than a hand-off to a thread and back (~120 µs here).
A write of a full batch (2,000 events) takes a few milliseconds and happens only while
the log is moving.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from ...eventstore import CheckpointConflict
from .base import (
    CONSUMER_NAME,
    MODEL_VERSION,
    ReadModelUnavailable,
    TxRow,
    WalletBalance,
    WalletTransaction,
    check_page,
    latest_per_wallet,
)

CHECKPOINT_NAME = "wallets"
_MAX_VERSION = (1 << 63) - 1

log = logging.getLogger(__name__)

# The model's version, per checkpoint name: tables of another version are dropped and
# created again (in one transaction) at open, and the projection rebuilds them from the log.
_VERSIONS = """
CREATE TABLE IF NOT EXISTS read_model_versions (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL
) WITHOUT ROWID
"""
_GET_VERSION = "SELECT version FROM read_model_versions WHERE name = ?"
_SET_VERSION = (
    "INSERT INTO read_model_versions (name, version) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET version = excluded.version"
)
_CHECKPOINTS = """
CREATE TABLE IF NOT EXISTS read_model_checkpoints (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL
) WITHOUT ROWID
"""
_DROP = ("DROP TABLE IF EXISTS wallet_transactions", "DROP TABLE IF EXISTS wallet_balances")
# the tables of MODEL_VERSION
_TABLES = (
    """
CREATE TABLE wallet_balances (
    wallet_id TEXT PRIMARY KEY,
    balance_cents INTEGER NOT NULL,
    in_play_cents INTEGER NOT NULL,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL
) WITHOUT ROWID
""",
    """
CREATE TABLE wallet_transactions (
    wallet_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL,
    type TEXT NOT NULL,
    amount_cents INTEGER,
    balance_cents INTEGER NOT NULL,
    in_play_cents INTEGER NOT NULL,
    bet_id TEXT,
    race_id TEXT,
    reason TEXT,
    reference TEXT,
    recorded_at TEXT NOT NULL,
    stake_cents INTEGER,
    book TEXT,
    market_id TEXT,
    PRIMARY KEY (wallet_id, version)
) WITHOUT ROWID
""",
    # a statement filtered by book: only stake lines have one
    "CREATE INDEX wallet_transactions_book ON wallet_transactions (wallet_id, book, version) "
    "WHERE book IS NOT NULL",
)

_BALANCE = (
    "SELECT balance_cents, in_play_cents, version, position FROM wallet_balances "
    "WHERE wallet_id = ?"
)
_COLUMNS = (
    "SELECT version, position, type, amount_cents, balance_cents, in_play_cents, bet_id, "
    "race_id, reason, reference, recorded_at, stake_cents, book, market_id "
    "FROM wallet_transactions "
)
_PAGE = _COLUMNS + "WHERE wallet_id = ? AND version < ? ORDER BY version DESC LIMIT ?"
# named: without statistics the planner prefers the primary key (no sort), which walks
# every line of the wallet to find a book's few
_BOOK_PAGE = (
    _COLUMNS.replace(
        "FROM wallet_transactions", "FROM wallet_transactions INDEXED BY wallet_transactions_book"
    )
    + "WHERE wallet_id = ? AND book = ? AND version < ? ORDER BY version DESC LIMIT ?"
)
_INSERT_TX = (
    "INSERT OR REPLACE INTO wallet_transactions (wallet_id, version, position, type, "
    "amount_cents, balance_cents, in_play_cents, bet_id, race_id, reason, reference, "
    "recorded_at, stake_cents, book, market_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_BALANCE = (
    "INSERT INTO wallet_balances (wallet_id, balance_cents, in_play_cents, version, position) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (wallet_id) DO UPDATE SET "
    "balance_cents = excluded.balance_cents, in_play_cents = excluded.in_play_cents, "
    "version = excluded.version, position = excluded.position"
)
_GET_CHECKPOINT = "SELECT position FROM read_model_checkpoints WHERE name = ?"
# this model's checkpoint rows of every release: ``wallets`` (before versions), ``wallets:vN``
_OTHER_CHECKPOINTS = (
    "SELECT 1 FROM read_model_checkpoints WHERE (name = ? OR name GLOB ?) AND name <> ?"
)
_DELETE_CHECKPOINTS = "DELETE FROM read_model_checkpoints WHERE name = ? OR name GLOB ?"
_SET_CHECKPOINT = (
    "INSERT INTO read_model_checkpoints (name, position) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET position = excluded.position"
)


def checkpoint_row(name: str) -> str:
    """The ``read_model_checkpoints`` row this release keeps its checkpoint in: named by
    :data:`MODEL_VERSION` (``wallets:v2``), so that a release of another version never
    finds it. A release before versions (a rollback) finds no ``wallets`` row in a file
    of this version, so it rebuilds the file in its own shape rather than following on
    from this release's checkpoint; the ``wallets`` row it then writes tells this release
    (at its next open) that the lines are not this version's."""
    return f"{name}:v{MODEL_VERSION}"


def _ensure_version(db: sqlite3.Connection, path: str, name: str) -> None:
    """Give the file the tables of :data:`MODEL_VERSION`, in one transaction.

    A file holding another version (one written before versions were recorded counts
    as version 1), or one that a release of another version wrote to since (a checkpoint
    row of this model other than :func:`checkpoint_row`'s: a release before versions
    does not know the version row, and would leave it saying this version), loses its
    wallet tables and its checkpoints, and gets empty tables of this version: never a
    table migrated in place. With no checkpoint, the projection rebuilds the content
    from the log (``rebuilding`` while it does)."""
    mine = checkpoint_row(name)
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(_VERSIONS)
        db.execute(_CHECKPOINTS)
        row = db.execute(_GET_VERSION, (name,)).fetchone()
        found = None if row is None else int(row[0])
        others = db.execute(_OTHER_CHECKPOINTS, (name, f"{name}:v*", mine)).fetchone()
        if found == MODEL_VERSION and others is not None:
            found = 1  # written since by a release that does not know versions (or another)
        if found != MODEL_VERSION:
            had = db.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'wallet_transactions'"
            ).fetchone()
            if had is not None:
                log.warning(
                    "wallet read model %s is version %s, this release keeps version %d: "
                    "rebuilding it from the log",
                    path,
                    found or 1,
                    MODEL_VERSION,
                )
            for statement in (*_DROP, *_TABLES):
                db.execute(statement)
            db.execute(_DELETE_CHECKPOINTS, (name, f"{name}:v*"))
            db.execute(_SET_VERSION, (name, MODEL_VERSION))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


class SqliteWalletStorage:
    """Wallet balances and transactions in an SQLite file (or ``":memory:"``)."""

    kind = "sqlite"

    def __init__(self, path: str | Path, *, checkpoint_name: str = CHECKPOINT_NAME) -> None:
        self._path = str(path)
        #: the model's name (its version row's)
        self._model = checkpoint_name
        #: the checkpoint's row, named by the model's version
        self._name = checkpoint_row(checkpoint_name)
        self._db: sqlite3.Connection | None = None
        self._cursor: sqlite3.Cursor | None = None

    @property
    def path(self) -> str:
        return self._path

    async def open(self) -> None:
        if self._db is not None:
            return
        try:
            if self._path != ":memory:" and not self._path.startswith("file:"):
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL loses the last commits on power loss, never consistency: the
            # checkpoint commits in the same transaction as the rows, so what survives
            # is a state some prefix of the log produced, and following resumes there.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            _ensure_version(db, self._path, self._model)
        except sqlite3.Error as exc:
            raise ReadModelUnavailable(f"cannot open {self._path}: {exc}") from exc
        self._db = db
        self._cursor = db.cursor()

    async def close(self) -> None:
        db, self._db, self._cursor = self._db, None, None
        if db is not None:
            db.close()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise ReadModelUnavailable("the wallet read model is not open")
        return self._db

    def suspect(self) -> bool:
        return False

    def resume_at(self, checkpoint: int) -> None:
        """Nothing to do: every read is answered from the file as it is now."""

    def attach_log(self, load: Callable[[str], Awaitable[Sequence[TxRow]]]) -> None:
        """Nothing to do: a transaction writes a wallet's rows whole, and nothing
        evicts them."""

    async def checkpoint(self) -> int | None:
        try:
            row = self._conn().execute(_GET_CHECKPOINT, (self._name,)).fetchone()
        except sqlite3.Error as exc:
            raise ReadModelUnavailable(str(exc)) from exc
        return None if row is None else int(row[0])

    async def apply(self, rows: Sequence[TxRow], expected: int, new: int) -> None:
        db = self._conn()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(_GET_CHECKPOINT, (self._name,)).fetchone()
                found = None if row is None else int(row[0])
                if (found or 0) != expected:
                    raise CheckpointConflict(CONSUMER_NAME, expected, found)
                if rows:
                    db.executemany(_INSERT_TX, rows)
                    db.executemany(
                        _UPSERT_BALANCE,
                        [
                            (r.wallet_id, r.balance_cents, r.in_play_cents, r.version, r.position)
                            for r in latest_per_wallet(rows).values()
                        ],
                    )
                db.execute(_SET_CHECKPOINT, (self._name, new))
                self._commit(db)
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise ReadModelUnavailable(f"wallet read model write failed: {exc}") from exc

    def _commit(self, db: sqlite3.Connection) -> None:
        db.execute("COMMIT")

    async def reset(self) -> None:
        db = self._conn()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM wallet_transactions")
                db.execute("DELETE FROM wallet_balances")
                db.execute("DELETE FROM read_model_checkpoints WHERE name = ?", (self._name,))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise ReadModelUnavailable(f"wallet read model reset failed: {exc}") from exc

    async def balance(self, wallet_id: str) -> WalletBalance | None:
        cursor = self._cursor
        if cursor is None:
            raise ReadModelUnavailable("the wallet read model is not open")
        row = cursor.execute(_BALANCE, (wallet_id,)).fetchone()
        if row is None:
            return None
        return WalletBalance(wallet_id, *row)

    async def transactions(
        self, wallet_id: str, limit: int, before_version: int | None, book: str | None = None
    ) -> list[WalletTransaction]:
        check_page(limit, before_version, book)
        before = _MAX_VERSION if before_version is None else before_version
        db = self._conn()
        if book is None:
            rows = db.execute(_PAGE, (wallet_id, before, limit)).fetchall()
        else:
            rows = db.execute(_BOOK_PAGE, (wallet_id, book, before, limit)).fetchall()
        return [
            WalletTransaction(
                version=r[0],
                position=r[1],
                type=r[2],
                amount_cents=r[3],
                balance_cents=r[4],
                in_play_cents=r[5],
                bet_id=r[6],
                race_id=r[7],
                reason=r[8],
                reference=r[9],
                recorded_at=r[10],
                stake_cents=r[11],
                book=r[12],
                market_id=r[13],
            )
            for r in rows
        ]
