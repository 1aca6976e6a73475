"""The fixed-odds markets as the odds service's clients use them: commands
(``NewOdds``, ``UpdateOdds``, ``DeleteOdds``, and a market's lifecycle: ``SuspendOdds``,
``ResumeOdds``, ``CloseOdds``, ``ResultOdds``, ``VoidOdds``) in a ``CommandRequest``,
answered with a ``CommandResponse``; queries answered with a ``QueryResponse``. Field
names are theirs (PascalCase). See ``docs/fixed-odds.md``, "The service".

- **Prices** are JSON numbers read exactly from their digits (``1.91`` is 191/100, never
  the nearest binary float): the body is checked against the float-typed schema (which
  the OpenAPI document shows) and read again with ``Decimal`` prices.
- **Markets** are ``market-<ExternalID>`` streams. A ``NewOdds``'s ExternalID is a UUID
  derived from the sender and the ``RequestID``, so its retry reaches the same stream
  and is answered from it.
- **Idempotency**: the writer records ``client:<sender>:<Command>:<RequestID>`` with a
  fingerprint of the whole request (velocity and game included).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any, Generic, Literal, TypeVar

import msgspec
from msgspec import Meta

from ..domain.fixedodds import (
    CloseMarket,
    CreateMarket,
    DeleteMarket,
    FixedOddsRejection,
    MarketCommand,
    MarketLimits,
    MoneyLine,
    Odds,
    Outcome,
    ResultMarket,
    ResumeMarket,
    SuspendMarket,
    UpdatePrices,
    VoidMarket,
)
from ..domain.fixedodds.formats import decimal_str
from ..domain.fixedodds.market import MarketStatus
from ..eventstore import RecordedEvent
from ..projections.odds_view import OddsRecord, OddsView
from ..runtime.market_writer import MarketRequest, market_stream
from ..runtime.ports import Markets
from ..runtime.writer import CommandOutcome
from ..velocity.channels import Velocity
from .access import Principal, authorize_provider
from .bodies import FREE_TEXT_MARK, MAX_POSITION, Id, RequestId, check_text, decode
from .errors import ApiError
from .request_ids import derived_id, request_key

P = TypeVar("P")

#: what the OpenAPI document shows of a price (the body is checked against it first)
Price = Annotated[
    float,
    Meta(
        gt=1,
        le=10_001,
        description="decimal odds, a JSON number read exactly from its digits (1.91 is "
        "191/100), above 1 and at most 10001, at most 6 decimal places",
    ),
]

#: the limits of a market created through the odds API (bets on markets come later)
DEFAULT_LIMITS = MarketLimits(max_stake_cents=1_000_000, max_liability_cents=100_000_000)
#: the ``Status`` a market's record shows: the domain's lifecycle status (a record exists
#: once the market is created, so never ``uncreated``)
MARKET_STATUSES: tuple[str, ...] = tuple(
    status.value for status in MarketStatus if status is not MarketStatus.UNCREATED
)
#: the most records a page of ``GET /odds`` holds
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
DEFAULT_PAGE_NO = 1
MAX_PAGE_NO = 2**62
_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")


class MoneyLineIn(msgspec.Struct, Generic[P], forbid_unknown_fields=True):
    """A game's prices: ``Draw`` absent or null for a two-way game."""

    Home: P
    Away: P
    Draw: P | None = None


class PayloadIn(msgspec.Struct, Generic[P], forbid_unknown_fields=True):
    GameID: Id
    MoneyLine: MoneyLineIn[P]


class DeletePayloadIn(msgspec.Struct, Generic[P], forbid_unknown_fields=True):
    """A delete names the game it means; prices, if sent, are not used."""

    GameID: Id
    MoneyLine: MoneyLineIn[P] | None = None


class NewOddsRequest(msgspec.Struct, Generic[P], forbid_unknown_fields=True):
    """The ``CommandRequest`` of ``POST /odds``."""

    RequestID: RequestId
    Provider: Id
    Command: Literal["NewOdds"]
    Payload: PayloadIn[P]
    Domain: Literal["Odds"] = "Odds"
    EventVelocity: Velocity = "medium"


