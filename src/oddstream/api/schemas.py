"""Request bodies of the tote API (validated at the edge; money in integer cents)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from ..domain.tote.pools import PoolType

Id = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")]
RequestId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]
RunnerNo = Annotated[int, Field(ge=1, le=99)]
Cents = Annotated[int, Field(ge=-(10**12), le=10**12)]
#: ``?min_position=``: reads wait (bounded) until they include this log position
MinPosition = Query(None, ge=0, le=2**63 - 1, description="wait until reads include this")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunnerIn(Strict):
    number: RunnerNo
    name: Annotated[str, Field(min_length=1, max_length=60)]


class PoolIn(Strict):
    pool: PoolType
    takeout_bps: Annotated[int, Field(ge=0, le=9999, description="takeout in basis points")]
    profile: Annotated[str, Field(max_length=30)] = "us"
    min_stake_cents: Annotated[int, Field(ge=1, le=10**9)] = 100
    increment_cents: Annotated[int, Field(ge=1, le=10**9)] = 10
    no_winner: Annotated[str, Field(pattern="^(refund|carryover)$")] | None = None


class ScheduleRaceIn(Strict):
    race_id: Id | None = Field(None, description="generated when left out")
    meeting: Annotated[str, Field(min_length=1, max_length=80)]
    venue: Annotated[str, Field(min_length=1, max_length=80)]
    post_time: Annotated[str, Field(min_length=1, max_length=40)]
    runners: Annotated[list[RunnerIn], Field(min_length=2, max_length=40)]
    pools: Annotated[list[PoolIn], Field(min_length=1, max_length=6)]
    request_id: RequestId | None = None


class CommandIn(Strict):
    request_id: RequestId | None = None


class ScratchIn(CommandIn):
    runner: RunnerNo


class ResultIn(CommandIn):
    placings: Annotated[
        list[Annotated[list[RunnerNo], Field(min_length=1, max_length=40)]],
        Field(min_length=1, max_length=40, description="groups in finishing order"),
    ]


class AbandonIn(CommandIn):
    reason: Annotated[str, Field(min_length=1, max_length=200)] = "abandoned"


class BetIn(CommandIn):
    pool: PoolType = PoolType.WIN
    selection: Annotated[list[RunnerNo], Field(min_length=1, max_length=3)]
    stake_cents: Cents
    bet_id: Id | None = Field(None, description="generated when left out")
    wallet_id: Id | None = Field(
        None, description="pay from this wallet (a customer key's own wallet by default)"
    )


class BetBatchIn(CommandIn):
    bets: Annotated[list[BetIn], Field(min_length=1, max_length=10_000)]
    wallet_id: Id | None = Field(None, description="the wallet of every bet that names none")
