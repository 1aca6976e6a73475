"""The tote API: races, bets, boards, dividends.

Commands answer with the global position of their events; reads take
``?min_position=P`` and wait (bounded) until the read model includes P.
A ``request_id`` makes a command idempotent: its retry returns the original answer.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from msgspec import Meta

from ..domain.tote.events import BetPlaced, PoolConfig, Runner
from ..domain.tote.pools import PoolType
from ..domain.tote.race import (
    AbandonRace,
    AmendResult,
    CloseBetting,
    DeclareDividends,
    DeclareResult,
    OpenBetting,
    PlaceBet,
    RaceCommand,
    RaceState,
    RaceStatus,
    ScheduleRace,
    ScratchRunner,
    ToteRejection,
)
from ..domain.wallet import WalletRejection
from ..projections.tote_view import BetView, BoardView, ToteView
from ..runtime.cashier import wallet_bet_request_id
from ..runtime.ids import new_id
from ..runtime.race_writer import CommandOutcome
from ..runtime.writer import RequestIdReused
from .auth import Principal, authorize_wallet, request_principal, require_admin
from .errors import ApiError, render
from .request_ids import (
    OWNER_SEPARATOR,
    derived_id,
    legacy_bet_id,
    legacy_ids,
    race_bet_id,
    request_key,
)
from .schemas import (
    AbandonIn,
    BetBatchIn,
    BetIn,
    BetRef,
    CommandIn,
    Id,
    MinPosition,
    ResultIn,
    ScheduleRaceIn,
    ScratchIn,
    json_writes,
)
from .services import Services, await_reads, services_of

router = APIRouter(tags=["tote"], dependencies=[Depends(json_writes)])
admin = [Depends(require_admin)]

_services = services_of


def _outcome(outcome: CommandOutcome, **extra: Any) -> dict[str, Any]:
    return {
        "position": outcome.last_position,
        "first_position": outcome.first_position,
        "stream_version": outcome.stream_version,
        "events": [type(e).__name__ for e in outcome.events],
        "repeated": outcome.repeated,
        **extra,
    }


async def _reader(request: Request, min_position: int | None) -> Services:
    """The services, once the read model includes ``min_position`` (read-your-writes)."""
    services = _services(request)
    await _wait(services, min_position)
    return services


async def _holding(services: Services, race_id: str) -> ToteView:
    """The view holding ``race_id``: the live one, or for a race it has let go (over,
    and older than the last few), one read from the race's stream."""
    if services.view.race(race_id) is not None:
        return services.view
    archived = await services.view.archived(race_id)
    if archived is None:
        raise ApiError(404, "race_not_found", f"no race {race_id}")
    return archived


async def _wait(services: Services, min_position: int | None) -> None:
    await await_reads(services, services.view, min_position)


async def _run(
    request: Request,
    command: RaceCommand,
    body: CommandIn | ScheduleRaceIn | None,
    **extra: Any,
) -> dict[str, Any]:
    services = _services(request)
    kind = type(command).__name__
    client_id = body.request_id if body else None
    outcome = await services.writer.execute(
        command,
        request_id=request_key(request_principal(request), kind, client_id),
        legacy_ids=legacy_ids(client_id, on_race=True),
    )
    services.metrics.commands.labels(type(command).__name__).inc()
    return _outcome(outcome, **extra)


def _race_summary(state: RaceState) -> dict[str, Any]:
    return {
        "race_id": state.race_id,
        "meeting": state.meeting,
        "venue": state.venue,
        "post_time": state.post_time,
        "status": state.status.value,
        "compat": state.contributions_from is not None,
        "runners": [
            {"number": n, "name": name, "scratched": n in state.scratched}
            for n, name in state.runners.items()
        ],
        "pools": [
            {
                "pool": kind.value,
                "takeout_bps": pool.config.takeout_bps,
                "profile": pool.profile.name,
                "min_stake_cents": pool.config.min_stake_cents,
                "increment_cents": pool.config.increment_cents,
                "gross_cents": pool.gross,
                "net_cents": pool.net,
            }
            for kind, pool in state.pools.items()
        ],
        "placings": [list(g) for g in state.placings],
        "bets": len(state.bets),
    }


# ----------------------------------------------------------------------------- reads