class UpdateOddsRequest(msgspec.Struct, Generic[P], forbid_unknown_fields=True):
    """The ``CommandRequest`` of ``PATCH /odds/{external_id}``."""

    RequestID: RequestId
    Provider: Id
    Command: Literal["UpdateOdds"]
    Payload: PayloadIn[P]
    Domain: Literal["Odds"] = "Odds"
    EventVelocity: Velocity = "medium"


class DeleteOddsRequest(msgspec.Struct, Generic[P], forbid_unknown_fields=True):
    """The ``CommandRequest`` of ``DELETE /odds/{external_id}``."""

    RequestID: RequestId
    Provider: Id
    Command: Literal["DeleteOdds"]
    Domain: Literal["Odds"] = "Odds"
    EventVelocity: Velocity = "medium"
    Payload: DeletePayloadIn[P] | None = None


class MarketPayloadIn(msgspec.Struct, forbid_unknown_fields=True):
    """What a suspend, resume or close may name: the game it means (checked against the
    market's, ``game_mismatch``)."""

    GameID: Id | None = None


class ResultPayloadIn(msgspec.Struct, forbid_unknown_fields=True):
    """A result: the winning outcome, or several for a dead heat (each paid at
    ``stake × price / n``, rounded down)."""

    Winners: Annotated[
        list[Outcome],
        Meta(
            min_length=1,
            max_length=3,
            description="the winning outcomes (home, away, draw); several is a dead heat",
            # each at most once: the domain refuses a winner named twice (bad_result)
            extra_json_schema={"uniqueItems": True},
        ),
    ]
    GameID: Id | None = None


#: the reason a void records when its request gives none
DEFAULT_VOID_REASON = "voided by the provider"


class VoidPayloadIn(msgspec.Struct, forbid_unknown_fields=True):
    """A void: every live bet's stake is refunded."""

    Reason: Annotated[
        str, Meta(min_length=1, max_length=200, extra_json_schema={FREE_TEXT_MARK: True})
    ] = DEFAULT_VOID_REASON
    GameID: Id | None = None

    def __post_init__(self) -> None:
        try:
            check_text(self.Reason)
        except ValueError as exc:  # msgspec reports it as a ValidationError
            raise ValueError(f"Reason: {exc}") from None


class SuspendOddsRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The ``CommandRequest`` of ``POST /odds/{external_id}/suspend``."""

    RequestID: RequestId
    Provider: Id
    Command: Literal["SuspendOdds"]
    Domain: Literal["Odds"] = "Odds"
    EventVelocity: Velocity = "medium"
    Payload: MarketPayloadIn | None = None


class ResumeOddsRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The ``CommandRequest`` of ``POST /odds/{external_id}/resume``."""

    RequestID: RequestId
    Provider: Id
    Command: Literal["ResumeOdds"]
    Domain: Literal["Odds"] = "Odds"
    EventVelocity: Velocity = "medium"
    Payload: MarketPayloadIn | None = None


class CloseOddsRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The ``CommandRequest`` of ``POST /odds/{external_id}/close``."""

    RequestID: RequestId
    Provider: Id
    Command: Literal["CloseOdds"]
    Domain: Literal["Odds"] = "Odds"
    EventVelocity: Velocity = "medium"
    Payload: MarketPayloadIn | None = None


class ResultOddsRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The ``CommandRequest`` of ``POST /odds/{external_id}/result``."""

    RequestID: RequestId
    Provider: Id
    Command: Literal["ResultOdds"]
    Payload: ResultPayloadIn
    Domain: Literal["Odds"] = "Odds"
    EventVelocity: Velocity = "medium"


class VoidOddsRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The ``CommandRequest`` of ``POST /odds/{external_id}/void``."""

    RequestID: RequestId
    Provider: Id
    Command: Literal["VoidOdds"]
    Domain: Literal["Odds"] = "Odds"
    EventVelocity: Velocity = "medium"
    Payload: VoidPayloadIn | None = None


#: the commands of a market's lifecycle (no prices in them): their request types
LIFECYCLE_REQUESTS: dict[str, type[msgspec.Struct]] = {
    "SuspendOdds": SuspendOddsRequest,
    "ResumeOdds": ResumeOddsRequest,
    "CloseOdds": CloseOddsRequest,
    "ResultOdds": ResultOddsRequest,
    "VoidOdds": VoidOddsRequest,
}

LifecycleRequest = (
    SuspendOddsRequest | ResumeOddsRequest | CloseOddsRequest | ResultOddsRequest | VoidOddsRequest
)
AnyRequest = (
    NewOddsRequest[Decimal]
    | UpdateOddsRequest[Decimal]
    | DeleteOddsRequest[Decimal]
    | LifecycleRequest
)

#: per command: the body checked with float prices (types, ranges), then read exactly
#: (one decoder for a command without prices)
_DECODERS: dict[str, tuple[msgspec.json.Decoder[Any], msgspec.json.Decoder[Any]]] = {
    kind.__name__.removesuffix("Request"): (
        msgspec.json.Decoder(kind[Price]),
        msgspec.json.Decoder(kind[Decimal]),
    )
    for kind in (NewOddsRequest, UpdateOddsRequest, DeleteOddsRequest)
} | {
    command: (msgspec.json.Decoder(kind), msgspec.json.Decoder(kind))
    for command, kind in LIFECYCLE_REQUESTS.items()
}


def request_schema_type(command: str) -> Any:
    """The body type the OpenAPI document shows for ``command``."""
    if command in LIFECYCLE_REQUESTS:
        return LIFECYCLE_REQUESTS[command]
    kinds = {"NewOdds": NewOddsRequest, "UpdateOdds": UpdateOddsRequest}
    return kinds.get(command, DeleteOddsRequest)[Price]  # type: ignore[index]


def decode_request(command: str, raw: bytes) -> AnyRequest:
    """The body of a ``command``'s request, its prices exact; 422 naming the field."""
    checked, exact = _DECODERS[command]
    if command not in LIFECYCLE_REQUESTS:
        decode(checked, raw)
    request: AnyRequest = decode(exact, raw)
    return request


def lifecycle_command(request: LifecycleRequest, external_id: str) -> MarketCommand:
    """The domain's command of a lifecycle request on market ``external_id``."""
    market, provider = external_id, request.Provider
    match request:
        case SuspendOddsRequest():
            return SuspendMarket(market_id=market, provider=provider)
        case ResumeOddsRequest():
            return ResumeMarket(market_id=market, provider=provider)
        case CloseOddsRequest():
            return CloseMarket(market_id=market, provider=provider)
        case ResultOddsRequest():
            winners = tuple(request.Payload.Winners)
            return ResultMarket(market_id=market, provider=provider, winners=winners)
        case VoidOddsRequest():
            reason = DEFAULT_VOID_REASON if request.Payload is None else request.Payload.Reason
            return VoidMarket(market_id=market, provider=provider, reason=reason)


def _odds(value: Decimal | Odds, where: str) -> Odds:
    if isinstance(value, Odds):  # a protobuf body's, exact already
        return value
    try:
        return Odds.from_decimal(value)
    except FixedOddsRejection as exc:
        raise ApiError(422, exc.code, f"{where}: {exc.message}") from None


def money_line_in(line: MoneyLineIn[Decimal] | MoneyLineIn[Odds]) -> MoneyLine:
    """The domain's money line of a body's (each price exact, or 422 naming it)."""
    where = "Payload.MoneyLine"
    return MoneyLine(
        home=_odds(line.Home, f"{where}.Home"),
        away=_odds(line.Away, f"{where}.Away"),
        draw=None if line.Draw is None else _odds(line.Draw, f"{where}.Draw"),
    )


_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
#: an ExternalID in a path: a UUID in its canonical form (lower case, with hyphens)
ExternalId = Annotated[str, Meta(pattern=_UUID)]


def check_external_id(value: str) -> str:
    """``value`` if it is a canonical UUID, else 422."""
    try:
        canonical = str(uuid.UUID(value))
    except ValueError:
        canonical = ""
    if canonical != value:
        raise ApiError(
            422,
            "bad_external_id",
            f"an ExternalID is a UUID in canonical form (like {uuid.UUID(int=1)}), "
            f"not {value[:60]!r}",
        )
    return value


def new_external_id(principal: Principal, request_id: str) -> str:
    """The ExternalID of a ``NewOdds``: the same for every retry of the request, another
    for every sender."""
    return str(uuid.UUID(hex=derived_id(principal, "odds", request_id)))


