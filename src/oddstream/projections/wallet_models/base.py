"""What the wallet read models answer, and the port their storage adapters implement.

A storage adapter keeps three things: each wallet's latest balance, each wallet's
transactions (one per event of ``wallet-<id>``, keyed by stream version) and one
checkpoint (the global position the stored content includes). It writes a batch of
events and the new checkpoint atomically, and only if the stored checkpoint is the one
the projection expects; otherwise it raises
:class:`~oddstream.eventstore.CheckpointConflict` and writes nothing. The projection
(``projections/wallets.py``) decides what to do about it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple, Protocol

import msgspec

from ...eventstore import RecordedEvent

WALLET_STREAM_PREFIX = "wallet-"
#: The version of what the read model stores (2: each line's ``book`` and ``market_id``).
#: Storage holding another version is not read or migrated in place: it counts as
#: having no checkpoint, so the projection wipes it and rebuilds it from the log.
MODEL_VERSION = 2


class WalletBalance(msgspec.Struct, frozen=True, gc=False):
    """A wallet's money after its last event.

    ``version`` is the wallet stream's version (its last event's), ``position`` the
    global position of that event.
    """

    wallet_id: str
    balance_cents: int
    in_play_cents: int
    version: int
    position: int


class WalletTransaction(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One event of a wallet's stream, as a line of its statement.

    ``type`` is the event's class name (``Credited``, ``StakeReserved``, …);
    ``balance_cents`` / ``in_play_cents`` are the wallet's state after it (0 / 0 for
    ``WalletOpened``); ``stake_cents`` is set on settlements (``WinningsCredited``,
    ``StakeRefunded``, ``StakeLost``, where ``amount_cents`` is the money credited, or
    ``None`` for a loss); ``recorded_at`` is ISO-8601 UTC with microseconds. ``book`` is
    where a stake event's bet is (``race-<id>``, ``market-<id>``; ``None`` on lines
    without a bet); ``race_id`` is the race of a race book's bet and ``market_id`` the
    market of a market book's (each ``None`` otherwise).
    """

    version: int
    position: int
    type: str
    amount_cents: int | None
    balance_cents: int
    in_play_cents: int
    bet_id: str | None = None
    race_id: str | None = None
    reason: str | None = None
    reference: str | None = None
    recorded_at: str = ""
    stake_cents: int | None = None
    book: str | None = None
    market_id: str | None = None


class TxRow(NamedTuple):
    """One wallet event flattened for storage (what every adapter writes)."""

    wallet_id: str
    version: int
    position: int
    type: str
    amount_cents: int | None
    balance_cents: int
    in_play_cents: int
    bet_id: str | None
    race_id: str | None
    reason: str | None
    reference: str | None
    recorded_at: str
    stake_cents: int | None
    book: str | None = None
    market_id: str | None = None

    def transaction(self) -> WalletTransaction:
        return WalletTransaction(
            version=self.version,
            position=self.position,
            type=self.type,
            amount_cents=self.amount_cents,
            balance_cents=self.balance_cents,
            in_play_cents=self.in_play_cents,
            bet_id=self.bet_id,
            race_id=self.race_id,
            reason=self.reason,
            reference=self.reference,
            recorded_at=self.recorded_at,
            stake_cents=self.stake_cents,
            book=self.book,
            market_id=self.market_id,
        )


def tx_row(recorded: RecordedEvent, event: msgspec.Struct) -> TxRow:
    """Flatten a decoded wallet event (``event``) stored as ``recorded``."""
    get = getattr
    return TxRow(
        recorded.stream_id[len(WALLET_STREAM_PREFIX) :],
        recorded.version,
        recorded.position,
        type(event).__name__,
        get(event, "amount_cents", None),
        get(event, "balance_cents", 0),
        get(event, "in_play_cents", 0),
        get(event, "bet_id", None),
        get(event, "race_id", None),
        get(event, "reason", None),
        get(event, "reference", None),
        recorded.recorded_at.isoformat(timespec="microseconds"),
        get(event, "stake_cents", None),
        get(event, "book", None),
        get(event, "market_id", None),
    )


