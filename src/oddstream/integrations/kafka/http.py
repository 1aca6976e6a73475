"""HTTP plumbing shared by the compat routers and apps.

Every route answers Confluent-style JSON errors by itself (its route class catches
:class:`ConfluentError` and store errors), so the routers behave the same whether they
are mounted on the main app or served by their own app. The dedicated apps add JSON
404s for unknown routes (a 405 becomes a 404 too: clients probe optional routes and
only understand 404 as "not there").
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...eventstore import EventStoreError, InvalidEvent, StoreClosed, StoreUnavailable
from .errors import ConfluentError

log = logging.getLogger(__name__)

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class BodyLimitExceeded(Exception):
    """Raised from the receive channel by a body-limiting middleware in front of these
    routes (the service's own limit): the routes let it through, so that the middleware
    answers its 413 (and drains the body) rather than the route answering 500."""


def json_response(content: Any, media_type: str, status: int = 200) -> Response:
    """``content`` encoded with orjson, with the surface's media type."""
    return Response(orjson.dumps(content), status_code=status, media_type=media_type)


def error_response(status: int, error_code: int, message: str, media_type: str) -> Response:
    """A Confluent error body: ``{"error_code": int, "message": str}``."""
    return json_response({"error_code": error_code, "message": message}, media_type, status)


class SubjectConvertor(Convertor[str]):
    """``{subject:subject}``: a subject, which may hold ``/`` (sent as ``%2F``, which the
    server decodes) and any other character, newlines included (Starlette's ``path``
    stops at a newline), so that the route answers for it: 42208 on writes, 404 on
    reads, as Confluent does."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("subject", SubjectConvertor())


@functools.lru_cache(maxsize=256)
def _segments(path_format: str) -> re.Pattern[str]:
    """A route's template matching one segment per parameter, on the raw (still
    percent-encoded) path."""
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path_format)) + "$")


def _meant_for_another_route(route: APIRoute, request: Request) -> bool:
    """Whether a request matched ``route`` only because its subject took in a ``/`` the
    client sent as a separator: ``POST /subjects/s/versions/1`` is the path of
    ``/subjects/{subject}/versions/{version}`` (which takes GET and DELETE), not a
    lookup in subject ``s/versions/1``. A ``/`` inside a subject arrives as ``%2F``."""
    raw = request.scope.get("raw_path")
    if not raw or b"%2f" in raw.lower():
        # a client that encodes a subject's "/" meant it as one (the router, which sees
        # the decoded path, cannot tell "s%2Fversions" from "s/versions": see kafka.md)
        return False
    path = raw.decode("latin-1")
    if _segments(route.path_format).match(path):
        return False
    paths = request.app.openapi()["paths"]  # every route's template (made once)
    return any(_segments(template).match(path) for template in paths)


def confluent_route_class(media_type: str, backend_error_code: int) -> type[APIRoute]:
    """A route class whose handlers turn every failure into a Confluent JSON error.

    :class:`ConfluentError` keeps its status and code; an event store refusing input
    (:class:`InvalidEvent`) answers 422; an unavailable or closed store and anything
    unexpected answer 500 with ``backend_error_code`` (clients retry those).
    """

    class ConfluentRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            inner = super().get_route_handler()

            async def handler(request: Request) -> Response:
                if ":subject}" in self.path and _meant_for_another_route(self, request):
                    raise StarletteHTTPException(405)
                try:
                    return await inner(request)
                except ConfluentError as exc:
                    return error_response(exc.status, exc.error_code, exc.message, media_type)
                except InvalidEvent as exc:
                    return error_response(422, 422, f"Unprocessable entity: {exc}", media_type)
                except (StoreUnavailable, StoreClosed) as exc:
                    log.warning("event store unavailable: %s", exc)
                    message = f"Error in the backend data store: {exc}"
                    return error_response(500, backend_error_code, message, media_type)
                except EventStoreError as exc:
                    log.exception("event store error")
                    message = f"Error in the backend data store: {exc}"
                    return error_response(500, backend_error_code, message, media_type)
                except (RequestValidationError, StarletteHTTPException, BodyLimitExceeded):
                    raise
                except Exception:
                    log.exception("unexpected error in %s %s", request.method, request.url.path)
                    return error_response(500, backend_error_code, "Internal error", media_type)

            return handler

    return ConfluentRoute


def media_type_of(request: Request) -> str | None:
    """The request's content type without parameters, lower-cased (``None`` if absent)."""
    value = request.headers.get("content-type")
    if value is None:
        return None
    return value.split(";", 1)[0].strip().lower() or None


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes with a 413."""
    declared = request.headers.get("content-length")
    if (
        declared is not None
        and declared.strip().isascii()
        and declared.strip().isdigit()
        and int(declared) > limit
    ):
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ConfluentError:
    return ConfluentError(413, 413, f"Request entity too large: the limit is {limit} bytes")


def parse_json(body: bytes, error_code: int) -> Any:
    """Decode a JSON body; broken JSON answers 422 with ``error_code``."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ConfluentError(422, error_code, f"Invalid JSON in request body: {exc}") from None


def query_flag(request: Request, name: str, *aliases: str) -> bool:
    """A boolean query parameter: ``true`` in any case is true, anything else false."""
    for key in (name, *aliases):
        value = request.query_params.get(key)
        if value is not None:
            return value.strip().lower() == "true"
    return False


def install_json_errors(app: FastAPI, media_type: str, backend_error_code: int) -> None:
    """JSON errors for what happens outside the routes: unknown routes and wrong methods
    (both 404 ``HTTP 404 Not Found``), validation errors (422), anything else (500)."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = 404 if exc.status_code in (404, 405) else exc.status_code
        message = "HTTP 404 Not Found" if status == 404 else f"HTTP {status} {exc.detail}"
        return error_response(status, status, message, media_type)

    async def validation_error(request: Request, exc: Exception) -> Response:
        return error_response(422, 422, f"Unprocessable entity: {exc}", media_type)

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, backend_error_code, "Internal error", media_type)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)
