"""Storage adapters of the wallet read models (see ``projections/wallets.py``)."""

from .base import (
    ReadModelUnavailable,
    TxRow,
    WalletBalance,
    WalletStorage,
    WalletTransaction,
)
from .sqlite import SqliteWalletStorage

__all__ = [
    "ReadModelUnavailable",
    "SqliteWalletStorage",
    "TxRow",
    "WalletBalance",
    "WalletStorage",
    "WalletTransaction",
]
