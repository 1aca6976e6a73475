"""Moving money and reading wallets, in the wallet POC's shapes.

A credit or debit takes ``{"amount": 5}`` (currency units, at most two decimals: 5 is
$5.00) or ``{"amount_cents": 500}``; an optional ``request_id`` makes a retry return the
original answer. An overdraft is refused (409) and recorded as a rejected debit. Reads
come from the wallet read model, and wait for a position a command answered when asked.

Who may: admin keys any wallet (credit only by admin); customer keys their own wallet
(read, debit); producer keys none (:func:`.access.authorize_wallet`).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ..domain.wallet import Credit, Debit
from ..domain.wallet.events import DebitRejected
from ..domain.wallet.wallet import MAX_AMOUNT_CENTS
from ..projections.wallet_models.base import ReadModelUnavailable
from ..runtime.writer import CommandOutcome
from .access import Principal, authorize_wallet
from .bodies import FREE_TEXT_MARK, RequestId, check_text, decode
from .errors import ApiError
from .request_ids import legacy_ids, request_key
from .services import Services, await_reads

_CENT = Decimal("0.01")
MAX_PAGE = 500


#: an amount given as a string: currency units above 0 with at most two decimals, up to
#: the largest amount (no leading zeros, no exponent, no blanks)
AMOUNT_TEXT = (
    r"^(?:[1-9][0-9]{0,9}(?:\.[0-9]{1,2})?|0\.(?:[1-9][0-9]?|0[1-9])|10000000000(?:\.00?)?)$"
)
_AMOUNT_TEXT = re.compile(AMOUNT_TEXT.replace("$", r"\Z"))


class MoneyBody(msgspec.Struct, forbid_unknown_fields=True):
    """A credit or a debit: exactly one of ``amount`` and ``amount_cents`` (neither may
    be null: leave the other out)."""

    #: a JSON number, or a string of digits with at most two decimals (read exactly,
    #: from the text: :func:`amount_of`)
    amount: msgspec.Raw | UnsetType = UNSET
    amount_cents: Annotated[int, Meta(ge=1, le=MAX_AMOUNT_CENTS)] | UnsetType = UNSET
    request_id: RequestId | None = None
    reference: (
        Annotated[str, Meta(min_length=1, max_length=200, extra_json_schema={FREE_TEXT_MARK: True})]
        | None
    ) = None

    def __post_init__(self) -> None:
        if self.reference is not None:
            try:
                check_text(self.reference)
            except ValueError as exc:  # msgspec reports it as a ValidationError
                raise ValueError(f"reference: {exc}") from None


#: what the OpenAPI document says of a :class:`MoneyBody` beyond its fields' types:
#: ``amount`` exactly, and "exactly one of the two"
MONEY_SCHEMA: dict[str, Any] = {
    "properties": {
        "amount": {
            "description": "currency units above 0 with at most two decimals (5 is 5.00)",
            "anyOf": [
                {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": MAX_AMOUNT_CENTS // 100,
                    "multipleOf": 0.01,
                },
                {"type": "string", "pattern": AMOUNT_TEXT},
            ],
        },
    },
    "oneOf": [{"required": ["amount"]}, {"required": ["amount_cents"]}],
}


def _nullable(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}], "description": description}


_CENTS = {"type": "integer"}
_UNITS = {"type": "number"}
_ID = {"type": "string", "minLength": 1}

#: One line of a statement (``GET /wallet/{id}/transactions``): a wallet event, with the
#: wallet's money after it.
TRANSACTION_SCHEMA: dict[str, Any] = {
    "title": "WalletTransaction",
    "type": "object",
    "required": [
        "version",
        "position",
        "type",
        "amount_cents",
        "balance_cents",
        "balance",
        "in_play_cents",
        "bet_id",
        "book",
        "race_id",
        "market_id",
        "reason",
        "reference",
        "recorded_at",
        "stake_cents",
    ],
    "properties": {
        "version": {"type": "integer", "minimum": 1, "description": "the wallet stream's"},
        "position": {"type": "integer", "minimum": 1, "description": "the log's"},
        "type": {"type": "string", "description": "the event: Credited, StakeReserved, …"},
        "amount_cents": _nullable(_CENTS, "the money the event moved (null: none)"),
        "amount": {**_UNITS, "description": "amount_cents in currency units (when set)"},
        "balance_cents": {**_CENTS, "description": "the balance after the event"},
        "balance": {**_UNITS, "description": "balance_cents in currency units"},
        "in_play_cents": {**_CENTS, "description": "the stakes in play after the event"},
        "bet_id": _nullable(_ID, "the bet of a stake line"),
        "book": _nullable(
            {"type": "string", "pattern": "^(?:race|market)-.+$"},
            "where a stake line's bet is: race-<race id> or market-<market id>",
        ),
        "race_id": _nullable(_ID, "the race of a race book's bet, else null"),
        "market_id": _nullable(_ID, "the market of a market book's bet, else null"),
        "reason": _nullable({"type": "string"}, "why (a refusal, a release, a settlement)"),
        "reference": _nullable({"type": "string"}, "the client's reference of a credit or debit"),
        "recorded_at": {"type": "string", "description": "ISO-8601 UTC, microseconds"},
        "stake_cents": _nullable(_CENTS, "a settlement's stake"),
    },
}

#: The answer of ``GET /wallet/{id}/transactions``.
STATEMENT_SCHEMA: dict[str, Any] = {
    "title": "WalletStatement",
    "type": "object",
    "required": ["wallet_id", "position", "transactions", "next_before"],
    "properties": {
        "wallet_id": _ID,
        "position": {"type": "integer", "minimum": 0, "description": "what the read includes"},
        "transactions": {"type": "array", "items": TRANSACTION_SCHEMA},
        "next_before": _nullable(
            {"type": "integer", "minimum": 1}, "?before= of the next page; null: no more"
        ),
    },
}


def amount_of(raw: msgspec.Raw) -> Decimal:
    """The amount a body gives, exactly as written: a JSON number, or a string as
    :data:`AMOUNT_TEXT` says; else a 422."""
    text = bytes(raw).strip()
    if text[:1] == b'"':
        value = msgspec.json.decode(text)
        if not isinstance(value, str) or _AMOUNT_TEXT.match(value) is None:
            try:
                Decimal(value)
            except (InvalidOperation, TypeError):
                raise ApiError(422, "invalid_request", "amount: not a number") from None
            raise ApiError(
                422,
                "bad_amount",
                "a string amount is above 0, at most 10000000000, written as digits with"
                " at most two decimals",
            )
        return Decimal(value)
    if _NUMBER.match(text) is None:
        raise ApiError(422, "invalid_request", "amount: should be a number or a string")
    return Decimal(text.decode("ascii"))


_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")


money_decoder = msgspec.json.Decoder(MoneyBody)


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


def cents_in(body: MoneyBody) -> int:
    """The body's amount in cents, or a 422 unless it gives exactly one of the two."""
    if (body.amount is UNSET) == (body.amount_cents is UNSET):
        raise ApiError(422, "invalid_request", "give exactly one of amount and amount_cents")
    if not isinstance(body.amount, msgspec.Raw):
        assert isinstance(body.amount_cents, int)
        return body.amount_cents
    return cents_of(amount_of(body.amount))


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


