"""What the use cases talk to, assembled once per app at startup, and the
read-your-writes wait they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..config import Settings
from ..consumers import ConsumerGroup
from ..eventstore import EventStore
from ..projections.odds_view import OddsView
from ..projections.tote_view import ToteView
from ..projections.wallets import WalletReadModel
from ..runtime.ports import Markets, MarketWalletBets, Races, WalletBets, Wallets
from ..velocity import VelocityBus
from .errors import ApiError

if TYPE_CHECKING:  # the HTTP layer's own parts, which it hands in
    from ..api.auth import KeyRing
    from ..api.metrics import Metrics
    from ..api.odds_push import OddsHub
    from ..api.push import BoardHub
    from ..sinks.connectors import ConnectorManager


class WalletView(WalletReadModel, Protocol):
    """The wallet read model as the use cases see it (the projection embedded, a reader
    of the shared storage in an API process of services mode)."""

    @property
    def rebuilding(self) -> bool: ...


@dataclass
class Services:
    """Embedded, ``writer``, ``wallets``, ``cashier``, ``markets`` and ``market_cashier``
    are the writers and the cashiers of this process; in an API process of services mode
    they are the router's ports (:mod:`oddstream.cluster.router`), which reach the owner
    of each command's partition (a wallet bet: the wallet's)."""

    settings: Settings
    store: EventStore
    writer: Races
    view: ToteView
    hub: BoardHub
    metrics: Metrics
    keys: KeyRing
    wallets: Wallets
    cashier: WalletBets
    wallet_view: WalletView
    #: everything in this process that follows the log (status in /readyz, /metrics)
    consumers: ConsumerGroup
    #: services mode: the deployment as this API process sees it (bus, workers, owners)
    cluster: ClusterReport | None = None
    #: committed market events by velocity tier (in process, or NATS in services mode):
    #: ``subscribe(tier_pattern("high"))`` and read (docs/fixed-odds.md)
    velocity_bus: VelocityBus | None = None
    #: embedded mode: the SQL sinks' connectors (Kafka Connect's REST API, health)
    connectors: ConnectorManager | None = None
    #: the fixed-odds markets' writer (the odds routes' commands)
    markets: Markets | None = None
    #: bets on markets paid from wallets (the markets' cashier of the wallet's owner)
    market_cashier: MarketWalletBets | None = None
    odds_view: OddsView | None = None
    #: the markets' changes to GraphQL subscribers
    odds_hub: OddsHub | None = None


class ClusterReport(Protocol):
    async def report(self) -> dict[str, Any]: ...


class _Readable(Protocol):
    @property
    def position(self) -> int: ...

    async def wait_for(self, position: int, timeout: float) -> bool: ...


async def await_reads(
    services: Services, view: _Readable, min_position: int | None, what: str = "reads"
) -> None:
    """Read-your-writes: wait (bounded) until ``view`` includes ``min_position``, else
    409 ``position_not_reached`` with the position it has reached."""
    if min_position is None:
        return
    if not await view.wait_for(min_position, services.settings.read_wait_seconds):
        raise ApiError(
            409,
            "position_not_reached",
            f"{what} include position {view.position}, not yet {min_position}; retry shortly",
            position=view.position,
        )
