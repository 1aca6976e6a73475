"""Running races (admin): schedule, open, close, scratch, result, dividends, abandon.

Commands answer with the global position of their events; a ``request_id`` makes a
command idempotent: its retry returns the original answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from ..application.bets import outcome_answer
from ..application.request_ids import derived_id, legacy_ids, request_key
from ..domain.tote.events import PoolConfig, Runner
from ..domain.tote.race import (
    AbandonRace,
    AmendResult,
    CloseBetting,
    DeclareDividends,
    DeclareResult,
    OpenBetting,
    RaceCommand,
    ScheduleRace,
    ScratchRunner,
)
from ..runtime.ids import new_id
from .auth import request_principal, require_admin
from .schemas import (
    AbandonIn,
    CommandIn,
    Id,
    JsonRoute,
    ResultIn,
    ScheduleRaceIn,
    ScratchIn,
    json_writes,
)
from .services import services_of

router = APIRouter(
    tags=["tote"],
    dependencies=[Depends(json_writes), Depends(require_admin)],
    route_class=JsonRoute,
)


async def _run(
    request: Request,
    command: RaceCommand,
    body: CommandIn | ScheduleRaceIn | None,
    **extra: Any,
) -> dict[str, Any]:
    services = services_of(request)
    kind = type(command).__name__
    client_id = body.request_id if body else None
    outcome = await services.writer.execute(
        command,
        request_id=request_key(request_principal(request), kind, client_id),
        legacy_ids=legacy_ids(client_id, on_race=True),
    )
    services.metrics.commands.labels(type(command).__name__).inc()
    return outcome_answer(outcome, **extra)


@router.post("/races", status_code=201, summary="Schedule a race (admin)")
async def schedule_race(request: Request, body: ScheduleRaceIn) -> dict[str, Any]:
    if body.race_id is not None:
        race_id = body.race_id
    elif body.request_id is not None:  # a retry schedules the same race, not another
        race_id = derived_id(request_principal(request), "race", body.request_id)[:12]
    else:
        race_id = new_id()[:12]
    command = ScheduleRace(
        race_id=race_id,
        meeting=body.meeting,
        venue=body.venue,
        post_time=body.post_time,
        runners=tuple(Runner(r.number, r.name) for r in body.runners),
        pools=tuple(
            PoolConfig(
                pool=p.pool,
                takeout_bps=p.takeout_bps,
                profile=p.profile,
                min_stake_cents=p.min_stake_cents,
                increment_cents=p.increment_cents,
                no_winner=p.no_winner,
            )
            for p in body.pools
        ),
    )
    return await _run(request, command, body, race_id=race_id)


@router.post("/races/{race_id}/open", summary="Open betting (admin)")
async def open_betting(request: Request, race_id: Id, body: CommandIn | None = None) -> Any:
    return await _run(request, OpenBetting(race_id), body)


@router.post("/races/{race_id}/close", summary="Close betting (admin)")
async def close_betting(request: Request, race_id: Id, body: CommandIn | None = None) -> Any:
    return await _run(request, CloseBetting(race_id), body)


@router.post("/races/{race_id}/scratch", summary="Scratch a runner (admin)")
async def scratch(request: Request, race_id: Id, body: ScratchIn) -> Any:
    return await _run(request, ScratchRunner(race_id, body.runner), body)


def _placings(body: ResultIn) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(group) for group in body.placings)


@router.post("/races/{race_id}/result", summary="Declare the result (admin)")
async def declare_result(request: Request, race_id: Id, body: ResultIn) -> Any:
    return await _run(request, DeclareResult(race_id, _placings(body)), body)


@router.put("/races/{race_id}/result", summary="Amend the result (admin)")
async def amend_result(request: Request, race_id: Id, body: ResultIn) -> Any:
    return await _run(request, AmendResult(race_id, _placings(body)), body)


@router.post("/races/{race_id}/dividends", summary="Declare dividends (admin)")
async def declare_dividends(request: Request, race_id: Id, body: CommandIn | None = None) -> Any:
    return await _run(request, DeclareDividends(race_id), body)


@router.post("/races/{race_id}/abandon", summary="Abandon a race (admin)")
async def abandon(request: Request, race_id: Id, body: AbandonIn | None = None) -> Any:
    reason = body.reason if body else "abandoned"
    return await _run(request, AbandonRace(race_id, reason), body)
