"""The race's commands: what can be asked of a race (decided by :func:`.race.decide`)."""

from __future__ import annotations

import msgspec

from .events import PoolConfig, Runner
from .pools import PoolType


class ScheduleRace(msgspec.Struct, frozen=True, kw_only=True):
    race_id: str
    meeting: str
    venue: str
    post_time: str
    runners: tuple[Runner, ...]
    pools: tuple[PoolConfig, ...]
    #: the one outside source whose pool contributions the race takes (:class:`AddContributions`)
    contributions_from: str | None = None


class OpenBetting(msgspec.Struct, frozen=True):
    race_id: str


class PlaceBet(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    race_id: str
    bet_id: str
    pool: PoolType
    selection: tuple[int, ...]
    stake_cents: int
    wallet_id: str | None = None


class AddContributions(msgspec.Struct, frozen=True, kw_only=True):
    """Stakes from an outside source added to the win pool without bets of the house
    behind them (what another system's bettors staked), as parallel lists: item ``i``
    is the source's entry ``refs[i]``, ``amounts_cents[i]`` on runner ``runners[i]``
    (negative withdraws, zero changes nothing but is recorded). Each item is decided on
    its own, in order, seeing the ones before it."""

    race_id: str
    source: str
    refs: tuple[int, ...]
    runners: tuple[int, ...]
    amounts_cents: tuple[int, ...]


class CancelBet(msgspec.Struct, frozen=True):
    race_id: str
    bet_id: str


class ScratchRunner(msgspec.Struct, frozen=True):
    race_id: str
    runner: int


class CloseBetting(msgspec.Struct, frozen=True):
    race_id: str


class DeclareResult(msgspec.Struct, frozen=True):
    race_id: str
    placings: tuple[tuple[int, ...], ...]


class AmendResult(msgspec.Struct, frozen=True):
    race_id: str
    placings: tuple[tuple[int, ...], ...]


class AddCarryover(msgspec.Struct, frozen=True, kw_only=True):
    race_id: str
    pool: PoolType
    amount_cents: int
    from_race: str


class DeclareDividends(msgspec.Struct, frozen=True):
    race_id: str


class AbandonRace(msgspec.Struct, frozen=True):
    race_id: str
    reason: str


RaceCommand = (
    ScheduleRace
    | OpenBetting
    | PlaceBet
    | AddContributions
    | CancelBet
    | ScratchRunner
    | CloseBetting
    | DeclareResult
    | AmendResult
    | AddCarryover
    | DeclareDividends
    | AbandonRace
)

__all__ = [
    "AbandonRace",
    "AddCarryover",
    "AddContributions",
    "AmendResult",
    "CancelBet",
    "CloseBetting",
    "DeclareDividends",
    "DeclareResult",
    "OpenBetting",
    "PlaceBet",
    "RaceCommand",
    "ScheduleRace",
    "ScratchRunner",
]