@router.get("/races", summary="Races with status and pool totals, oldest first")
async def list_races(
    request: Request,
    min_position: int | None = MinPosition,
    status: str | None = Query(
        None, max_length=200, description="comma-separated statuses, e.g. open,closed"
    ),
    limit: int | None = Query(None, ge=1, le=10_000, description="only the latest N races"),
) -> dict[str, Any]:
    services = await _reader(request, min_position)
    races = services.view.races()
    if status is not None:
        wanted = {s.strip() for s in status.split(",") if s.strip()}
        unknown = wanted - {s.value for s in RaceStatus}
        if unknown:
            raise ApiError(422, "invalid_request", f"unknown status: {sorted(unknown)}")
        races = [r for r in races if r.status.value in wanted]
    if limit is not None:
        races = races[-limit:]
    return {"position": services.view.position, "races": [_race_summary(s) for s in races]}


@router.get("/races/{race_id}", summary="One race")
async def get_race(
    request: Request, race_id: Id, min_position: int | None = MinPosition
) -> dict[str, Any]:
    services = await _reader(request, min_position)
    state = (await _holding(services, race_id)).race(race_id)
    assert state is not None
    return {"position": services.view.position, **_race_summary(state)}


@router.get("/races/{race_id}/odds", summary="The live odds board")
async def get_board(
    request: Request, race_id: Id, min_position: int | None = MinPosition
) -> dict[str, Any]:
    services = await _reader(request, min_position)
    board = (await _holding(services, race_id)).board(race_id)
    assert board is not None
    if board.position < services.view.position:  # a race read back: as of the live view
        board = BoardView(services.view.position, board.board)
    return msgspec.to_builtins(board)  # type: ignore[no-any-return,unused-ignore]


@router.get("/races/{race_id}/dividends", summary="Declared dividends")
async def get_dividends(
    request: Request, race_id: Id, min_position: int | None = MinPosition
) -> dict[str, Any]:
    services = await _reader(request, min_position)
    declared = (await _holding(services, race_id)).dividends(race_id)
    if declared is None:
        raise ApiError(404, "no_dividends", f"race {race_id} has no dividends declared yet")
    position, pools = declared
    return {
        "race_id": race_id,
        "position": position,
        "pools": [
            {
                **msgspec.to_builtins(p),
                "dividends": [
                    {"selection": list(sel), "dividend_cents": d} for sel, d in p.dividends
                ],
            }
            for p in pools
        ],
    }


def _may_see(principal: Principal | None, bet: BetView) -> bool:
    """A wallet's bet is its customer's (and the operator's) business only; to anyone
    else it is as unknown as a bet that does not exist. Cash bets are public."""
    if bet.wallet_id is None:
        return True
    return principal is not None and (principal.is_admin or principal.wallet_id == bet.wallet_id)


def _bet_answer(services: Services, bet: BetView) -> dict[str, Any]:
    return {"position": services.view.position, **msgspec.to_builtins(bet)}


def _named(principal: Principal | None, bet_id: str) -> list[str]:
    """The ids in the race a caller may mean by ``bet_id``: its own wallet's bet of that
    id first (a customer names its bets by the id it gave), then the id as given."""
    if principal is not None and principal.wallet_id is not None and OWNER_SEPARATOR not in bet_id:
        return [race_bet_id(principal.wallet_id, bet_id), bet_id]
    return [bet_id]


@router.get("/races/{race_id}/bets/{bet_id}", summary="A bet of a race: status and settlement")
async def get_race_bet(
    request: Request, race_id: Id, bet_id: BetRef, min_position: int | None = MinPosition
) -> dict[str, Any]:
    principal = request_principal(request)
    services = await _reader(request, min_position)
    try:
        holder = await _holding(services, race_id)
    except ApiError:
        raise ApiError(404, "unknown_bet", f"no bet {bet_id} in race {race_id}") from None
    for name in _named(principal, bet_id):
        bet = holder.bet(race_id, name)
        if bet is not None and _may_see(principal, bet):
            return _bet_answer(services, bet)
    raise ApiError(404, "unknown_bet", f"no bet {bet_id} in race {race_id}")


@router.get("/bets/{bet_id}", summary="A bet by id alone (when one race holds it)")
async def get_bet(
    request: Request, bet_id: BetRef, min_position: int | None = MinPosition
) -> dict[str, Any]:
    """Bet ids are unique per race only. This answers the caller's own wallet bet of
    that id if there is exactly one, else the one bet of that id the caller may see; when
    several races hold one, 409 ``ambiguous_bet`` names them (ask
    ``/races/{race_id}/bets/{bet_id}``)."""
    principal = request_principal(request)
    services = await _reader(request, min_position)
    names = _named(principal, bet_id)
    own = services.view.bets_named(names[0]) if len(names) > 1 else []
    if len(own) == 1:
        return _bet_answer(services, own[0])
    visible = [
        b for name in names for b in services.view.bets_named(name) if _may_see(principal, b)
    ]
    if not visible:
        raise ApiError(404, "unknown_bet", f"no bet {bet_id}")
    if len(visible) > 1:
        races = [b.race_id for b in visible]
        raise ApiError(
            409,
            "ambiguous_bet",
            f"bet {bet_id} names bets in {len(races)} races; ask /races/{{race_id}}/bets/{bet_id}",
            races=races,
        )
    return _bet_answer(services, visible[0])


