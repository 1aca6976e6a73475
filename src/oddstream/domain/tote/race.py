"""The race aggregate: state, ``decide()`` and ``evolve()`` (its commands are in
:mod:`.commands`, re-exported here).

``decide(state, command)`` returns the events a command causes or raises
:class:`ToteRejection` with a precise reason; it never changes ``state``.
``evolve(state, event)`` applies one event. For O(1) bets it updates ``state`` in place
and returns it: callers that need the old state keep their own copy (replays never do).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from .commands import (
    AbandonRace,
    AddCarryover,
    AddContributions,
    AmendResult,
    CancelBet,
    CloseBetting,
    DeclareDividends,
    DeclareResult,
    OpenBetting,
    PlaceBet,
    RaceCommand,
    ScheduleRace,
    ScratchRunner,
)
from .dividends import PoolOutcome, pool_outcome
from .events import (
    BetCancelled,
    BetPlaced,
    BetSettled,
    BettingClosed,
    BettingOpened,
    CarryoverAdded,
    ContributionsAdded,
    DividendsDeclared,
    PoolConfig,
    PoolDividends,
    RaceAbandoned,
    RaceEvent,
    RaceScheduled,
    ResultAmended,
    ResultDeclared,
    RunnerScratched,
)
from .money import percent_of
from .pools import PoolType, Selection, selection_key
from .profiles import NoWinner, RulesProfile, profile_named

MAX_RUNNERS = 40
MAX_RACE_ID_LENGTH = 100
MAX_STAKE_CENTS = 100_000_000_00  # $100M: far above any bet, far below overflow worries


class ToteRejection(Exception):
    """A command the race refuses; ``code`` is stable, ``message`` says exactly why."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


# ----------------------------------------------------------------------------- state


class RaceStatus(enum.StrEnum):
    UNSCHEDULED = "unscheduled"
    SCHEDULED = "scheduled"
    OPEN = "open"
    CLOSED = "closed"
    RESULTED = "resulted"
    FINAL = "final"
    ABANDONED = "abandoned"


class BetRecord(msgspec.Struct, gc=False):
    """A bet as the race holds it (``selection`` canonical)."""

    pool: PoolType
    selection: Selection
    stake: int
    wallet_id: str | None
    settled: bool = False


@dataclass(slots=True)
class PoolState:
    """Running totals of one pool: kept on every bet, so a board read is O(runners)."""

    config: PoolConfig
    profile: RulesProfile
    gross: int = 0
    stakes: dict[Selection, int] = field(default_factory=dict)
    carry_in: int = 0

    @property
    def takeout(self) -> int:
        # a pool below zero (old per-bet withdrawals, applied as stored) has nothing to take
        return percent_of(max(0, self.gross + self.carry_in), self.config.takeout_bps)

    @property
    def net(self) -> int:
        return self.gross + self.carry_in - self.takeout


@dataclass(slots=True)
class RaceState:
    race_id: str = ""
    status: RaceStatus = RaceStatus.UNSCHEDULED
    meeting: str = ""
    venue: str = ""
    post_time: str = ""
    #: the one outside source whose contributions the race takes (``None``: none)
    contributions_from: str | None = None
    runners: dict[int, str] = field(default_factory=dict)
    scratched: set[int] = field(default_factory=set)
    pools: dict[PoolType, PoolState] = field(default_factory=dict)
    bets: dict[str, BetRecord] = field(default_factory=dict)
    placings: tuple[tuple[int, ...], ...] = ()
    declared: tuple[PoolDividends, ...] = ()

    @property
    def live_runners(self) -> list[int]:
        return [r for r in self.runners if r not in self.scratched]


# ----------------------------------------------------------------------------- decide

_OPEN = RaceStatus.OPEN
_QUINELLA = PoolType.QUINELLA
_SIZES = {kind: kind.runners_per_selection for kind in PoolType}


def _reject(code: str, message: str) -> ToteRejection:
    return ToteRejection(code, message)


def _require(state: RaceState, *allowed: RaceStatus, doing: str) -> None:
    if state.status not in allowed:
        if state.status is RaceStatus.UNSCHEDULED:
            raise _reject("race_not_found", f"race {state.race_id or '?'} is not scheduled")
        if doing == "bet" and state.status is RaceStatus.SCHEDULED:
            raise _reject("betting_not_open", f"betting on race {state.race_id} is not open yet")
        if doing == "bet":
            raise _reject(
                "betting_closed", f"betting on race {state.race_id} is {state.status.value}"
            )
        raise _reject(
            "wrong_status", f"cannot {doing} race {state.race_id}: it is {state.status.value}"
        )


