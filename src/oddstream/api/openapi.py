"""The OpenAPI document: what the framework generates for its routes, the lean routes'
operations (:mod:`.lean`), and for every operation the refusals it can answer, each
with the one JSON error body (``{"error": code, "message": …}``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ..application.bodies import schema_of

if TYPE_CHECKING:
    from .lean import LeanRoutes

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "a stable code, e.g. race_not_found"},
        "message": {"type": "string", "description": "what went wrong, for people"},
    },
    "additionalProperties": True,
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}

#: what each refusal means, as documented
REFUSALS: dict[int, str] = {
    400: "the request is malformed (a Content-Length that is not a number)",
    401: "no API key, and this needs one",
    403: "the key may not do this",
    404: "no such resource",
    405: "this path does not take this method (see Allow)",
    409: "the current state refuses it, or reads have not reached min_position yet",
    413: "the body is over ODDSTREAM_MAX_BODY_BYTES",
    415: "the body is not JSON",
    422: "the request is invalid: the message says what and where",
    429: "too many unknown keys from this address (see Retry-After)",
    503: "the event store is unavailable (see Retry-After)",
}


def error_responses(*statuses: int) -> dict[str, Any]:
    """OpenAPI ``responses`` for refusals with these statuses."""
    return {
        str(status): {
            "description": REFUSALS[status],
            "content": {"application/json": {"schema": ERROR_REF}},
        }
        for status in statuses
    }


#: the schema components of the msgspec bodies documented with :func:`json_body`
COMPONENTS: dict[str, Any] = {"Error": ERROR_SCHEMA}


def json_body(kind: Any) -> dict[str, Any]:
    """The ``requestBody`` of a msgspec body type (its components noted in
    :data:`COMPONENTS`)."""
    schema, components = schema_of(kind)
    COMPONENTS.update(components)
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def json_answer(description: str) -> dict[str, Any]:
    """A JSON object answer."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }


def path_id(name: str) -> dict[str, Any]:
    """A path parameter that is an id."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": 100,
            "pattern": "^[A-Za-z0-9._:-]+$",
        },
    }


MIN_POSITION = {
    "name": "min_position",
    "in": "query",
    "required": False,
    "description": "wait until reads include this",
    "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
}


def document(app: FastAPI, lean: LeanRoutes) -> None:
    """Make ``app.openapi()`` the whole document: the framework's routes, the lean
    routes' operations and the body components they use."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for path, operations in lean.openapi_paths().items():
                schema["paths"].setdefault(path, {}).update(operations)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(COMPONENTS)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
