"""Events of a wallet's stream (``wallet-<id>``): every attempted money movement.

Money is integer cents. Every event after the opening carries the wallet's state after
it (``balance_cents`` available to spend, ``in_play_cents`` held for open bets): the
wallet POC's "state log", folded into the log itself, so a transaction listing shows the
running balance and a reader never has to recompute it.

A stake event names the bet's ``book``: where the stake went, a tote race
(``race-<race id>``) or a fixed-odds market (``market-<market id>``). Version 1 of these
events named a ``race_id`` instead; the codec lifts them to a race book
(:func:`upcast_v1`), and ``race_id`` is still there to read, derived from the book
(``market_id`` likewise for a market's book).
"""

from __future__ import annotations

from typing import Any

import msgspec

RACE_BOOK = "race-"
MARKET_BOOK = "market-"
#: the version of the stake events' stored shape (1: ``race_id``; 2: ``book``)
STAKE_EVENTS_VERSION = 2


def race_book(race_id: str) -> str:
    """The book of a tote race's bets."""
    return f"{RACE_BOOK}{race_id}"


def market_book(market_id: str) -> str:
    """The book of a fixed-odds market's bets."""
    return f"{MARKET_BOOK}{market_id}"


def book_race(book: str) -> str | None:
    """The race of a race book, ``None`` for any other book."""
    return book[len(RACE_BOOK) :] if book.startswith(RACE_BOOK) else None


def book_market(book: str) -> str | None:
    """The market of a market book, ``None`` for any other book."""
    return book[len(MARKET_BOOK) :] if book.startswith(MARKET_BOOK) else None


def upcast_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 stake event (``race_id``) as version 2 (the race's book)."""
    lifted = dict(data)
    lifted["book"] = race_book(lifted.pop("race_id"))
    return lifted


class _Staked(msgspec.Struct, frozen=True, kw_only=True):
    """What every stake event has: the wallet, the bet and its book."""

    wallet_id: str
    bet_id: str
    book: str

    @property
    def race_id(self) -> str | None:
        """The race of a race book's bet (what version 1 stored), else ``None``."""
        return book_race(self.book)

    @property
    def market_id(self) -> str | None:
        """The market of a market book's bet, else ``None``."""
        return book_market(self.book)


class WalletOpened(msgspec.Struct, frozen=True, kw_only=True):
    wallet_id: str


class Credited(msgspec.Struct, frozen=True, kw_only=True):
    """Money in (a deposit)."""

    wallet_id: str
    amount_cents: int
    balance_cents: int
    in_play_cents: int
    reference: str | None = None


class Debited(msgspec.Struct, frozen=True, kw_only=True):
    """Money out (a withdrawal)."""

    wallet_id: str
    amount_cents: int
    balance_cents: int
    in_play_cents: int
    reference: str | None = None


class DebitRejected(msgspec.Struct, frozen=True, kw_only=True):
    """A withdrawal refused (the attempt is part of the record); nothing moved."""

    wallet_id: str
    amount_cents: int
    balance_cents: int
    in_play_cents: int
    reason: str
    reference: str | None = None


class StakeReserved(_Staked, frozen=True, kw_only=True):
    """A bet's stake set aside from the balance while the book decides on the bet."""

    amount_cents: int
    balance_cents: int
    in_play_cents: int


class StakeRejected(_Staked, frozen=True, kw_only=True):
    """A bet refused for want of funds; nothing moved."""

    amount_cents: int
    balance_cents: int
    in_play_cents: int
    reason: str


class StakeReleased(_Staked, frozen=True, kw_only=True):
    """A reserved stake back to the balance: the book (race or market) did not take the bet."""

    amount_cents: int
    balance_cents: int
    in_play_cents: int
    reason: str


class StakeCaptured(_Staked, frozen=True, kw_only=True):
    """The book took the bet: the reserved stake is in its pool (or with the market) until
    settlement."""

    amount_cents: int
    balance_cents: int
    in_play_cents: int


class WinningsCredited(_Staked, frozen=True, kw_only=True):
    """A winning bet settled: its payout (stake included, as dividends are) credited."""

    amount_cents: int
    stake_cents: int
    balance_cents: int
    in_play_cents: int


class StakeRefunded(_Staked, frozen=True, kw_only=True):
    """A bet settled by refund (cancelled, scratched, abandoned, no winner)."""

    amount_cents: int
    stake_cents: int
    balance_cents: int
    in_play_cents: int
    reason: str


class StakeLost(_Staked, frozen=True, kw_only=True):
    """A losing bet settled: its stake stays in the pool."""

    stake_cents: int
    balance_cents: int
    in_play_cents: int


WalletEvent = (
    WalletOpened
    | Credited
    | Debited
    | DebitRejected
    | StakeReserved
    | StakeRejected
    | StakeReleased
    | StakeCaptured
    | WinningsCredited
    | StakeRefunded
    | StakeLost
)

ALL_EVENTS: tuple[type[msgspec.Struct], ...] = (
    WalletOpened,
    Credited,
    Debited,
    DebitRejected,
    StakeReserved,
    StakeRejected,
    StakeReleased,
    StakeCaptured,
    WinningsCredited,
    StakeRefunded,
    StakeLost,
)

#: Events whose attempt was refused: recorded, but no money moved.
REFUSALS: tuple[type[msgspec.Struct], ...] = (DebitRejected, StakeRejected)

#: Events that name a bet's book (stored at :data:`STAKE_EVENTS_VERSION`).
STAKE_EVENTS: tuple[type[msgspec.Struct], ...] = (
    StakeReserved,
    StakeRejected,
    StakeReleased,
    StakeCaptured,
    WinningsCredited,
    StakeRefunded,
    StakeLost,
)
