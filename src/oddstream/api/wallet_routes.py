"""The wallet API, in the wallet POC's shapes.

``POST /wallet/{id}/credit`` and ``/debit`` take ``{"amount": 5}`` (currency units, at
most two decimals: 5 is $5.00) or ``{"amount_cents": 500}``; an optional ``request_id``
makes a retry return the original answer. An overdraft answers 409 and is recorded as a
rejected debit. ``GET /wallet/{id}/balance`` and ``GET /wallet/{id}/transactions``
(newest first, paged with ``before``) read the wallet read model; ``?min_position=``
waits until it includes a position a command answered.

Who may: admin keys any wallet (credit only by admin); customer keys their own wallet
(read, debit); producer keys none. See ``auth.py`` and ``compat_access.py``.

The functions ``*_json`` do the work for both the documented routes and the fast lane
(``fastlane.py``), which serves them without the framework under load.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from msgspec import Meta
from pydantic import BaseModel, ConfigDict, Field

from ..domain.wallet import Credit, Debit, WalletRejection
from ..domain.wallet.events import DebitRejected
from ..domain.wallet.wallet import MAX_AMOUNT_CENTS
from ..projections.wallet_models.base import ReadModelUnavailable
from ..runtime.writer import CommandOutcome
from .auth import Principal, authorize_wallet, request_principal
from .errors import ApiError
from .request_ids import legacy_ids, request_key
from .schemas import FreeText, Id, MinPosition, RequestId, check_text, json_writes
from .services import Services, await_reads, services_of

router = APIRouter(tags=["wallets"], dependencies=[Depends(json_writes)])

_CENT = Decimal("0.01")
_json = msgspec.json.Encoder()
MAX_PAGE = 500


class _MoneyBody(msgspec.Struct, forbid_unknown_fields=True):
    amount: Decimal | None = None
    amount_cents: Annotated[int, Meta(ge=1, le=MAX_AMOUNT_CENTS)] | None = None
    request_id: (
        Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")] | None
    ) = None
    reference: Annotated[str, Meta(min_length=1, max_length=200)] | None = None

    def __post_init__(self) -> None:
        if self.reference is not None:
            try:
                check_text(self.reference)
            except ValueError as exc:  # msgspec reports it as a ValidationError
                raise ValueError(f"reference: {exc}") from None


_money_decoder = msgspec.json.Decoder(_MoneyBody)


class MoneyIn(BaseModel):
    """A credit or debit (the schema the docs show; the hot path decodes with msgspec)."""

    model_config = ConfigDict(extra="forbid")
    amount: Annotated[
        Decimal | None,
        Field(gt=0, le=MAX_AMOUNT_CENTS // 100, description="currency units, ≤ 2 decimals"),
    ] = None
    amount_cents: Annotated[int | None, Field(ge=1, le=MAX_AMOUNT_CENTS)] = None
    request_id: RequestId | None = None
    reference: Annotated[FreeText | None, Field(min_length=1, max_length=200)] = None


def money(cents: int) -> Decimal:
    """Cents as currency units with two decimals (for messages)."""
    return (Decimal(cents) / 100).quantize(_CENT)


def units(cents: int) -> msgspec.Raw:
    """Cents as a JSON number of currency units with two decimals (``1250`` → ``12.50``),
    exact, for answers (what the POC's clients read). Formatted directly: a Decimal per
    field cost more than the rest of the answer."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return msgspec.Raw(f"{sign}{whole}.{part:02d}".encode())


def _cents(body: _MoneyBody) -> int:
    if (body.amount is None) == (body.amount_cents is None):
        raise ApiError(422, "invalid_request", "give exactly one of amount and amount_cents")
    if body.amount_cents is not None:
        return body.amount_cents
    assert body.amount is not None
    return cents_of(body.amount)


def cents_of(amount: Decimal) -> int:
    """Exact cents of a decimal amount in currency units, or a 422 saying why not.

    Done on the digits and exponent, not with decimal arithmetic, which rounds to the
    context's 28 digits (``5.000…0001`` would pass as 5.00) and overflows on exponents
    like ``1e999999``."""
    if not amount.is_finite() or amount <= 0:
        raise ApiError(422, "bad_amount", "the amount must be a number above zero")
    if amount > MAX_AMOUNT_CENTS // 100:
        raise ApiError(422, "bad_amount", f"the amount is above {money(MAX_AMOUNT_CENTS)}")
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite
    significant = list(digits)
    while exponent < -2 and significant and significant[-1] == 0:
        significant.pop()
        exponent += 1
    if exponent < -2:
        raise ApiError(422, "bad_amount", "the amount has more than two decimal places")
    # amount ≤ 10^10 here, so the exponent is small and the integer below is too
    return int("".join(map(str, significant)) or "0") * 10 ** (exponent + 2)


def _decode(raw: bytes) -> _MoneyBody:
    try:
        return _money_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ApiError(422, "invalid_request", f"the body is not JSON: {exc}") from None


def _answer(wallet_id: str, outcome: CommandOutcome) -> dict[str, Any]:
    event: Any = outcome.events[-1] if outcome.events else None
    body: dict[str, Any] = {
        "wallet_id": wallet_id,
        "position": outcome.last_position,
        "version": outcome.stream_version,
        "repeated": outcome.repeated,
    }
    if event is not None:
        body.update(
            transaction=type(event).__name__,
            amount=units(event.amount_cents),
            amount_cents=event.amount_cents,
            balance=units(event.balance_cents),
            balance_cents=event.balance_cents,
            in_play_cents=event.in_play_cents,
        )
    return body


async def move_money_json(
    services: Services, principal: Principal | None, wallet_id: str, raw: bytes, *, credit: bool
) -> tuple[int, bytes]:
    """Credit or debit a wallet from a JSON body: ``(200, answer)`` or a refusal."""
    authorize_wallet(principal, wallet_id, admin_only=credit)
    body = _decode(raw)
    cents = _cents(body)
    command = (
        Credit(wallet_id=wallet_id, amount_cents=cents, reference=body.reference)
        if credit
        else Debit(wallet_id=wallet_id, amount_cents=cents, reference=body.reference)
    )
    kind = type(command).__name__
    outcome = await services.wallets.execute(
        command,
        request_id=request_key(principal, kind, body.request_id),
        legacy_ids=legacy_ids(body.request_id, on_race=False),
    )
    services.metrics.wallet_commands.labels("credit" if credit else "debit").inc()
    answer = _answer(wallet_id, outcome)
    if outcome.events and isinstance(outcome.events[-1], DebitRejected):
        refused = outcome.events[-1]
        raise ApiError(
            409,
            "insufficient_funds",
            f"wallet {wallet_id} has {money(refused.balance_cents)} available; "
            f"a debit of {money(refused.amount_cents)} was refused (and recorded)",
            **{k: v for k, v in answer.items() if type(v) is int or k == "wallet_id"},
        )
    return 200, _json.encode(answer)


async def _wait(services: Services, min_position: int | None) -> None:
    await await_reads(services, services.wallet_view, min_position, "wallet reads")


async def balance_json(
    services: Services, principal: Principal | None, wallet_id: str, min_position: int | None
) -> tuple[int, bytes]:
    """A wallet's balance from the read model: ``(200, answer)`` or a refusal."""
    authorize_wallet(principal, wallet_id)
    await _wait(services, min_position)
    try:
        found = await services.wallet_view.balance(wallet_id)
    except ReadModelUnavailable:
        found = None
    if found is not None:
        balance, in_play, version, position = (
            found.balance_cents,
            found.in_play_cents,
            found.version,
            found.position,
        )
        source = "read_model"
    else:
        # Not in the read model: a new wallet it has not applied yet, a read model being
        # rebuilt (a flushed Redis) or unreachable, or no wallet at all. The log decides.
        state, version, position = await services.wallets.committed(wallet_id)
        if not state.opened:
            raise ApiError(404, "wallet_not_found", f"no wallet {wallet_id}")
        balance, in_play = state.balance, state.in_play
        source = "log"
    return 200, _json.encode(
        {
            "wallet_id": wallet_id,
            "balance": units(balance),
            "balance_cents": balance,
            "in_play_cents": in_play,
            "version": version,
            "position": position,
            "source": source,
        }
    )


async def transactions_json(
    services: Services,
    principal: Principal | None,
    wallet_id: str,
    *,
    limit: int,
    before: int | None,
    min_position: int | None,
) -> dict[str, Any]:
    """A page of a wallet's transactions, newest first."""
    authorize_wallet(principal, wallet_id)
    await _wait(services, min_position)
    view = services.wallet_view
    try:
        if await view.balance(wallet_id) is None:
            # as for the balance: the log decides whether the wallet exists; if it does,
            # let the read model catch up with the log as it is now (bounded)
            state, _, position = await services.wallets.committed(wallet_id)
            if not state.opened:
                raise ApiError(404, "wallet_not_found", f"no wallet {wallet_id}")
            await _wait(services, position)
        page = await view.transactions(wallet_id, limit=limit, before_version=before)
    except ReadModelUnavailable as exc:
        raise ApiError(503, "read_model_unavailable", str(exc)) from None
    items = []
    for tx in page:
        item = msgspec.to_builtins(tx)
        if tx.amount_cents is not None:
            item["amount"] = units(tx.amount_cents)
        item["balance"] = units(tx.balance_cents)
        items.append(item)
    return {
        "wallet_id": wallet_id,
        "position": view.position,
        "transactions": items,
        "next_before": page[-1].version if len(page) == limit and page[-1].version > 1 else None,
    }


_services = services_of


_MONEY_SCHEMA = MoneyIn.model_json_schema(ref_template="#/components/schemas/{model}")
_MONEY_SCHEMA.pop("$defs", None)
_MONEY_BODY = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": _MONEY_SCHEMA}}}
}