async def move_money(
    services: Services, principal: Principal | None, wallet_id: str, raw: bytes, *, credit: bool
) -> dict[str, Any]:
    """Credit or debit a wallet from a JSON :class:`MoneyBody`: the answer, or raises the
    refusal (an overdraft: 409 ``insufficient_funds``, recorded)."""
    authorize_wallet(principal, wallet_id, admin_only=credit)
    body = decode(money_decoder, raw)
    cents = cents_in(body)
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
    return answer


async def _wait(services: Services, min_position: int | None) -> None:
    await await_reads(services, services.wallet_view, min_position, "wallet reads")


async def balance(
    services: Services, principal: Principal | None, wallet_id: str, min_position: int | None
) -> dict[str, Any]:
    """A wallet's balance from the read model (from the log when the read model does not
    hold the wallet), or raises the refusal."""
    authorize_wallet(principal, wallet_id)
    await _wait(services, min_position)
    try:
        found = await services.wallet_view.balance(wallet_id)
    except ReadModelUnavailable:
        found = None
    if found is not None:
        cents, in_play, version, position = (
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
        cents, in_play = state.balance, state.in_play
        source = "log"
    return {
        "wallet_id": wallet_id,
        "balance": units(cents),
        "balance_cents": cents,
        "in_play_cents": in_play,
        "version": version,
        "position": position,
        "source": source,
    }


async def transactions(
    services: Services,
    principal: Principal | None,
    wallet_id: str,
    *,
    limit: int,
    before: int | None,
    min_position: int | None,
    book: str | None = None,
) -> dict[str, Any]:
    """A page of a wallet's transactions, newest first (refused debits included); with
    ``book`` (``race-<id>``, ``market-<id>``), only the lines of that book's bets.
    The answer's shape is :data:`STATEMENT_SCHEMA`."""
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
        page = await view.transactions(wallet_id, limit=limit, before_version=before, book=book)
    except ReadModelUnavailable as exc:
        raise ApiError(503, "read_model_unavailable", str(exc)) from None
    except ValueError as exc:  # a page no read model serves (the route's checks say why)
        raise ApiError(422, "invalid_request", str(exc)) from None
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
