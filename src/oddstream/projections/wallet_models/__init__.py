"""Storage adapters of the wallet read models (see ``projections/wallets.py``)."""

from .base import (
    CheckpointMismatch,
    ReadModelUnavailable,
    TxRow,
    WalletBalance,
    WalletStorage,
    WalletTransaction,
)
from .sqlite import SqliteWalletStorage

__all__ = [
    "CheckpointMismatch",
    "ReadModelUnavailable",
    "SqliteWalletStorage",
    "TxRow",
    "WalletBalance",
    "WalletStorage",
    "WalletTransaction",
]
