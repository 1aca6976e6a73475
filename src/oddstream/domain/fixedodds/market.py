"""The market aggregate: state, ``decide()`` and ``evolve()`` (its commands are in
:mod:`.commands`, its events in :mod:`.events`).

``decide(state, command)`` returns the events a command causes or raises
:class:`FixedOddsRejection` with a stable code; it never changes ``state``.
``evolve(state, event)`` applies one event in place and returns the state, as the tote's
race does. See ``docs/fixed-odds.md`` for the lifecycle and every rule.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from .commands import (
    PROVIDER_COMMANDS,
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
from .events import (
    BetAccepted,
    BetSettled,
    MarketClosed,
    MarketCreated,
    MarketDeleted,
    MarketEvent,
    MarketLimits,
    MarketResulted,
    MarketResumed,
    MarketSuspended,
    MarketVoided,
    MoneyLine,
    Outcome,
    PricesUpdated,
)
from .formats import exact_str
from .odds import Odds
from .settlement import SettleReason, dead_heat_payout, win_payout

MAX_ID_LENGTH = 100
#: The largest stake a market's limits may allow ($100M, as the tote's).
MAX_STAKE_CENTS = 100_000_000_00
#: The largest liability per outcome a market's limits may allow ($10bn, the wallet's
#: largest single movement).
MAX_LIABILITY_CENTS = 10**12


class MarketStatus(enum.StrEnum):
    UNCREATED = "uncreated"
    OPEN = "open"
    SUSPENDED = "suspended"
    CLOSED = "closed"
    RESULTED = "resulted"
    VOIDED = "voided"
    DELETED = "deleted"


class BetRecord(msgspec.Struct, gc=False):
    """A bet as the market holds it: at the price it was accepted at."""

    outcome: Outcome
    stake: int
    price: Odds
    wallet_id: str | None
    settled: bool = False


@dataclass(slots=True)
class MarketState:
    market_id: str = ""
    game_id: str = ""
    provider: str = ""
    status: MarketStatus = MarketStatus.UNCREATED
    prices: dict[Outcome, Odds] = field(default_factory=dict)
    limits: MarketLimits | None = None
    bets: dict[str, BetRecord] = field(default_factory=dict)
    #: what the book pays if the outcome wins: the returns of its live bets, stakes included
    liability: dict[Outcome, int] = field(default_factory=dict)
    #: the stakes of live (unsettled) bets
    live_stakes: int = 0
    winners: tuple[Outcome, ...] = ()

    def book_result_if(self, outcome: Outcome) -> int:
        """What the book keeps (negative: loses) if ``outcome`` wins outright now."""
        return self.live_stakes - self.liability.get(outcome, 0)


# ----------------------------------------------------------------------------- decide


def _reject(code: str, message: str) -> FixedOddsRejection:
    return FixedOddsRejection(code, message)


def _require(state: MarketState, *allowed: MarketStatus, doing: str) -> None:
    if state.status not in allowed:
        raise _reject(
            "wrong_status", f"cannot {doing} market {state.market_id}: it is {state.status.value}"
        )


def _check_id(value: str, what: str) -> None:
    if not value or len(value) > MAX_ID_LENGTH:
        raise _reject("bad_market", f"{what} must be 1 to {MAX_ID_LENGTH} characters")


def _create(cmd: CreateMarket) -> list[MarketEvent]:
    _check_id(cmd.market_id, "the market id")
    _check_id(cmd.game_id, "the game id")
    _check_id(cmd.provider, "the provider")
    limits = cmd.limits
    amounts = (limits.min_stake_cents, limits.max_stake_cents, limits.max_liability_cents)
    if any(type(amount) is not int for amount in amounts):
        raise _reject("bad_limits", "limits are whole numbers of cents")
    if not 1 <= limits.min_stake_cents <= limits.max_stake_cents <= MAX_STAKE_CENTS:
        raise _reject(
            "bad_limits",
            f"stakes need 1 <= minimum <= maximum <= {MAX_STAKE_CENTS} cents",
        )
    if not 1 <= limits.max_liability_cents <= MAX_LIABILITY_CENTS:
        raise _reject("bad_limits", f"the liability limit must be 1 to {MAX_LIABILITY_CENTS} cents")
    return [
        MarketCreated(
            market_id=cmd.market_id,
            game_id=cmd.game_id,
            provider=cmd.provider,
            money_line=cmd.money_line,
            limits=limits,
        )
    ]


def _update(state: MarketState, cmd: UpdatePrices) -> list[MarketEvent]:
    _require(state, MarketStatus.OPEN, MarketStatus.SUSPENDED, doing="update the prices of")
    prices = cmd.money_line.prices()
    if prices.keys() != state.prices.keys():
        shape = "three-way" if Outcome.DRAW in state.prices else "two-way (no draw)"
        raise _reject("bad_money_line", f"market {state.market_id} is {shape}")
    if prices == state.prices:
        return []  # the prices it has: nothing to record
    return [PricesUpdated(market_id=state.market_id, money_line=cmd.money_line)]


def _check_stake(limits: MarketLimits, stake: int) -> None:
    if type(stake) is not int or stake <= 0:
        raise _reject("bad_amount", "the stake must be a whole number of cents above zero")
    if stake < limits.min_stake_cents:
        raise _reject("below_minimum", f"the minimum stake is {limits.min_stake_cents} cents")
    if stake > limits.max_stake_cents:
        raise _reject("stake_limit", f"the maximum stake is {limits.max_stake_cents} cents")


def _place_bet(state: MarketState, cmd: PlaceBet) -> list[MarketEvent]:
    if state.status is not MarketStatus.OPEN:
        if state.status is MarketStatus.SUSPENDED:
            raise _reject("market_suspended", f"market {state.market_id} is suspended")
        raise _reject("market_closed", f"market {state.market_id} is {state.status.value}")
    current = state.prices.get(cmd.outcome)
    if current is None:
        raise _reject("unknown_outcome", f"market {state.market_id} offers no {cmd.outcome}")
    assert state.limits is not None  # an open market was created with limits
    _check_stake(state.limits, cmd.stake_cents)
    if not cmd.bet_id or len(cmd.bet_id) > MAX_ID_LENGTH:
        raise _reject("bad_bet", f"a bet id is 1 to {MAX_ID_LENGTH} characters")
    if cmd.bet_id in state.bets:
        raise _reject("duplicate_bet", f"bet {cmd.bet_id} exists already")
    # The acceptance rule: taken at the current price when it is at least the price asked.
    if current.value < cmd.price.value:
        raise _reject(
            "price_worse",
            f"{cmd.outcome} is {exact_str(current)} now, below the {exact_str(cmd.price)} asked",
        )
    liability = state.liability.get(cmd.outcome, 0) + win_payout(cmd.stake_cents, current)
    if liability > state.limits.max_liability_cents:
        raise _reject(
            "liability_limit",
            f"the book pays at most {state.limits.max_liability_cents} cents if "
            f"{cmd.outcome} wins; this bet would take it to {liability}",
        )
    return [
        BetAccepted(
            market_id=state.market_id,
            bet_id=cmd.bet_id,
            outcome=cmd.outcome,
            stake_cents=cmd.stake_cents,
            requested=cmd.price,
            price=current,
            wallet_id=cmd.wallet_id,
        )
    ]


def _live_bets(state: MarketState) -> list[tuple[str, BetRecord]]:
    return [(bet_id, bet) for bet_id, bet in state.bets.items() if not bet.settled]


def _result(state: MarketState, cmd: ResultMarket) -> list[MarketEvent]:
    _require(state, MarketStatus.CLOSED, doing="result")
    winners = cmd.winners
    if not winners or len(set(winners)) != len(winners):
        raise _reject("bad_result", "a result names one or more distinct outcomes")
    for outcome in winners:
        if outcome not in state.prices:
            raise _reject("bad_result", f"market {state.market_id} offers no {outcome}")
    tied = len(winners)
    won = SettleReason.WON if tied == 1 else SettleReason.DEAD_HEAT
    settled: list[MarketEvent] = []
    stakes = paid = 0
    for bet_id, bet in _live_bets(state):
        payout = dead_heat_payout(bet.stake, bet.price, tied) if bet.outcome in winners else 0
        stakes += bet.stake
        paid += payout
        settled.append(
            BetSettled(
                market_id=state.market_id,
                bet_id=bet_id,
                payout_cents=payout,
                refund_cents=0,
                reason=won if bet.outcome in winners else SettleReason.LOST,
                wallet_id=bet.wallet_id,
            )
        )
    return [
        MarketResulted(
            market_id=state.market_id,
            winners=winners,
            stakes_cents=stakes,
            paid_cents=paid,
            book_cents=stakes - paid,
        ),
        *settled,
    ]


def _void(state: MarketState, cmd: VoidMarket) -> list[MarketEvent]:
    _require(state, MarketStatus.OPEN, MarketStatus.SUSPENDED, MarketStatus.CLOSED, doing="void")
    return [
        MarketVoided(market_id=state.market_id, reason=cmd.reason),
        *(
            BetSettled(
                market_id=state.market_id,
                bet_id=bet_id,
                payout_cents=0,
                refund_cents=bet.stake,
                reason=SettleReason.VOID,
                wallet_id=bet.wallet_id,
            )
            for bet_id, bet in _live_bets(state)
        ),
    ]


def decide(state: MarketState, command: MarketCommand) -> list[MarketEvent]:
    """The events ``command`` causes on the market in ``state``, or a
    :class:`FixedOddsRejection`."""
    if state.status is MarketStatus.DELETED:
        raise _reject("market_deleted", f"market {state.market_id} is deleted")
    if isinstance(command, CreateMarket):
        if state.status is not MarketStatus.UNCREATED:
            raise _reject("market_exists", f"market {state.market_id} exists already")
        return _create(command)
    if state.status is MarketStatus.UNCREATED:
        raise _reject("market_not_found", f"no market {command.market_id or '?'}")
    if isinstance(command, PROVIDER_COMMANDS) and command.provider != state.provider:
        raise _reject("not_owner", f"market {state.market_id} belongs to another provider")
    match command:
        case PlaceBet():
            return _place_bet(state, command)
        case UpdatePrices():
            return _update(state, command)
        case SuspendMarket():
            _require(state, MarketStatus.OPEN, doing="suspend")
            return [MarketSuspended(state.market_id)]
        case ResumeMarket():
            _require(state, MarketStatus.SUSPENDED, doing="resume")
            return [MarketResumed(state.market_id)]
        case CloseMarket():
            _require(state, MarketStatus.OPEN, MarketStatus.SUSPENDED, doing="close")
            return [MarketClosed(state.market_id)]
        case ResultMarket():
            return _result(state, command)
        case VoidMarket():
            return _void(state, command)
        case DeleteMarket():
            live = len(_live_bets(state))
            if live:
                raise _reject(
                    "live_bets",
                    f"market {state.market_id} has {live} unsettled bet(s): void it first",
                )
            return [MarketDeleted(state.market_id)]
    raise _reject("unknown_command", f"{type(command).__name__} is not a market command")


# ----------------------------------------------------------------------------- evolve


def evolve(state: MarketState, event: MarketEvent) -> MarketState:
    """Apply ``event`` to ``state`` (in place) and return it."""
    match event:
        case BetAccepted():
            payout = win_payout(event.stake_cents, event.price)
            state.bets[event.bet_id] = BetRecord(
                event.outcome, event.stake_cents, event.price, event.wallet_id
            )
            state.liability[event.outcome] = state.liability.get(event.outcome, 0) + payout
            state.live_stakes += event.stake_cents
        case BetSettled():
            bet = state.bets[event.bet_id]
            bet.settled = True
            state.liability[bet.outcome] -= win_payout(bet.stake, bet.price)
            state.live_stakes -= bet.stake
        case PricesUpdated():
            state.prices = event.money_line.prices()
        case MarketCreated():
            state.market_id = event.market_id
            state.game_id = event.game_id
            state.provider = event.provider
            state.status = MarketStatus.OPEN
            state.prices = event.money_line.prices()
            state.limits = event.limits
            state.liability = dict.fromkeys(state.prices, 0)
        case MarketSuspended():
            state.status = MarketStatus.SUSPENDED
        case MarketResumed():
            state.status = MarketStatus.OPEN
        case MarketClosed():
            state.status = MarketStatus.CLOSED
        case MarketResulted():
            state.status = MarketStatus.RESULTED
            state.winners = event.winners
        case MarketVoided():
            state.status = MarketStatus.VOIDED
        case MarketDeleted():
            state.status = MarketStatus.DELETED
    return state


def replay(events: Sequence[MarketEvent], state: MarketState | None = None) -> MarketState:
    """The state after ``events``, from scratch or from ``state``."""
    state = state or MarketState()
    for event in events:
        evolve(state, event)
    return state


def money_line_of(state: MarketState) -> MoneyLine:
    """The market's current prices as a money line."""
    return MoneyLine(
        home=state.prices[Outcome.HOME],
        away=state.prices[Outcome.AWAY],
        draw=state.prices.get(Outcome.DRAW),
    )