class OddsCommands:
    """The command side: a request in, the market's writer (this process's, or in
    services mode the router's, which reaches the worker owning the market's
    partition), a ``CommandResponse`` out."""

    def __init__(self, writer: Markets) -> None:
        self._writer = writer

    async def execute(
        self,
        principal: Principal | None,
        command: str,
        raw: bytes,
        external_id: str | None = None,
    ) -> tuple[str, CommandOutcome]:
        """Run ``command`` from its raw JSON body; ``(ExternalID, outcome)`` or a refusal."""
        return await self.run(principal, decode_request(command, raw), external_id)

    async def run(
        self, principal: Principal | None, request: AnyRequest, external_id: str | None = None
    ) -> tuple[str, CommandOutcome]:
        """Run a decoded request (a JSON body's, or a protobuf one's:
        :mod:`.odds_proto`); ``(ExternalID, outcome)`` or a refusal."""
        command = request.Command
        who = authorize_provider(principal, request.Provider)
        velocity = request.EventVelocity
        game: str | None
        if isinstance(request, NewOddsRequest):
            external_id = new_external_id(who, request.RequestID)
            game = request.Payload.GameID
            domain: Any = CreateMarket(
                market_id=external_id,
                game_id=game,
                provider=request.Provider,
                money_line=money_line_in(request.Payload.MoneyLine),
                limits=DEFAULT_LIMITS,
            )
        else:
            assert external_id is not None
            check_external_id(external_id)
            if isinstance(request, UpdateOddsRequest):
                game = request.Payload.GameID
                domain = UpdatePrices(
                    market_id=external_id,
                    provider=request.Provider,
                    money_line=money_line_in(request.Payload.MoneyLine),
                )
            elif isinstance(request, DeleteOddsRequest):
                game = None if request.Payload is None else request.Payload.GameID
                domain = DeleteMarket(market_id=external_id, provider=request.Provider)
            else:
                game = None if request.Payload is None else request.Payload.GameID
                domain = lifecycle_command(request, external_id)
        outcome = await self._writer.execute(
            MarketRequest(action=command, command=domain, game_id=game, velocity=velocity),
            request_id=request_key(who, command, request.RequestID),
        )
        return external_id, outcome


def command_response(
    request_id: str | None, external_id: str, outcome: CommandOutcome, msg: str
) -> dict[str, Any]:
    """A ``CommandResponse`` of success, with the market's ``ExternalID`` and the log
    ``Position`` to read one's write at (``?min_position=``)."""
    return {
        "RequestID": request_id,
        "Status": "success",
        "Msg": msg,
        "ExternalID": external_id,
        "Position": outcome.last_position,
        "Repeated": outcome.repeated,
    }


def fail_body(request_id: str | None, body: dict[str, object]) -> dict[str, object]:
    """A refusal as the odds service's clients read it (``Status: fail``, ``Msg``) and
    as every other route of this API answers it (``error``, ``message``)."""
    return {
        "RequestID": request_id,
        "Status": "fail",
        "Msg": body.get("message", ""),
        "Data": None,
        **body,
    }


# ------------------------------------------------------------------------- queries


def price_json(odds: Odds) -> Decimal:
    """A price as the JSON number the API writes: its exact decimal when it terminates
    (every price the API takes does), else six places."""
    value: Fraction = odds.value
    den = value.denominator
    while den % 2 == 0:
        den //= 2
    while den % 5 == 0:
        den //= 5
    if den == 1:
        return Decimal(value.numerator) / Decimal(value.denominator)
    return Decimal(decimal_str(odds, 6))


def time_text(at: datetime) -> str:
    """A time as the API writes it: UTC, always to the microsecond (so that the text of
    two times sorts as they do), ``Z``."""
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def record_json(record: OddsRecord) -> dict[str, Any]:
    """The odds record as the odds service persisted it."""
    line = record.money_line
    return {
        "ID": record.id,
        "ExternalID": record.external_id,
        "GameID": record.game_id,
        "MoneyLine": {
            "Home": price_json(line.home),
            "Away": price_json(line.away),
            "Draw": None if line.draw is None else price_json(line.draw),
        },
        "Deleted": record.deleted,
        "CreatedAt": time_text(record.created_at),
        "UpdatedAt": time_text(record.updated_at),
        "Status": record.status.value,
    }


