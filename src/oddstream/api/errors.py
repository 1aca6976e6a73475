"""Every refusal is a JSON answer with a reason; nothing a client sends yields a 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..domain.tote.race import ToteRejection
from ..eventstore import EventStoreError, InvalidEvent, StoreUnavailable

log = logging.getLogger(__name__)

#: HTTP status for each rejection code: 404 for what does not exist, 422 for a command
#: that can never succeed as sent, 409 for one the race's current state refuses.
REJECTION_STATUS: dict[str, int] = {
    "race_not_found": 404,
    "unknown_bet": 404,
    "bad_race": 422,
    "bad_amount": 422,
    "below_minimum": 422,
    "bad_increment": 422,
    "bad_selection": 422,
    "unknown_runner": 422,
    "bad_result": 422,
    "pool_not_offered": 422,
    "not_compat": 422,
}


class ApiError(Exception):
    """An answer other than success: ``status``, a stable ``code`` and a message."""

    def __init__(self, status: int, code: str, message: str, **extra: object) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra
        super().__init__(message)


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": code, "message": message, **extra}


def install(app: FastAPI) -> None:
    """Register the handlers that turn exceptions into JSON answers."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, **exc.extra), exc.status)

    @app.exception_handler(ToteRejection)
    async def rejection(_: Request, exc: ToteRejection) -> JSONResponse:
        status = REJECTION_STATUS.get(exc.code, 409)
        return JSONResponse(error_body(exc.code, exc.message), status)

    @app.exception_handler(InvalidEvent)
    async def invalid(_: Request, exc: InvalidEvent) -> JSONResponse:
        return JSONResponse(error_body("invalid", str(exc)), 422)

    @app.exception_handler(StoreUnavailable)
    async def unavailable(_: Request, exc: StoreUnavailable) -> JSONResponse:
        log.warning("store unavailable: %s", exc)
        body = error_body("store_unavailable", str(exc), outcome_unknown=exc.outcome_unknown)
        return JSONResponse(body, 503, headers={"Retry-After": "1"})

    @app.exception_handler(EventStoreError)
    async def store_error(_: Request, exc: EventStoreError) -> JSONResponse:
        return JSONResponse(error_body("conflict", str(exc)), 409)

    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = details[0] if details else {"where": "", "problem": "invalid request"}
        message = f"{first['where']}: {first['problem']}" if first["where"] else first["problem"]
        return JSONResponse(error_body("invalid_request", message, details=details), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(error_body("internal", "an unexpected error; it was logged"), 500)
