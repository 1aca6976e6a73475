"""Fixed-odds markets: a money line per game, exact odds in every format, bets at a
price, liability and limits, settlement. Pure.

See ``docs/fixed-odds.md``.
"""

from .commands import (
    CloseMarket,
    CreateMarket,
    DeleteMarket,
    MarketCommand,
    PlaceBet,
    ResultMarket,
    ResumeMarket,
    SuspendMarket,
    UpdatePrices,
    VoidMarket,
)
from .errors import FixedOddsRejection
from .events import ALL_EVENTS, MarketEvent, MarketLimits, MoneyLine, Outcome
from .market import MarketState, MarketStatus, decide, evolve, replay
from .odds import Odds

__all__ = [
    "ALL_EVENTS",
    "CloseMarket",
    "CreateMarket",
    "DeleteMarket",
    "FixedOddsRejection",
    "MarketCommand",
    "MarketEvent",
    "MarketLimits",
    "MarketState",
    "MarketStatus",
    "MoneyLine",
    "Odds",
    "Outcome",
    "PlaceBet",
    "ResultMarket",
    "ResumeMarket",
    "SuspendMarket",
    "UpdatePrices",
    "VoidMarket",
    "decide",
    "evolve",
    "replay",
]