def latest_per_wallet(rows: Sequence[TxRow]) -> dict[str, TxRow]:
    """The last row of each wallet in ``rows`` (rows are in log order)."""
    latest: dict[str, TxRow] = {}
    for row in rows:
        latest[row.wallet_id] = row
    return latest


#: The wallet projection's name as a consumer (in a ``CheckpointConflict`` too).
CONSUMER_NAME = "wallet-read-model"


class ReadModelUnavailable(Exception):
    """The read model's storage failed or is unreachable (its error is ``__cause__``).
    For a write, the outcome is unknown: the projection re-reads the checkpoint."""


class WalletStorage(Protocol):
    """A storage adapter of the wallet read model (SQLite or Redis)."""

    #: short name for logs and metrics ("sqlite", "redis")
    kind: str

    async def open(self) -> None:
        """Connect / create the schema. Idempotent."""

    async def close(self) -> None: ...

    async def checkpoint(self) -> int | None:
        """The stored checkpoint; ``None`` if there is none (never written, or wiped)."""

    async def apply(self, rows: Sequence[TxRow], expected: int, new: int) -> None:
        """Write ``rows`` and move the checkpoint from ``expected`` to ``new``, atomically;
        :class:`~oddstream.eventstore.CheckpointConflict` (nothing written) if it is
        not at ``expected``. A missing checkpoint counts as 0."""

    async def reset(self) -> None:
        """Delete every balance, transaction and the checkpoint (before a rebuild)."""

    def resume_at(self, checkpoint: int) -> None:
        """Another writer of this read model stored ``checkpoint`` with batches this
        process did not write (the projection follows on from it): take it as the last
        checkpoint written, and forget what this process knew that those batches may
        have made stale."""

    async def balance(self, wallet_id: str) -> WalletBalance | None: ...

    async def transactions(
        self, wallet_id: str, limit: int, before_version: int | None, book: str | None = None
    ) -> list[WalletTransaction]:
        """Up to ``limit`` lines, newest first, with versions below ``before_version``;
        with ``book``, only the lines of that book's bets (:data:`BOOK_FILTER`)."""

    def suspect(self) -> bool:
        """True when the last look at the stored checkpoint (a read's, or
        :meth:`checkpoint`) found it missing or behind the last one written: the
        content was wiped or replaced, and the projection will rebuild it."""

    def attach_log(self, load: Callable[[str], Awaitable[Sequence[TxRow]]]) -> None:
        """Give the adapter ``load(wallet_id)``, the wallet's rows from the log in version
        order, to answer reads of a wallet whose stored content it finds missing (an
        evicted or deleted Redis key; all of it, when the log shows events the stored
        checkpoint has passed) and to repair it. The projection attaches it; an adapter
        that cannot lose part of a wallet (SQLite) ignores it."""


#: What a statement may be filtered by: a race's or a market's book, its id as the API's
#: ids are (a race's id, a market's UUID). Only these characters, so that the Redis model
#: can find a book's lines by the end of their stored members (``redis.py``).
BOOK_FILTER = r"^(?:race|market)-[A-Za-z0-9._:-]{1,100}$"
_BOOK_FILTER = re.compile(BOOK_FILTER.replace("$", r"\Z"))


def check_page(limit: int, before_version: int | None, book: str | None = None) -> None:
    """Refuse (``ValueError``, with the reason) a page that no read model serves."""
    if type(limit) is not int or not 1 <= limit <= 10_000:
        raise ValueError("limit must be an integer from 1 to 10000")
    if before_version is not None and (type(before_version) is not int or before_version < 1):
        raise ValueError("before_version must be a positive integer")
    if book is not None and (type(book) is not str or _BOOK_FILTER.match(book) is None):
        raise ValueError(
            "book must be race-<race id> or market-<market id>, the id 1-100 of A-Z a-z 0-9 . _ : -"
        )