def _check_runner(state: RaceState, runner: int) -> None:
    if runner not in state.runners:
        raise _reject("unknown_runner", f"runner {runner} is not in race {state.race_id}")
    if runner in state.scratched:
        raise _reject("scratched_runner", f"runner {runner} is scratched")


def _check_placings(state: RaceState, placings: tuple[tuple[int, ...], ...]) -> None:
    if not placings or any(not group for group in placings):
        raise _reject("bad_result", "a result needs at least one finisher and no empty places")
    seen: set[int] = set()
    for group in placings:
        for runner in group:
            _check_runner(state, runner)
            if runner in seen:
                raise _reject("bad_result", f"runner {runner} finishes twice")
            seen.add(runner)


def _schedule(cmd: ScheduleRace) -> list[RaceEvent]:
    if not cmd.race_id or len(cmd.race_id) > MAX_RACE_ID_LENGTH:
        raise _reject("bad_race", f"race id must be 1 to {MAX_RACE_ID_LENGTH} characters")
    if not 2 <= len(cmd.runners) <= MAX_RUNNERS:
        raise _reject("bad_race", f"a race needs 2 to {MAX_RUNNERS} runners")
    numbers = [r.number for r in cmd.runners]
    if len(set(numbers)) != len(numbers) or any(n < 1 for n in numbers):
        raise _reject("bad_race", "runner numbers must be positive and distinct")
    if not cmd.pools:
        raise _reject("bad_race", "a race must offer at least one pool")
    kinds = [p.pool for p in cmd.pools]
    if len(set(kinds)) != len(kinds):
        raise _reject("bad_race", "a pool type is offered twice")
    for p in cmd.pools:
        try:
            profile_named(p.profile)
        except ValueError as exc:
            raise _reject("bad_race", str(exc)) from None
        if not 0 <= p.takeout_bps < 10_000:
            raise _reject("bad_race", f"{p.pool} takeout must be 0 to 99.99%")
        if p.min_stake_cents < 1 or p.increment_cents < 1:
            raise _reject("bad_race", f"{p.pool} minimum stake and increment must be positive")
        if p.no_winner is not None and p.no_winner not in {n.value for n in NoWinner}:
            raise _reject("bad_race", f"{p.pool} no_winner must be refund or carryover")
        if p.pool.runners_per_selection > len(cmd.runners):
            raise _reject("bad_race", f"{p.pool} needs more runners than the race has")
    return [
        RaceScheduled(
            race_id=cmd.race_id,
            meeting=cmd.meeting,
            venue=cmd.venue,
            post_time=cmd.post_time,
            runners=cmd.runners,
            pools=cmd.pools,
            contributions_from=cmd.contributions_from,
        )
    ]


def _place_bet(state: RaceState, cmd: PlaceBet) -> list[RaceEvent]:
    # The hot path (every bet): checks ordered cheapest first, attributes read once.
    if state.status is not _OPEN:
        _require(state, _OPEN, doing="bet")
    kind = cmd.pool
    pool = state.pools.get(kind)
    if pool is None:
        raise _reject("pool_not_offered", f"race {state.race_id} offers no {kind} pool")
    stake = cmd.stake_cents
    config = pool.config
    if stake < config.min_stake_cents or stake % config.increment_cents or stake > MAX_STAKE_CENTS:
        if stake <= 0:
            raise _reject("bad_amount", "the stake must be more than zero")
        if stake < config.min_stake_cents:
            raise _reject(
                "below_minimum", f"the {kind} minimum stake is {config.min_stake_cents} cents"
            )
        if stake > MAX_STAKE_CENTS:
            raise _reject("bad_amount", "the stake is above the maximum")
        raise _reject(
            "bad_increment", f"{kind} stakes go in steps of {config.increment_cents} cents"
        )
    selection = cmd.selection
    size = _SIZES[kind]
    if len(selection) != size:
        raise _reject("bad_selection", f"a {kind} selection names {size} runner(s)")
    runners = state.runners
    scratched = state.scratched
    if size == 1:
        runner = selection[0]
        if runner not in runners or runner in scratched:
            _check_runner(state, runner)
    else:
        if len(set(selection)) != size:
            raise _reject("bad_selection", "a selection names the same runner twice")
        for runner in selection:
            if runner not in runners or runner in scratched:
                _check_runner(state, runner)
    if cmd.bet_id in state.bets:
        raise _reject("duplicate_bet", f"bet {cmd.bet_id} exists already")
    return [
        BetPlaced(
            race_id=state.race_id,
            bet_id=cmd.bet_id,
            pool=kind,
            selection=selection,
            stake_cents=stake,
            wallet_id=cmd.wallet_id,
        )
    ]


