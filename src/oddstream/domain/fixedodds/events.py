"""Events of a fixed-odds market's stream (``market-<id>``): the facts the book records.

Money is integer cents; prices are exact :class:`~.odds.Odds`.
"""

from __future__ import annotations

import enum

import msgspec

from .odds import Odds


class Outcome(enum.StrEnum):
    """The outcomes of a money line."""

    HOME = "home"
    AWAY = "away"
    DRAW = "draw"


class MoneyLine(msgspec.Struct, frozen=True, kw_only=True):
    """A game's prices: home, away and, for a three-way game, draw (decimal odds)."""

    home: Odds
    away: Odds
    draw: Odds | None = None

    def prices(self) -> dict[Outcome, Odds]:
        """The price of each outcome offered."""
        offered = {Outcome.HOME: self.home, Outcome.AWAY: self.away}
        if self.draw is not None:
            offered[Outcome.DRAW] = self.draw
        return offered


class MarketLimits(msgspec.Struct, frozen=True, kw_only=True):
    """The book's limits on one market: a bet's stake from ``min_stake_cents`` to
    ``max_stake_cents``; what the book pays if any one outcome wins (the sum of its bets'
    returns, stakes included) at most ``max_liability_cents``."""

    max_stake_cents: int
    max_liability_cents: int
    min_stake_cents: int = 1


class MarketCreated(msgspec.Struct, frozen=True, kw_only=True):
    market_id: str
    game_id: str
    provider: str
    money_line: MoneyLine
    limits: MarketLimits


class PricesUpdated(msgspec.Struct, frozen=True, kw_only=True):
    market_id: str
    money_line: MoneyLine


class MarketSuspended(msgspec.Struct, frozen=True):
    market_id: str


class MarketResumed(msgspec.Struct, frozen=True):
    market_id: str


class MarketClosed(msgspec.Struct, frozen=True):
    market_id: str


class BetAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """A bet taken at ``price``, the market's price when it was placed, which is at least
    the ``requested`` price the customer accepted."""

    market_id: str
    bet_id: str
    outcome: Outcome
    stake_cents: int
    requested: Odds
    price: Odds
    wallet_id: str | None = None


class MarketResulted(msgspec.Struct, frozen=True, kw_only=True):
    """The result, and the book's account of it: the live ``stakes_cents`` it settles,
    ``paid_cents`` to winners and ``book_cents`` it keeps (``stakes − paid``, negative
    when it loses). One ``BetSettled`` per live bet follows. ``winners`` holds more than
    one outcome for a dead heat."""

    market_id: str
    winners: tuple[Outcome, ...]
    stakes_cents: int
    paid_cents: int
    book_cents: int


class MarketVoided(msgspec.Struct, frozen=True, kw_only=True):
    """Every live bet's stake is returned (one ``BetSettled`` each follows)."""

    market_id: str
    reason: str


class MarketDeleted(msgspec.Struct, frozen=True):
    market_id: str


class BetSettled(msgspec.Struct, frozen=True, kw_only=True):
    """A bet's one and only settlement: a payout (0 for a losing bet) or a refund; the
    shape of the tote's, which the wallet's ``SettleStake`` takes."""

    market_id: str
    bet_id: str
    payout_cents: int
    refund_cents: int
    reason: str
    wallet_id: str | None = None


MarketEvent = (
    MarketCreated
    | PricesUpdated
    | MarketSuspended
    | MarketResumed
    | MarketClosed
    | BetAccepted
    | MarketResulted
    | MarketVoided
    | MarketDeleted
    | BetSettled
)

ALL_EVENTS: tuple[type[msgspec.Struct], ...] = (
    MarketCreated,
    PricesUpdated,
    MarketSuspended,
    MarketResumed,
    MarketClosed,
    BetAccepted,
    MarketResulted,
    MarketVoided,
    MarketDeleted,
    BetSettled,
)