def event_json(record: OddsRecord, recorded: RecordedEvent) -> dict[str, Any]:
    """An entry of a market's odds event log."""
    return {
        "ID": recorded.position,
        "OddsID": record.id,
        "EventID": str(recorded.event_id),
        "CreatedAt": time_text(recorded.recorded_at),
    }


def query_response(request_id: str, data: Any, msg: str = "ok") -> dict[str, Any]:
    return {"RequestID": request_id, "Status": "success", "Msg": msg, "Data": data}


def int_query(params: Mapping[str, str], name: str) -> int | None:
    """The integer query parameter ``name`` (``None`` when absent), or 422."""
    text = params.get(name)
    if text is None:
        return None
    if not _INTEGER.fullmatch(text):
        raise ApiError(422, "invalid_request", f"{name} is a whole number, not {text[:40]!r}")
    return int(text)


def page_of(params: Mapping[str, str]) -> tuple[int, int]:
    """``(page_no, page_size)`` of a query (defaults 1 and 20), checked."""
    page_no = int_query(params, "page_no")
    page_size = int_query(params, "page_size")
    page = (
        DEFAULT_PAGE_NO if page_no is None else page_no,
        DEFAULT_PAGE_SIZE if page_size is None else page_size,
    )
    check_page(*page)
    return page


def after_id_of(params: Mapping[str, str]) -> int:
    """The ``after_id`` of a listing (0 to 2**63 - 1; 0 when absent), or 422."""
    after_id = int_query(params, "after_id")
    if after_id is None:
        return 0
    check_after_id(after_id)
    return after_id


def check_after_id(after_id: int) -> None:
    """422 unless ``after_id`` is 0 to 2**63 - 1 (a market's ``ID`` is a log position)."""
    if not 0 <= after_id <= MAX_POSITION:
        raise ApiError(422, "invalid_request", f"after_id is 0 to {MAX_POSITION} (got {after_id})")


def min_position_of(params: Mapping[str, str]) -> int | None:
    """The ``min_position`` of a read, if any (0 to 2**63 - 1), or 422."""
    position = int_query(params, "min_position")
    if position is not None and not 0 <= position <= MAX_POSITION:
        raise ApiError(
            422, "invalid_request", f"min_position is 0 to {MAX_POSITION} (got {position})"
        )
    return position


def check_page(page_no: int, page_size: int) -> None:
    """A page's bounds, or 422 saying which."""
    if not 1 <= page_no <= MAX_PAGE_NO:
        raise ApiError(422, "bad_page", f"page_no is 1 to {MAX_PAGE_NO} (got {page_no})")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ApiError(
            422, "bad_page", f"page_size is 1 to {MAX_PAGE_SIZE} (got {page_size}): ask for pages"
        )


def odds_page(
    view: OddsView, page_no: int, page_size: int, after_id: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """A page of records, oldest first (of those whose ``ID`` is above ``after_id``),
    and how many are listed in all."""
    check_page(page_no, page_size)
    return [record_json(r) for r in view.page(page_no, page_size, after_id)], len(view)


async def odds_record(view: OddsView, external_id: str) -> OddsRecord:
    """The record of ``external_id`` (one the view let go read from its stream), or
    404."""
    check_external_id(external_id)
    record = await view.find(external_id)
    if record is None:
        raise ApiError(404, "market_not_found", f"no market {external_id}")
    return record


async def market_events(
    view: OddsView, store: Any, external_id: str, page_no: int, page_size: int
) -> tuple[OddsRecord, list[RecordedEvent]]:
    """The market's record and a page of its stored events (as far as the view includes
    them), oldest first; read from the market's stream. 404 for an unknown market."""
    check_page(page_no, page_size)
    record = await odds_record(view, external_id)
    first = (page_no - 1) * page_size + 1
    if first > record.version:
        return record, []
    limit = min(page_size, record.version - first + 1)
    events = await store.read_stream(market_stream(external_id), from_version=first, limit=limit)
    return record, list(events)


async def odds_events(
    view: OddsView, store: Any, external_id: str, page_no: int, page_size: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of a market's event log (as far as the view includes it), oldest first,
    and how many entries it has in all."""
    record, events = await market_events(view, store, external_id, page_no, page_size)
    return [event_json(record, e) for e in events], record.version