_CONTRIBUTION_TOO_LARGE = f"a contribution is at most {MAX_STAKE_CENTS} cents either way"


def _add_contributions(state: RaceState, cmd: AddContributions) -> list[RaceEvent]:
    # Item by item, each seeing the ones before it; refused items are recorded, not raised.
    if state.contributions_from is None or cmd.source != state.contributions_from:
        raise _reject(
            "no_contributions", f"race {state.race_id} takes no contributions from {cmd.source}"
        )
    _require(state, RaceStatus.OPEN, doing="bet")
    refs, runners, amounts = cmd.refs, cmd.runners, cmd.amounts_cents
    if not refs or not len(refs) == len(runners) == len(amounts):
        raise _reject("bad_batch", "refs, runners and amounts must be as many, and some")
    known = state.runners
    scratched = state.scratched
    stakes = state.pools[PoolType.WIN].stakes
    held: dict[int, int] = {}  # runner → stake after this command's items so far
    rejected: list[tuple[int, str, str]] = []
    refused: list[int] = []
    for index, (ref, runner, amount) in enumerate(zip(refs, runners, amounts, strict=True)):
        if (
            runner not in known
            or runner in scratched
            or not -MAX_STAKE_CENTS <= amount <= MAX_STAKE_CENTS
        ):
            if runner not in known:
                reason = ("unknown_runner", f"runner {runner} is not in race {state.race_id}")
            elif runner in scratched:
                reason = ("scratched_runner", f"runner {runner} is scratched")
            else:
                reason = ("bad_amount", _CONTRIBUTION_TOO_LARGE)
            rejected.append((ref, *reason))
            refused.append(index)
            continue
        current = held.get(runner)
        if current is None:
            current = stakes.get((runner,), 0)
        if current + amount < 0:
            rejected.append(
                (
                    ref,
                    "bad_amount",
                    f"withdrawing {-amount} cents from runner {runner}, which holds {current}",
                )
            )
            refused.append(index)
            continue
        held[runner] = current + amount
    if refused:
        skip = set(refused)
        kept = [i for i in range(len(refs)) if i not in skip]
        refs = tuple(refs[i] for i in kept)
        runners = tuple(runners[i] for i in kept)
        amounts = tuple(amounts[i] for i in kept)
    return [
        ContributionsAdded(
            race_id=state.race_id,
            source=cmd.source,
            refs=refs,
            runners=runners,
            amounts_cents=amounts,
            rejected=tuple(rejected),
        )
    ]


def _refunds(state: RaceState, bet_ids: Sequence[str], reason: str) -> list[RaceEvent]:
    return [
        BetSettled(
            race_id=state.race_id,
            bet_id=bet_id,
            payout_cents=0,
            refund_cents=state.bets[bet_id].stake,
            reason=reason,
            wallet_id=state.bets[bet_id].wallet_id,
        )
        for bet_id in bet_ids
    ]


def _live_bets(state: RaceState) -> list[str]:
    return [bet_id for bet_id, bet in state.bets.items() if not bet.settled]


