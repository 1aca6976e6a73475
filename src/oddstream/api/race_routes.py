"""Reading the tote: races, boards, dividends, bets.

Reads take ``?min_position=P`` and wait (bounded) until the read model includes P, a
position a command answered (read-your-writes). A race the live read model has let go
(over, and older than the last few) is read back from its stream.
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, Query, Request

from ..application.access import Principal
from ..application.request_ids import OWNER_SEPARATOR, race_bet_id
from ..application.services import Services, await_reads
from ..domain.tote.race import RaceState, RaceStatus
from ..projections.tote_view import BetView, BoardView, ToteView
from .auth import request_principal
from .errors import ApiError
from .schemas import BetRef, Id, MinPosition
from .services import services_of

router = APIRouter(tags=["tote"])

_services = services_of


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

_STATUS = "(?:" + "|".join(s.value for s in RaceStatus) + ")"
#: ``?status=``: race statuses separated by commas (blanks around them and empty items
#: are ignored), as the document's pattern says
STATUS_LIST = f"^[ \\t]*{_STATUS}?[ \\t]*(?:,[ \\t]*{_STATUS}?[ \\t]*)*$"


@router.get("/races", summary="Races with status and pool totals, oldest first")
async def list_races(
    request: Request,
    min_position: int | None = MinPosition,
    status: str | None = Query(
        None,
        max_length=200,
        json_schema_extra={"pattern": STATUS_LIST},  # checked below, naming what is wrong
        description="comma-separated statuses, e.g. open,closed: "
        + ", ".join(s.value for s in RaceStatus),
    ),
    limit: int | None = Query(None, ge=1, le=10_000, description="only the latest N races"),
) -> dict[str, Any]:
    services = await _reader(request, min_position)
    races = services.view.races()
    if status is not None:
        wanted = {s.strip(" \t") for s in status.split(",") if s.strip(" \t")}
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
