"""Placing bets: one, or a batch of them each accepted or refused on its own.

A bet without a key is a cash bet, written by the race's writer; with a customer key
(or a ``wallet_id`` the key may use) its stake comes from the wallet, through the
cashier. A ``request_id`` makes a retry name the same bet, and answer as the first
time did."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from ..domain.tote.events import BetPlaced
from ..domain.tote.pools import PoolType
from ..domain.tote.race import PlaceBet, ToteRejection
from ..domain.wallet import WalletRejection
from ..runtime.cashier import wallet_bet_request_id
from ..runtime.ids import new_id
from ..runtime.race_writer import CommandOutcome
from ..runtime.writer import RequestIdReused
from .access import Principal, authorize_wallet
from .bodies import Id, RequestId, decode
from .errors import render
from .request_ids import derived_id, legacy_bet_id, legacy_ids, race_bet_id, request_key
from .services import Services

RunnerNo = Annotated[int, Meta(ge=1, le=99)]
MAX_BATCH = 10_000


class BetBody(msgspec.Struct, forbid_unknown_fields=True):
    """A bet: the body of ``POST /races/{race_id}/bets`` and each of a batch's bets."""

    selection: Annotated[
        list[RunnerNo],
        Meta(min_length=1, max_length=3, description="runner numbers, in order for exotics"),
    ]
    stake_cents: Annotated[int, Meta(ge=-(10**12), le=10**12)]
    pool: PoolType = PoolType.WIN
    bet_id: Annotated[Id, Meta(description="generated when left out")] | None = None
    request_id: RequestId | None = None
    wallet_id: (
        Annotated[
            Id, Meta(description="pay from this wallet (a customer key's own wallet by default)")
        ]
        | None
    ) = None


class BetBatchBody(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /races/{race_id}/bets/batch``."""

    bets: Annotated[list[BetBody], Meta(min_length=1, max_length=MAX_BATCH)]
    request_id: RequestId | None = None
    wallet_id: Annotated[Id, Meta(description="the wallet of every bet that names none")] | None = (
        None
    )


bet_decoder = msgspec.json.Decoder(BetBody)
batch_decoder = msgspec.json.Decoder(BetBatchBody)


def outcome_answer(outcome: CommandOutcome, **extra: Any) -> dict[str, Any]:
    """What a command answers: the positions of its events and their kinds."""
    return {
        "position": outcome.last_position,
        "first_position": outcome.first_position,
        "stream_version": outcome.stream_version,
        "events": [type(e).__name__ for e in outcome.events],
        "repeated": outcome.repeated,
        **extra,
    }


def bet_command(
    race_id: str,
    body: BetBody,
    request_id: str | None,
    wallet_id: str | None,
    principal: Principal | None,
) -> PlaceBet:
    """The command of a bet, with its id in the race."""
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


def bet_wallet(principal: Principal | None, named: str | None) -> str | None:
    """The wallet a bet is paid from: the one it names (which the key must be allowed to
    use), else a customer key's own; ``None`` for a cash bet (no key, an admin or a
    producer key, and no wallet named)."""
    if named is not None:
        authorize_wallet(principal, named)
        return named
    if principal is not None and not principal.is_admin:
        return principal.wallet_id
    return None


async def execute_bet(
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


def placed_id(outcome: CommandOutcome, command: PlaceBet) -> str:
    """The id of the bet the outcome placed: a retry's original (it may predate the
    current id scheme), else the command's."""
    for event in outcome.events:
        if isinstance(event, BetPlaced):
            return event.bet_id
    return command.bet_id


async def place_bet(
    services: Services, race_id: str, body: BetBody, principal: Principal | None
) -> dict[str, Any]:
    """Place one bet; its answer, or raises the refusal."""
    wallet_id = bet_wallet(principal, body.wallet_id)
    command = bet_command(race_id, body, body.request_id, wallet_id, principal)
    outcome = await execute_bet(services, command, body.request_id, principal, body.bet_id)
    services.metrics.bet_commands.inc()
    services.metrics.bets.inc()
    return outcome_answer(outcome, bet_id=placed_id(outcome, command), race_id=race_id)


async def place_bet_json(
    services: Services, race_id: str, raw: bytes, principal: Principal | None
) -> dict[str, Any]:
    """:func:`place_bet` from a JSON body (a 422 when it is not a :class:`BetBody`)."""
    return await place_bet(services, race_id, decode(bet_decoder, raw), principal)


async def place_bets(
    services: Services, race_id: str, body: BetBatchBody, principal: Principal | None
) -> dict[str, Any]:
    """Place a batch of bets, concurrently; each is accepted or refused on its own (its
    result has the status and error body a single bet would have had). A batch's
    ``request_id`` gives each bet without one ``<request_id>#<index>``."""
    commands = []
    for index, bet in enumerate(body.bets):
        rid = bet.request_id or (f"{body.request_id}#{index}" if body.request_id else None)
        wallet_id = bet_wallet(principal, bet.wallet_id or body.wallet_id)
        command = bet_command(race_id, bet, rid, wallet_id, principal)
        commands.append((command, rid, bet.bet_id))
    outcomes = await asyncio.gather(
        *(execute_bet(services, c, rid, principal, named) for c, rid, named in commands),
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
            results.append(
                {"bet_id": placed_id(outcome, command), "status": 201, **outcome_answer(outcome)}
            )
    services.metrics.bets.inc(accepted)
    return {"accepted": accepted, "rejected": len(results) - accepted, "results": results}