# ----------------------------------------------------------------------------- bets


def _bet_command(
    race_id: str,
    body: BetIn | _BetBody,
    request_id: str | None,
    wallet_id: str | None,
    principal: Principal | None,
) -> PlaceBet:
    if body.bet_id is not None:
        bet_id = race_bet_id(wallet_id, body.bet_id)
    elif request_id is not None:  # a retry of the request names the same bet
        # (sender and wallet are part of it: two customers' "bet-1" are two bets)
        derived = derived_id(principal, f"bet/{race_id}/{wallet_id or '-'}", request_id)
        bet_id = race_bet_id(wallet_id, derived)
    else:
        bet_id = race_bet_id(wallet_id, new_id())
    return PlaceBet(
        race_id=race_id,
        bet_id=bet_id,
        pool=body.pool,
        selection=tuple(body.selection),
        stake_cents=body.stake_cents,
        wallet_id=wallet_id,
    )


def _bet_wallet(principal: Principal | None, named: str | None) -> str | None:
    """The wallet a bet is paid from: the one it names (which the key must be allowed to
    use), else a customer key's own; ``None`` for a cash bet (no key, an admin or a
    producer key, and no wallet named)."""
    if named is not None:
        authorize_wallet(principal, named)
        return named
    if principal is not None and not principal.is_admin:
        return principal.wallet_id
    return None


async def _execute_bet(
    services: Services,
    command: PlaceBet,
    request_id: str | None,
    principal: Principal | None,
    client_bet_id: str | None,
) -> CommandOutcome:
    """A cash bet goes to the race's writer; a wallet bet through the cashier, whose
    request id is the bet itself (wallet, race and bet id)."""
    wallet_id = command.wallet_id
    if wallet_id is None:
        key = request_key(principal, "PlaceBet", request_id)
        legacy = legacy_ids(request_id, on_race=True)
        return await services.writer.execute(command, request_id=key, legacy_ids=legacy)
    old = legacy_bet_id(command.race_id, wallet_id, client_bet_id, request_id)
    outcome = await services.cashier.place_bet(
        command, legacy_ids=() if old is None else (wallet_bet_request_id(wallet_id, old),)
    )
    services.metrics.wallet_bets.inc()
    return outcome


class _BetBody(msgspec.Struct, forbid_unknown_fields=True):
    """The hot path's view of :class:`BetIn` (same rules), decoded by msgspec: pydantic
    and FastAPI's dependency solving were a quarter of a bet's CPU at load."""

    selection: Annotated[list[Annotated[int, Meta(ge=1, le=99)]], Meta(min_length=1, max_length=3)]
    stake_cents: Annotated[int, Meta(ge=-(10**12), le=10**12)]
    pool: PoolType = PoolType.WIN
    bet_id: (
        Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")] | None
    ) = None
    request_id: (
        Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")] | None
    ) = None
    wallet_id: (
        Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")] | None
    ) = None


_bet_decoder = msgspec.json.Decoder(_BetBody)
_json = msgspec.json.Encoder()
_BET_SCHEMA = BetIn.model_json_schema(ref_template="#/components/schemas/{model}")
_BET_SCHEMA.pop("$defs", None)


@router.post(
    "/races/{race_id}/bets",
    status_code=201,
    summary="Place a bet",
    response_class=Response,
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _BET_SCHEMA}}}
    },
)
async def place_bet(request: Request, race_id: Id) -> Response:
    status, payload = await place_bet_json(
        _services(request), race_id, await request.body(), request_principal(request)
    )
    return Response(payload, status_code=status, media_type="application/json")


