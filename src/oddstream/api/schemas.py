"""Request bodies of the tote and wallet APIs (validated at the edge; money in integer
cents), and the checks every JSON write shares: the body's media type and free text.

The models are strict, as the single bet's msgspec body is: ``true`` is not runner 1 and
``"100"`` is not 100 (``422`` naming the field). Only enums take their JSON string values
(a strict model would want an enum instance).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Annotated, Any

from fastapi import Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.types import Message

from ..application.bodies import FREE_TEXT_MARK, check_text, integral_numbers
from ..application.errors import ApiError
from ..domain.tote.pools import PoolType
from ..domain.tote.profiles import PROFILES

#: Free text (names, reasons, references): give it a length with ``Field``
FreeText = Annotated[
    str, AfterValidator(check_text), Field(json_schema_extra={FREE_TEXT_MARK: True})
]


def _json_media_type(value: str) -> bool:
    media, _, params = value.partition(";")
    media = media.strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        return False
    for param in params.split(";"):
        name, _, arg = param.strip().partition("=")
        if name.strip().lower() == "charset" and arg.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return False
    return True


def require_json(headers: Iterable[tuple[bytes, bytes]]) -> None:
    """Refuse (415) a request that carries a body whose ``Content-Type`` is not JSON
    (``application/json`` or ``application/…+json``, charset UTF-8 if one is given).
    A request without a body (no or zero ``Content-Length``, no ``Transfer-Encoding``)
    passes: the routes whose body is optional take none, the others answer 422.
    Raw ASGI headers, so the framework's routes and the fast lane share it."""
    content_type = None
    has_body = False
    for name, value in headers:
        if name == b"content-type":
            content_type = value.decode("latin-1")
        elif name == b"content-length":
            has_body = value.strip() not in (b"0", b"")
        elif name == b"transfer-encoding":
            has_body = True
    if has_body and (content_type is None or not _json_media_type(content_type)):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"the body must be JSON (Content-Type: application/json), not {content_type!r}"
            if content_type is not None
            else "the body must be JSON: send Content-Type: application/json",
        )


async def json_writes(request: Request) -> None:
    """Router dependency: :func:`require_json` for every write (POST, PUT, PATCH)."""
    if request.method in ("POST", "PUT", "PATCH"):
        require_json(request.scope["headers"])


def _float_for_int(exc: RequestValidationError) -> bool:
    return any(
        e.get("type") == "int_type" and isinstance(e.get("input"), float) for e in exc.errors()
    )


class JsonRoute(APIRoute):
    """A route whose JSON body's integer fields take integral numbers written with a
    fraction or exponent (``5.0``), as the msgspec bodies do
    (:func:`~oddstream.application.bodies.integral_numbers`): JSON Schema counts them as
    integers. Only a body refused for it is read again, rewritten; nothing has run then
    (the body is checked before the endpoint)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await inner(request)
            except RequestValidationError as exc:
                if not _float_for_int(exc):
                    raise
                raw = await request.body()
                fixed = integral_numbers(raw)
                if fixed == raw:
                    raise

                async def receive() -> Message:
                    return {"type": "http.request", "body": fixed, "more_body": False}

                return await inner(Request(request.scope, receive))

        return handler


Id = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")]
#: a bet's id as reads take it: a client's id, or a wallet bet's ``<wallet>~<id>``
BetRef = Annotated[str, Field(min_length=1, max_length=201, pattern=r"^[A-Za-z0-9._:~-]+$")]
RequestId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]
RunnerNo = Annotated[int, Field(ge=1, le=99)]
#: enums take their JSON string values (the models are strict otherwise)
Pool = Annotated[PoolType, Field(strict=False)]
Cents = Annotated[int, Field(ge=-(10**12), le=10**12)]
#: ``?min_position=``: reads wait (bounded) until they include this log position
MinPosition = Query(None, ge=0, le=2**63 - 1, description="wait until reads include this")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RunnerIn(Strict):
    number: RunnerNo
    name: Annotated[FreeText, Field(min_length=1, max_length=60)]


class PoolIn(Strict):
    pool: Pool
    takeout_bps: Annotated[int, Field(ge=0, le=9999, description="takeout in basis points")]
    profile: Annotated[
        str, Field(json_schema_extra={"enum": sorted(PROFILES)}, description="rules profile")
    ] = "us"
    min_stake_cents: Annotated[int, Field(ge=1, le=10**9)] = 100
    increment_cents: Annotated[int, Field(ge=1, le=10**9)] = 10
    no_winner: Annotated[str, Field(pattern="^(refund|carryover)$")] | None = None


class ScheduleRaceIn(Strict):
    race_id: Id | None = Field(None, description="generated when left out")
    meeting: Annotated[FreeText, Field(min_length=1, max_length=80)]
    venue: Annotated[FreeText, Field(min_length=1, max_length=80)]
    post_time: Annotated[FreeText, Field(min_length=1, max_length=40)]
    runners: Annotated[
        list[RunnerIn],
        Field(min_length=2, max_length=40, description="distinct runner numbers (else 422)"),
    ]
    pools: Annotated[
        list[PoolIn],
        Field(
            min_length=1,
            max_length=6,
            description="distinct pool types, each with no more runners per selection than"
            " the race has (else 422)",
        ),
    ]
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
    reason: Annotated[FreeText, Field(min_length=1, max_length=200)] = "abandoned"
