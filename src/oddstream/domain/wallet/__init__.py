"""Wallets: deposits, withdrawals and the stakes of bets, as events. Pure.

See ``docs/wallets.md``.
"""

from .events import (
    ALL_EVENTS,
    REFUSALS,
    WalletEvent,
    book_market,
    book_race,
    market_book,
    race_book,
)
from .wallet import (
    INSUFFICIENT_FUNDS,
    CaptureStake,
    Credit,
    Debit,
    OpenWallet,
    ReleaseStake,
    ReserveStake,
    SettleStake,
    WalletCommand,
    WalletRejection,
    WalletState,
    decide,
    evolve,
    replay,
)

__all__ = [
    "ALL_EVENTS",
    "INSUFFICIENT_FUNDS",
    "REFUSALS",
    "CaptureStake",
    "Credit",
    "Debit",
    "OpenWallet",
    "ReleaseStake",
    "ReserveStake",
    "SettleStake",
    "WalletCommand",
    "WalletEvent",
    "WalletRejection",
    "WalletState",
    "book_market",
    "book_race",
    "decide",
    "evolve",
    "market_book",
    "race_book",
    "replay",
]
