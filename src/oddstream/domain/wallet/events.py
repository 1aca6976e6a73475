"""Events of a wallet's stream (``wallet-<id>``): every attempted money movement.

Money is integer cents. Every event after the opening carries the wallet's state after
it (``balance_cents`` available to spend, ``in_play_cents`` held for open bets): the
wallet POC's "state log", folded into the log itself, so a transaction listing shows the
running balance and a reader never has to recompute it.
"""

from __future__ import annotations

import msgspec


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


class StakeReserved(msgspec.Struct, frozen=True, kw_only=True):
    """A bet's stake set aside from the balance while the race decides on the bet."""

    wallet_id: str
    bet_id: str
    race_id: str
    amount_cents: int
    balance_cents: int
    in_play_cents: int


class StakeRejected(msgspec.Struct, frozen=True, kw_only=True):
    """A bet refused for want of funds; nothing moved."""

    wallet_id: str
    bet_id: str
    race_id: str
    amount_cents: int
    balance_cents: int
    in_play_cents: int
    reason: str


class StakeReleased(msgspec.Struct, frozen=True, kw_only=True):
    """A reserved stake back to the balance: the race did not take the bet."""

    wallet_id: str
    bet_id: str
    race_id: str
    amount_cents: int
    balance_cents: int
    in_play_cents: int
    reason: str


class StakeCaptured(msgspec.Struct, frozen=True, kw_only=True):
    """The race took the bet: the reserved stake is now in its pool until settlement."""

    wallet_id: str
    bet_id: str
    race_id: str
    amount_cents: int
    balance_cents: int
    in_play_cents: int


class WinningsCredited(msgspec.Struct, frozen=True, kw_only=True):
    """A winning bet settled: its payout (stake included, as dividends are) credited."""

    wallet_id: str
    bet_id: str
    race_id: str
    amount_cents: int
    stake_cents: int
    balance_cents: int
    in_play_cents: int


class StakeRefunded(msgspec.Struct, frozen=True, kw_only=True):
    """A bet settled by refund (cancelled, scratched, abandoned, no winner)."""

    wallet_id: str
    bet_id: str
    race_id: str
    amount_cents: int
    stake_cents: int
    balance_cents: int
    in_play_cents: int
    reason: str


class StakeLost(msgspec.Struct, frozen=True, kw_only=True):
    """A losing bet settled: its stake stays in the pool."""

    wallet_id: str
    bet_id: str
    race_id: str
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
