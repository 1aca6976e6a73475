"""What the HTTP layer talks to, assembled once per app at startup."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Settings
from ..eventstore import EventStore
from ..projections.tote_view import ToteView
from ..projections.wallets import WalletProjection
from ..runtime.cashier import Cashier
from ..runtime.race_writer import RaceWriter
from ..runtime.wallet_writer import WalletWriter
from .auth import KeyRing
from .metrics import Metrics
from .push import BoardHub


@dataclass
class Services:
    settings: Settings
    store: EventStore
    writer: RaceWriter
    view: ToteView
    hub: BoardHub
    metrics: Metrics
    keys: KeyRing
    wallets: WalletWriter
    cashier: Cashier
    wallet_view: WalletProjection