def _declare_dividends(state: RaceState) -> list[RaceEvent]:
    outcomes: dict[PoolType, PoolOutcome] = {}
    for kind, pool in state.pools.items():
        rule = NoWinner(pool.config.no_winner) if pool.config.no_winner else None
        outcomes[kind] = pool_outcome(
            kind,
            pool.profile,
            pool.config.takeout_bps,
            pool.stakes,
            state.placings,
            carry_in=pool.carry_in,
            no_winner=rule,
        )
    settled: list[RaceEvent] = []
    paid: dict[PoolType, int] = dict.fromkeys(outcomes, 0)
    paid_by_selection: dict[tuple[PoolType, Selection], int] = {}
    for bet_id in _live_bets(state):
        bet = state.bets[bet_id]
        outcome = outcomes[bet.pool]
        if outcome.refund:
            settled.append(
                BetSettled(
                    race_id=state.race_id,
                    bet_id=bet_id,
                    payout_cents=0,
                    refund_cents=bet.stake,
                    reason="no_winner_refund",
                    wallet_id=bet.wallet_id,
                )
            )
            continue
        # a pool carried over pays nobody: its bets lose, their stakes go forward
        dividend = outcome.dividends.get(bet.selection)
        payout = bet.stake * dividend // outcome.price_base if dividend else 0
        paid[bet.pool] += payout
        key = (bet.pool, bet.selection)
        paid_by_selection[key] = paid_by_selection.get(key, 0) + payout
        settled.append(
            BetSettled(
                race_id=state.race_id,
                bet_id=bet_id,
                payout_cents=payout,
                refund_cents=0,
                reason="won" if payout else "lost",
                wallet_id=bet.wallet_id,
            )
        )
    declared = []
    for kind, outcome in outcomes.items():
        topup = 0
        for selection, allotted in outcome.allotted.items():
            shortfall = paid_by_selection.get((kind, selection), 0) - allotted
            if shortfall > 0:
                topup += math.ceil(shortfall)
        breakage = outcome.net - paid[kind] + topup if not outcome.refund else 0
        declared.append(
            PoolDividends(
                pool=kind,
                gross_cents=outcome.gross,
                carry_in_cents=outcome.carry_in,
                takeout_cents=outcome.takeout,
                net_cents=outcome.net,
                price_base_cents=outcome.price_base,
                dividends=tuple(sorted(outcome.dividends.items())),
                paid_cents=paid[kind],
                breakage_cents=breakage,
                topup_cents=topup,
                refunded=outcome.refund,
                carry_out_cents=outcome.carry_out,
            )
        )
    return [DividendsDeclared(state.race_id, tuple(declared)), *settled]


def decide(state: RaceState, command: RaceCommand) -> list[RaceEvent]:
    """The events ``command`` causes on the race in ``state``, or a ToteRejection."""
    match command:
        case PlaceBet():
            return _place_bet(state, command)
        case AddContributions():
            return _add_contributions(state, command)
        case ScheduleRace():
            if state.status is not RaceStatus.UNSCHEDULED:
                raise _reject("already_scheduled", f"race {command.race_id} exists already")
            return _schedule(command)
        case OpenBetting():
            _require(state, RaceStatus.SCHEDULED, doing="open betting on")
            return [BettingOpened(state.race_id)]
        case CancelBet():
            _require(state, RaceStatus.OPEN, doing="bet")
            bet = state.bets.get(command.bet_id)
            if bet is None:
                raise _reject("unknown_bet", f"no bet {command.bet_id} on race {state.race_id}")
            if bet.settled:
                raise _reject("bet_settled", f"bet {command.bet_id} is already settled")
            return [
                BetCancelled(state.race_id, command.bet_id),
                *_refunds(state, [command.bet_id], "cancelled"),
            ]
        case ScratchRunner():
            _require(
                state,
                RaceStatus.SCHEDULED,
                RaceStatus.OPEN,
                RaceStatus.CLOSED,
                doing="scratch a runner in",
            )
            _check_runner(state, command.runner)
            if len(state.live_runners) <= 1:
                raise _reject("last_runner", "cannot scratch the last runner; abandon instead")
            hit = [
                bet_id
                for bet_id, bet in state.bets.items()
                if not bet.settled and command.runner in bet.selection
            ]
            return [
                RunnerScratched(state.race_id, command.runner),
                *_refunds(state, hit, "scratched"),
            ]
        case CloseBetting():
            _require(state, RaceStatus.OPEN, doing="close betting on")
            return [BettingClosed(state.race_id)]
        case DeclareResult():
            _require(state, RaceStatus.CLOSED, doing="declare a result for")
            if state.contributions_from is not None:
                # its pool holds contributions, money the house does not hold: paying
                # dividends from it would pay out what was never staked here
                raise _reject("not_resultable", "a race taking contributions carries odds only")
            _check_placings(state, command.placings)
            return [ResultDeclared(state.race_id, command.placings)]
        case AmendResult():
            _require(state, RaceStatus.RESULTED, doing="amend the result of")
            _check_placings(state, command.placings)
            if command.placings == state.placings:
                raise _reject("no_change", "the amended result is the declared one")
            return [ResultAmended(state.race_id, command.placings)]
        case AddCarryover():
            _require(state, RaceStatus.SCHEDULED, RaceStatus.OPEN, doing="add a carryover to")
            if command.pool not in state.pools:
                raise _reject("pool_not_offered", f"race {state.race_id} offers no {command.pool}")
            if command.amount_cents <= 0:
                raise _reject("bad_amount", "a carryover must be more than zero")
            return [
                CarryoverAdded(
                    race_id=state.race_id,
                    pool=command.pool,
                    amount_cents=command.amount_cents,
                    from_race=command.from_race,
                )
            ]
        case DeclareDividends():
            _require(state, RaceStatus.RESULTED, doing="declare dividends for")
            return _declare_dividends(state)
        case AbandonRace():
            if state.status in (RaceStatus.FINAL, RaceStatus.ABANDONED):
                raise _reject("wrong_status", f"race {state.race_id} is {state.status.value}")
            _require(
                state,
                RaceStatus.SCHEDULED,
                RaceStatus.OPEN,
                RaceStatus.CLOSED,
                RaceStatus.RESULTED,
                doing="abandon",
            )
            carried = sum(p.carry_in for p in state.pools.values())
            return [
                RaceAbandoned(state.race_id, command.reason, carried),
                *_refunds(state, _live_bets(state), "abandoned"),
            ]
    raise _reject("unknown_command", f"{type(command).__name__} is not a race command")