async def place_bet_json(
    services: Services, race_id: str, raw: bytes, principal: Principal | None = None
) -> tuple[int, bytes]:
    """Place a bet from a JSON body: ``(201, answer)``, or raises a refusal. Shared by the
    route above and the fast lane (``api/fastlane.py``) that serves it under load.

    Without a key the bet is a cash bet; with a customer key (or a ``wallet_id`` the key
    may use) its stake comes from the wallet, through the cashier."""
    try:
        body = _bet_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ApiError(422, "invalid_request", f"the body is not JSON: {exc}") from None
    wallet_id = _bet_wallet(principal, body.wallet_id)
    command = _bet_command(race_id, body, body.request_id, wallet_id, principal)
    outcome = await _execute_bet(services, command, body.request_id, principal, body.bet_id)
    services.metrics.bet_commands.inc()
    services.metrics.bets.inc()
    answer = _outcome(outcome, bet_id=_placed_id(outcome, command), race_id=race_id)
    return 201, _json.encode(answer)


def _placed_id(outcome: CommandOutcome, command: PlaceBet) -> str:
    """The id of the bet the outcome placed: a retry's original (it may predate the
    current id scheme), else the command's."""
    for event in outcome.events:
        if isinstance(event, BetPlaced):
            return event.bet_id
    return command.bet_id


@router.post(
    "/races/{race_id}/bets/batch",
    summary="Place up to 10,000 bets; each is accepted or rejected on its own",
)
async def place_bets(request: Request, race_id: Id, body: BetBatchIn) -> JSONResponse:
    services = _services(request)
    principal = request_principal(request)
    commands = []
    for index, bet in enumerate(body.bets):
        rid = bet.request_id or (f"{body.request_id}#{index}" if body.request_id else None)
        wallet_id = _bet_wallet(principal, bet.wallet_id or body.wallet_id)
        command = _bet_command(race_id, bet, rid, wallet_id, principal)
        commands.append((command, rid, bet.bet_id))
    outcomes = await asyncio.gather(
        *(_execute_bet(services, c, rid, principal, named) for c, rid, named in commands),
        return_exceptions=True,
    )
    results: list[dict[str, Any]] = []
    accepted = 0
    for (command, _, _), outcome in zip(commands, outcomes, strict=True):
        if isinstance(outcome, ToteRejection | WalletRejection | RequestIdReused):
            status, payload, _headers = render(outcome)
            results.append({"bet_id": command.bet_id, "status": status, **payload})
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            accepted += 1
            bet_id = _placed_id(outcome, command)
            results.append({"bet_id": bet_id, "status": 201, **_outcome(outcome)})
    services.metrics.bets.inc(accepted)
    return JSONResponse(
        {"accepted": accepted, "rejected": len(results) - accepted, "results": results},
        status_code=200,
    )


# ----------------------------------------------------------------------------- admin


@router.post("/races", status_code=201, dependencies=admin, summary="Schedule a race (admin)")
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


@router.post("/races/{race_id}/open", dependencies=admin, summary="Open betting (admin)")
async def open_betting(request: Request, race_id: Id, body: CommandIn | None = None) -> Any:
    return await _run(request, OpenBetting(race_id), body)


@router.post("/races/{race_id}/close", dependencies=admin, summary="Close betting (admin)")
async def close_betting(request: Request, race_id: Id, body: CommandIn | None = None) -> Any:
    return await _run(request, CloseBetting(race_id), body)


@router.post("/races/{race_id}/scratch", dependencies=admin, summary="Scratch a runner (admin)")
async def scratch(request: Request, race_id: Id, body: ScratchIn) -> Any:
    return await _run(request, ScratchRunner(race_id, body.runner), body)


def _placings(body: ResultIn) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(group) for group in body.placings)


@router.post("/races/{race_id}/result", dependencies=admin, summary="Declare the result (admin)")
async def declare_result(request: Request, race_id: Id, body: ResultIn) -> Any:
    return await _run(request, DeclareResult(race_id, _placings(body)), body)


@router.put("/races/{race_id}/result", dependencies=admin, summary="Amend the result (admin)")
async def amend_result(request: Request, race_id: Id, body: ResultIn) -> Any:
    return await _run(request, AmendResult(race_id, _placings(body)), body)


@router.post("/races/{race_id}/dividends", dependencies=admin, summary="Declare dividends (admin)")
async def declare_dividends(request: Request, race_id: Id, body: CommandIn | None = None) -> Any:
    return await _run(request, DeclareDividends(race_id), body)


@router.post("/races/{race_id}/abandon", dependencies=admin, summary="Abandon a race (admin)")
async def abandon(request: Request, race_id: Id, body: AbandonIn | None = None) -> Any:
    reason = body.reason if body else "abandoned"
    return await _run(request, AbandonRace(race_id, reason), body)
