"""The odds service's envelopes in protobuf (``proto/oddstream/pb/odds_api.proto``): a
``CommandRequest`` body read into the same request the JSON body makes, and the answers
(``CommandResponse``, ``QueryResponse``) written from what the JSON answers are made of.
The content negotiation is the routes' (``api/odds_routes.py``, ``api/negotiation.py``).

- **Prices** are exact fractions (``Odds {num, den}``: 1.91 is 191/100), so a command may
  name a price no decimal writes, such as the fractional 8/13 (21/13); a request's need
  not be reduced. The domain's bounds hold as for JSON (above 1, at most 10001, a
  denominator of at most 1,000,000 once reduced), with the same refusal codes.
- **A request** (of any odds command, the lifecycle's included) is checked as the JSON
  body is: the fields it needs, their patterns and lengths, the route's ``Command``
  (``msgspec.convert`` with the JSON body's types), a payload field the command does
  not take, and unknown fields refused (a field of a newer schema is not silently
  dropped).
- **Times** are ``google.protobuf.Timestamp``, to the microsecond as the store records
  them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import msgspec
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from ..domain.fixedodds import FixedOddsRejection, MoneyLine, Odds
from ..domain.fixedodds.market import MarketStatus
from ..pb import fixedodds_pb2, odds_api_pb2
from ..projections.odds_view import OddsRecord
from . import odds
from .errors import ApiError

#: the media type of a protobuf body or answer (and the other name clients use for it)
PROTOBUF = "application/x-protobuf"
PROTOBUF_TYPES = (PROTOBUF, "application/protobuf")

_COMMANDS = {
    odds_api_pb2.COMMAND_NEW_ODDS: "NewOdds",
    odds_api_pb2.COMMAND_UPDATE_ODDS: "UpdateOdds",
    odds_api_pb2.COMMAND_DELETE_ODDS: "DeleteOdds",
    odds_api_pb2.COMMAND_SUSPEND_ODDS: "SuspendOdds",
    odds_api_pb2.COMMAND_RESUME_ODDS: "ResumeOdds",
    odds_api_pb2.COMMAND_CLOSE_ODDS: "CloseOdds",
    odds_api_pb2.COMMAND_RESULT_ODDS: "ResultOdds",
    odds_api_pb2.COMMAND_VOID_ODDS: "VoidOdds",
}
#: a result's winners: the JSON Payload's outcome names
_OUTCOMES: dict[int, str] = {
    fixedodds_pb2.OUTCOME_HOME: "home",
    fixedodds_pb2.OUTCOME_AWAY: "away",
    fixedodds_pb2.OUTCOME_DRAW: "draw",
}
_DOMAINS = {odds_api_pb2.DOMAIN_ODDS: "Odds"}
_VELOCITIES = {
    odds_api_pb2.EVENT_VELOCITY_HIGH: "high",
    odds_api_pb2.EVENT_VELOCITY_MEDIUM: "medium",
    odds_api_pb2.EVENT_VELOCITY_LOW: "low",
}
#: a record's status (the JSON record's ``Status``) as its protobuf enum
_MARKET_STATUSES = {
    MarketStatus.OPEN: odds_api_pb2.MARKET_STATUS_OPEN,
    MarketStatus.SUSPENDED: odds_api_pb2.MARKET_STATUS_SUSPENDED,
    MarketStatus.CLOSED: odds_api_pb2.MARKET_STATUS_CLOSED,
    MarketStatus.RESULTED: odds_api_pb2.MARKET_STATUS_RESULTED,
    MarketStatus.VOIDED: odds_api_pb2.MARKET_STATUS_VOIDED,
    MarketStatus.DELETED: odds_api_pb2.MARKET_STATUS_DELETED,
}
_REQUEST_TYPES: dict[str, Any] = {
    "NewOdds": odds.NewOddsRequest[Any],
    "UpdateOdds": odds.UpdateOddsRequest[Any],
    "DeleteOdds": odds.DeleteOddsRequest[Any],
    **odds.LIFECYCLE_REQUESTS,
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_request", message)


def _check_known(message: Message, where: str) -> None:
    """Refuse a field this schema does not have (anywhere in the message)."""
    unknown = UnknownFieldSet(message)
    if len(unknown):
        numbers = sorted({unknown[i].field_number for i in range(len(unknown))})
        raise _invalid(f"{where} has no field numbered {', '.join(map(str, numbers))}")
    for field, value in message.ListFields():
        if field.type == field.TYPE_MESSAGE and not field.is_repeated:
            _check_known(value, f"{where}.{field.json_name}")


def _price(odds_message: fixedodds_pb2.Odds, where: str) -> Odds:
    if odds_message.den == 0:
        raise ApiError(422, "bad_odds", f"{where}: a price's den is a positive whole number")
    try:
        return Odds.exact(Fraction(odds_message.num, odds_message.den))
    except FixedOddsRejection as exc:
        raise ApiError(422, exc.code, f"{where}: {exc.message}") from None


def _money_line(line: odds_api_pb2.MoneyLine) -> dict[str, Odds]:
    where = "Payload.MoneyLine"
    out = {}
    for name in ("home", "away", "draw"):
        if line.HasField(name):
            out[name.title()] = _price(getattr(line, name), f"{where}.{name.title()}")
    return out


def _enum(value: int, names: Mapping[Any, str], what: str) -> str | None:
    """An enum's name in the JSON API; None for UNSPECIFIED (the JSON default)."""
    if value == 0:
        return None
    try:
        return names[value]
    except KeyError:
        raise _invalid(f"{what} {value} is not one of the schema's") from None


