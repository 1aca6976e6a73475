"""Events of a race's stream (``race-<id>``): the facts the tote records.

Money is integer cents everywhere; selections are tuples of runner numbers, in finishing
order for exacta/trifecta and sorted for quinella.
"""

from __future__ import annotations

import msgspec

from .pools import PoolType


class Runner(msgspec.Struct, frozen=True):
    number: int
    name: str


class PoolConfig(msgspec.Struct, frozen=True, kw_only=True):
    """One pool offered on a race."""

    pool: PoolType
    takeout_bps: int
    profile: str = "us"
    min_stake_cents: int = 100
    increment_cents: int = 10
    #: overrides the profile's refund-or-carryover rule for an exotic without a winner
    no_winner: str | None = None


class RaceScheduled(msgspec.Struct, frozen=True, kw_only=True):
    race_id: str
    meeting: str
    venue: str
    post_time: str
    runners: tuple[Runner, ...]
    pools: tuple[PoolConfig, ...]
    #: the one outside source whose pool contributions the race takes (stored since v2;
    #: a v1 event's ``compat`` flag is upcast to it by the codec)
    contributions_from: str | None = None


class BettingOpened(msgspec.Struct, frozen=True):
    race_id: str


class BetPlaced(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    race_id: str
    bet_id: str
    pool: PoolType
    selection: tuple[int, ...]
    stake_cents: int
    wallet_id: str | None = None


class ContributionsAdded(msgspec.Struct, frozen=True, kw_only=True):
    """Stakes from the outside source ``source`` added to the win pool, as parallel
    lists: item ``i`` is the source's entry ``refs[i]``, ``amounts_cents[i]`` on runner
    ``runners[i]`` (negative withdraws, zero changes nothing). ``rejected`` holds
    ``(ref, code, message)`` of the items the race refused, so the answer is part of
    the record. No bet of the house stands behind a contribution: nothing is settled
    for it."""

    race_id: str
    source: str
    refs: tuple[int, ...]
    runners: tuple[int, ...]
    amounts_cents: tuple[int, ...]
    rejected: tuple[tuple[int, str, str], ...] = ()


class BetCancelled(msgspec.Struct, frozen=True):
    race_id: str
    bet_id: str


class RunnerScratched(msgspec.Struct, frozen=True):
    race_id: str
    runner: int


class BettingClosed(msgspec.Struct, frozen=True):
    race_id: str


class ResultDeclared(msgspec.Struct, frozen=True):
    race_id: str
    placings: tuple[tuple[int, ...], ...]


class ResultAmended(msgspec.Struct, frozen=True):
    race_id: str
    placings: tuple[tuple[int, ...], ...]


class CarryoverAdded(msgspec.Struct, frozen=True, kw_only=True):
    """A carryover from an earlier pool taken into one of this race's pools."""

    race_id: str
    pool: PoolType
    amount_cents: int
    from_race: str


class PoolDividends(msgspec.Struct, frozen=True, kw_only=True):
    """One pool's declared outcome; ``dividends`` are per ``price_base_cents``."""

    pool: PoolType
    gross_cents: int
    carry_in_cents: int
    takeout_cents: int
    net_cents: int
    price_base_cents: int
    dividends: tuple[tuple[tuple[int, ...], int], ...]
    paid_cents: int
    breakage_cents: int
    topup_cents: int
    refunded: bool
    carry_out_cents: int


class DividendsDeclared(msgspec.Struct, frozen=True):
    race_id: str
    pools: tuple[PoolDividends, ...]


class BetSettled(msgspec.Struct, frozen=True, kw_only=True):
    """A bet's one and only settlement: a payout (0 for a losing bet) or a refund."""

    race_id: str
    bet_id: str
    payout_cents: int
    refund_cents: int
    reason: str
    wallet_id: str | None = None


class RaceAbandoned(msgspec.Struct, frozen=True):
    """Every live bet is refunded; carried-in amounts carry on (``carry_out_cents``)."""

    race_id: str
    reason: str
    carry_out_cents: int = 0


RaceEvent = (
    RaceScheduled
    | BettingOpened
    | BetPlaced
    | ContributionsAdded
    | BetCancelled
    | RunnerScratched
    | BettingClosed
    | ResultDeclared
    | ResultAmended
    | CarryoverAdded
    | DividendsDeclared
    | BetSettled
    | RaceAbandoned
)

ALL_EVENTS: tuple[type[msgspec.Struct], ...] = (
    RaceScheduled,
    BettingOpened,
    BetPlaced,
    ContributionsAdded,
    BetCancelled,
    RunnerScratched,
    BettingClosed,
    ResultDeclared,
    ResultAmended,
    CarryoverAdded,
    DividendsDeclared,
    BetSettled,
    RaceAbandoned,
)