# ----------------------------------------------------------------------------- evolve


def evolve(state: RaceState, event: RaceEvent) -> RaceState:
    """Apply ``event`` to ``state`` (in place) and return it."""
    match event:
        case BetPlaced():
            kind = event.pool
            stake = event.stake_cents
            pool = state.pools[kind]
            pool.gross += stake
            key = event.selection
            if kind is _QUINELLA:
                key = selection_key(kind, key)
            stakes = pool.stakes
            stakes[key] = stakes.get(key, 0) + stake
            state.bets[event.bet_id] = BetRecord(kind, key, stake, event.wallet_id)
        case ContributionsAdded():
            pool = state.pools[PoolType.WIN]
            stakes = pool.stakes
            for runner, amount in zip(event.runners, event.amounts_cents, strict=True):
                key = (runner,)
                stakes[key] = stakes.get(key, 0) + amount
            pool.gross += sum(event.amounts_cents)
        case BetSettled():
            bet = state.bets[event.bet_id]
            bet.settled = True
            if event.refund_cents and state.status is not RaceStatus.FINAL:
                # a refund takes the stake out of its pool (gross = stakes − refunds)
                pool = state.pools[bet.pool]
                pool.gross -= bet.stake
                pool.stakes[bet.selection] -= bet.stake
        case RaceScheduled():
            state.race_id = event.race_id
            state.status = RaceStatus.SCHEDULED
            state.meeting = event.meeting
            state.venue = event.venue
            state.post_time = event.post_time
            state.contributions_from = event.contributions_from
            state.runners = {r.number: r.name for r in event.runners}
            state.pools = {p.pool: PoolState(p, profile_named(p.profile)) for p in event.pools}
        case BettingOpened():
            state.status = RaceStatus.OPEN
        case BetCancelled():
            pass  # the BetSettled refund that follows moves the money
        case RunnerScratched():
            state.scratched.add(event.runner)
        case BettingClosed():
            state.status = RaceStatus.CLOSED
        case ResultDeclared() | ResultAmended():
            state.status = RaceStatus.RESULTED
            state.placings = event.placings
        case CarryoverAdded():
            state.pools[event.pool].carry_in += event.amount_cents
        case DividendsDeclared():
            state.status = RaceStatus.FINAL
            state.declared = event.pools
        case RaceAbandoned():
            state.status = RaceStatus.ABANDONED
    return state


def replay(events: Sequence[RaceEvent], state: RaceState | None = None) -> RaceState:
    """The state after ``events``, from scratch or from ``state``."""
    state = state or RaceState()
    for event in events:
        evolve(state, event)
    return state


__all__ = [
    "MAX_RACE_ID_LENGTH",
    "MAX_RUNNERS",
    "MAX_STAKE_CENTS",
    "AbandonRace",
    "AddCarryover",
    "AddContributions",
    "AmendResult",
    "BetRecord",
    "CancelBet",
    "CloseBetting",
    "DeclareDividends",
    "DeclareResult",
    "OpenBetting",
    "PlaceBet",
    "PoolState",
    "RaceCommand",
    "RaceState",
    "RaceStatus",
    "ScheduleRace",
    "ScratchRunner",
    "ToteRejection",
    "decide",
    "evolve",
    "replay",
]
