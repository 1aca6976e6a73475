"""Every refusal is a JSON answer with a reason; nothing a client sends yields a 500."""

from __future__ import annotations

import functools
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..application.errors import ApiError, error_body, render
from ..domain.tote.race import ToteRejection
from ..domain.wallet import WalletRejection
from ..eventstore import EventStoreError
from ..runtime.writer import RequestIdReused

#: the detail of the 400 FastAPI raises when a body fails to decode (fastapi/routing.py)
_BODY_NOT_PARSED = "There was an error parsing the body"


def install(app: FastAPI) -> None:
    """Register the handlers that turn exceptions into JSON answers."""

    async def refusal(_: Request, exc: Exception) -> JSONResponse:
        status, body, headers = render(exc)
        return JSONResponse(body, status, headers=headers or None)

    for kind in (
        ApiError,
        ToteRejection,
        WalletRejection,
        RequestIdReused,
        EventStoreError,
        Exception,
    ):
        app.add_exception_handler(kind, refusal)

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
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _BODY_NOT_PARSED:
            # FastAPI's answer to a JSON body it could not decode other than by a
            # JSONDecodeError (invalid UTF-8, nesting too deep): malformed JSON is a 422
            # here, as everywhere else
            return JSONResponse(
                error_body("invalid_request", "the body is not JSON (UTF-8, reasonably nested)"),
                422,
            )
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status_code, "http_error"
        )
        headers = exc.headers
        if exc.status_code == 405:
            # the router names the methods of the first route of that path only; a path
            # served by several routes (POST and PUT /races/{id}/result) takes them all
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """The methods the OpenAPI document declares at the request's path (what clients
    are told, and what the routes take)."""
    path = request.scope["path"]
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        if _template(template).fullmatch(path):
            methods |= {method.upper() for method in operations}
    return sorted(methods)


@functools.lru_cache(maxsize=512)
def _template(path: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)))