def _winner(value: int) -> str:
    try:
        return _OUTCOMES[value]
    except KeyError:
        raise _invalid(f"Payload.Winners: {value} is no outcome (home 1, away 2, draw 3)") from None


def _payload(command: str, payload: odds_api_pb2.Payload) -> dict[str, Any]:
    """The JSON ``Payload`` a protobuf one makes: the fields it has, so that one the
    command does not take is refused as in JSON (``forbid_unknown_fields``)."""
    out: dict[str, Any] = {}
    # proto3 has no absent string: an empty game_id names no game where naming one is
    # optional (the lifecycle commands), and is refused where it is required
    if payload.game_id or command not in odds.LIFECYCLE_REQUESTS:
        out["GameID"] = payload.game_id
    if payload.HasField("money_line"):
        out["MoneyLine"] = _money_line(payload.money_line)
    if payload.winners:
        out["Winners"] = [_winner(w) for w in payload.winners]
    if payload.HasField("reason"):
        out["Reason"] = payload.reason
    return out


def parse_command_request(raw: bytes) -> odds_api_pb2.CommandRequest:
    """The ``CommandRequest`` ``raw`` holds, or 422."""
    message = odds_api_pb2.CommandRequest()
    try:
        message.ParseFromString(raw)
    except DecodeError as exc:
        raise _invalid(f"the body is not a protobuf CommandRequest: {exc}") from None
    _check_known(message, "CommandRequest")
    return message


def request_id_of(raw: bytes) -> str | None:
    """The RequestID of a protobuf body, if it has a readable one (for a refusal)."""
    try:
        found = odds_api_pb2.CommandRequest.FromString(raw).request_id
    except DecodeError:
        return None
    return found or None


def decode_request(command: str, raw: bytes) -> odds.AnyRequest:
    """The request a protobuf ``CommandRequest`` makes for the route of ``command`` (any
    of the odds commands, the lifecycle's included): the JSON body's request, its prices
    :class:`Odds` already; 422 naming what is wrong."""
    message = parse_command_request(raw)
    body: dict[str, Any] = {
        "RequestID": message.request_id,
        "Provider": message.provider,
        "Command": _enum(message.command, _COMMANDS, "Command") or "",
    }
    domain = _enum(message.domain, _DOMAINS, "Domain")
    if domain is not None:
        body["Domain"] = domain
    velocity = _enum(message.event_velocity, _VELOCITIES, "EventVelocity")
    if velocity is not None:
        body["EventVelocity"] = velocity
    if message.HasField("payload"):
        body["Payload"] = _payload(command, message.payload)
    try:
        request: odds.AnyRequest = msgspec.convert(body, _REQUEST_TYPES[command])
    except msgspec.ValidationError as exc:
        raise _invalid(str(exc)) from None
    return request