@router.post(
    "/wallet/{wallet_id}/credit",
    summary="Credit a wallet (admin)",
    response_class=Response,
    openapi_extra=_MONEY_BODY,
)
async def credit(request: Request, wallet_id: Id) -> Response:
    status, payload = await move_money_json(
        _services(request), request_principal(request), wallet_id, await request.body(), credit=True
    )
    return Response(payload, status_code=status, media_type="application/json")


@router.post(
    "/wallet/{wallet_id}/debit",
    summary="Debit a wallet (its customer or admin); an overdraft is 409 and recorded",
    response_class=Response,
    openapi_extra=_MONEY_BODY,
)
async def debit(request: Request, wallet_id: Id) -> Response:
    status, payload = await move_money_json(
        _services(request),
        request_principal(request),
        wallet_id,
        await request.body(),
        credit=False,
    )
    return Response(payload, status_code=status, media_type="application/json")


@router.get(
    "/wallet/{wallet_id}/balance",
    summary="A wallet's balance (its customer or admin)",
    response_class=Response,
)
async def balance(
    request: Request, wallet_id: Id, min_position: int | None = MinPosition
) -> Response:
    status, payload = await balance_json(
        _services(request), request_principal(request), wallet_id, min_position
    )
    return Response(payload, status_code=status, media_type="application/json")


@router.get(
    "/wallet/{wallet_id}/transactions",
    summary="A wallet's transactions, newest first, including refused ones",
)
async def transactions(
    request: Request,
    wallet_id: Id,
    limit: int = Query(50, ge=1, le=MAX_PAGE),
    before: int | None = Query(None, ge=1, le=2**63 - 1, description="versions below this"),
    min_position: int | None = MinPosition,
) -> Response:
    body = await transactions_json(
        _services(request),
        request_principal(request),
        wallet_id,
        limit=limit,
        before=before,
        min_position=min_position,
    )
    return Response(_json.encode(body), media_type="application/json")


__all__ = ["WalletRejection", "balance_json", "move_money_json", "router", "transactions_json"]
