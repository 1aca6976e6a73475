"""A market's commands: what can be asked of it (decided by :func:`.market.decide`).

Every command but :class:`PlaceBet` comes from a provider and names it: only the
provider that created a market may change it.
"""

from __future__ import annotations

import msgspec

from .events import MarketLimits, MoneyLine, Outcome
from .odds import Odds


class CreateMarket(msgspec.Struct, frozen=True, kw_only=True):
    market_id: str
    game_id: str
    provider: str
    money_line: MoneyLine
    limits: MarketLimits


class UpdatePrices(msgspec.Struct, frozen=True, kw_only=True):
    """New prices for the outcomes the market offers (a two-way market stays two-way)."""

    market_id: str
    provider: str
    money_line: MoneyLine


class SuspendMarket(msgspec.Struct, frozen=True, kw_only=True):
    market_id: str
    provider: str


class ResumeMarket(msgspec.Struct, frozen=True, kw_only=True):
    market_id: str
    provider: str


class CloseMarket(msgspec.Struct, frozen=True, kw_only=True):
    market_id: str
    provider: str


class ResultMarket(msgspec.Struct, frozen=True, kw_only=True):
    """The winning outcome; several for a dead heat."""

    market_id: str
    provider: str
    winners: tuple[Outcome, ...]


class VoidMarket(msgspec.Struct, frozen=True, kw_only=True):
    market_id: str
    provider: str
    reason: str


class DeleteMarket(msgspec.Struct, frozen=True, kw_only=True):
    market_id: str
    provider: str


class PlaceBet(msgspec.Struct, frozen=True, kw_only=True):
    """A bet of ``stake_cents`` on ``outcome`` at ``price`` or better."""

    market_id: str
    bet_id: str
    outcome: Outcome
    stake_cents: int
    price: Odds
    wallet_id: str | None = None


MarketCommand = (
    CreateMarket
    | UpdatePrices
    | SuspendMarket
    | ResumeMarket
    | CloseMarket
    | ResultMarket
    | VoidMarket
    | DeleteMarket
    | PlaceBet
)

#: The commands only the market's provider may give.
PROVIDER_COMMANDS = (
    UpdatePrices,
    SuspendMarket,
    ResumeMarket,
    CloseMarket,
    ResultMarket,
    VoidMarket,
    DeleteMarket,
)