# ------------------------------------------------------------------------- answers


def _status(body: Mapping[str, Any]) -> int:
    return odds_api_pb2.STATUS_SUCCESS if body["Status"] == "success" else odds_api_pb2.STATUS_FAIL


def command_message(body: Mapping[str, Any]) -> odds_api_pb2.CommandResponse:
    """A ``CommandResponse`` (success or refusal) of the JSON answer's body."""
    message = odds_api_pb2.CommandResponse(
        status=_status(body),  # type: ignore[arg-type]
        msg=str(body.get("Msg", "")),
        error=str(body.get("error", "")),
    )
    if body.get("RequestID") is not None:
        message.request_id = body["RequestID"]
    if "ExternalID" in body:
        message.external_id = body["ExternalID"]
        message.position = body["Position"]
        message.repeated = body["Repeated"]
    return message


def query_fail(body: Mapping[str, Any]) -> odds_api_pb2.QueryResponse:
    """A refused query's ``QueryResponse`` (no data) of the JSON answer's body."""
    return odds_api_pb2.QueryResponse(
        request_id=body.get("RequestID") or "",
        status=odds_api_pb2.STATUS_FAIL,
        msg=str(body.get("Msg", "")),
        error=str(body.get("error", "")),
    )


def _odds(price: Odds) -> fixedodds_pb2.Odds:
    return fixedodds_pb2.Odds(num=price.num, den=price.den)


def _line(line: MoneyLine) -> odds_api_pb2.MoneyLine:
    message = odds_api_pb2.MoneyLine(home=_odds(line.home), away=_odds(line.away))
    if line.draw is not None:
        message.draw.CopyFrom(_odds(line.draw))
    return message


def _timestamp(at: datetime, into: Any) -> None:
    """``at`` into a ``Timestamp``, exactly (whole seconds and microseconds)."""
    delta = at.astimezone(UTC) - _EPOCH
    into.seconds = delta.days * 86_400 + delta.seconds
    into.nanos = delta.microseconds * 1_000


def record_message(record: OddsRecord) -> odds_api_pb2.OddsRecord:
    """The odds record (as the JSON ``Data`` of ``GET /odds/{id}``), prices exact."""
    message = odds_api_pb2.OddsRecord(
        id=record.id,
        external_id=record.external_id,
        game_id=record.game_id,
        money_line=_line(record.money_line),
        deleted=record.deleted,
        status=_MARKET_STATUSES[record.status],
    )
    _timestamp(record.created_at, message.created_at)
    _timestamp(record.updated_at, message.updated_at)
    return message


def _event_message(entry: Mapping[str, Any]) -> odds_api_pb2.OddsEvent:
    message = odds_api_pb2.OddsEvent(
        id=entry["ID"], odds_id=entry["OddsID"], event_id=entry["EventID"]
    )
    # the JSON entry's time: UTC to the microsecond, so reading it back is exact
    _timestamp(datetime.fromisoformat(entry["CreatedAt"]), message.created_at)
    return message


def query_message(
    request_id: str,
    msg: str,
    *,
    record: OddsRecord | None = None,
    records: Iterable[OddsRecord] | None = None,
    events: Iterable[Mapping[str, Any]] | None = None,
) -> odds_api_pb2.QueryResponse:
    """A successful ``QueryResponse`` holding one record, a page of them, or a page of a
    market's odds event log (its JSON entries, :func:`odds.event_json`)."""
    message = odds_api_pb2.QueryResponse(
        request_id=request_id, status=odds_api_pb2.STATUS_SUCCESS, msg=msg
    )
    if record is not None:
        message.record.CopyFrom(record_message(record))
    elif records is not None:
        message.records.SetInParent()
        message.records.items.extend(record_message(r) for r in records)
    elif events is not None:
        message.events.SetInParent()
        message.events.items.extend(_event_message(e) for e in events)
    return message
