"""The OpenAPI document: what the framework generates for its routes, the lean routes'
operations (:mod:`.lean`), and for every operation the refusals it can answer, each
with the one JSON error body (``{"error": code, "message": …}``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ..application.bodies import FREE_TEXT_MARK, schema_of, text_pattern
from ..integrations.kafka.openapi import complete as confluent_operation

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
    500: "an error in the backend data store (clients retry)",
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


def json_body(kind: Any, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``requestBody`` of a msgspec body type (its components noted in
    :data:`COMPONENTS`); ``extra`` says more of it than its fields' types can (its
    ``properties`` replace those of the same name, its other keys are added)."""
    schema, components = schema_of(kind)
    if extra:
        own = components[kind.__name__]
        own["properties"].update(extra.get("properties", {}))
        own.update({k: v for k, v in extra.items() if k != "properties"})
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
            document_refusals(schema)
            _free_text(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _free_text(node: Any) -> None:
    """Give every schema marked as free text the pattern of the text it takes."""
    if isinstance(node, dict):
        if node.pop(FREE_TEXT_MARK, False):
            node["pattern"] = text_pattern()
        for value in node.values():
            _free_text(value)
    elif isinstance(node, list):
        for value in node:
            _free_text(value)


#: the refusals of the framework's routes that check keys: (method, path) → statuses
_KEYED: dict[tuple[str, str], tuple[int, ...]] = {
    ("get", "/races/{race_id}/bets/{bet_id}"): (403, 429),
    ("get", "/bets/{bet_id}"): (403, 429),
    ("post", "/races/{race_id}/bets/batch"): (401, 403, 429),
    ("get", "/wallet/{wallet_id}/transactions"): (401, 403, 429),
}
_OPS = {
    "/healthz": "application/json",
    "/readyz": "application/json",
    "/metrics": "text/plain; version=0.0.4; charset=utf-8",
}
#: the Confluent-compatible surfaces: their media type, and their error body
_CONFLUENT = {
    "schema registry": "application/vnd.schemaregistry.v1+json",
    "rest proxy": "application/vnd.kafka.v2+json",
    "kafka connect": "application/json",
}
CONFLUENT_ERROR_SCHEMA: dict[str, Any] = {
    "title": "ConfluentError",
    "type": "object",
    "required": ["error_code", "message"],
    "properties": {"error_code": {"type": "integer"}, "message": {"type": "string"}},
}


def document_refusals(schema: dict[str, Any]) -> None:
    """Complete the framework's operations with what they can answer besides success:
    every refusal status with its JSON error body, and the media types they really
    answer with (the operations' own declarations are kept)."""
    schemas = schema["components"]["schemas"]
    schemas["ConfluentError"] = CONFLUENT_ERROR_SCHEMA
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            tags = operation.get("tags") or []
            surface = next((_CONFLUENT[t] for t in tags if t in _CONFLUENT), None)
            if surface is not None:
                confluent_operation(method, path, operation)
                _document_confluent(
                    responses, surface, "requestBody" in operation, connect="kafka connect" in tags
                )
            elif path in _OPS:
                _document_ops(path, responses)
            else:
                _document_api(method, path, operation, responses)


def _document_api(
    method: str, path: str, operation: dict[str, Any], responses: dict[str, Any]
) -> None:
    params = operation.get("parameters") or []
    statuses = {503}
    if params or "requestBody" in operation:
        statuses.add(422)
    if any(p.get("in") == "path" for p in params):
        statuses.add(404)
    if any(p.get("name") == "min_position" for p in params) or method != "get":
        statuses.add(409)
    if method != "get":
        statuses |= {413, 415}
        if path == "/races" or "/bets" not in path:  # the admin commands
            statuses |= {401, 403, 429}
    statuses |= set(_KEYED.get((method, path), ()))
    for status, response in error_responses(*sorted(statuses)).items():
        responses.setdefault(status, response)
    for status, response in responses.items():
        if status.startswith("4") or status.startswith("5"):
            response["content"] = {"application/json": {"schema": ERROR_REF}}


def _document_ops(path: str, responses: dict[str, Any]) -> None:
    media = _OPS[path]
    ok = responses.setdefault("200", {"description": "OK"})
    ok["content"] = {
        media: {"schema": {"type": "string" if media.startswith("text/") else "object"}}
    }
    if path != "/metrics":
        responses["503"] = {
            "description": "the store is unreachable, or (readyz) a consumer lags the log",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }


def _document_confluent(
    responses: dict[str, Any], media: str, has_body: bool, *, connect: bool = False
) -> None:
    for status, response in responses.items():
        if connect and not response.get("content"):
            continue  # pause, resume, restart, delete: answers without a body
        if status.startswith("2"):
            content = response.get("content") or {"application/json": {"schema": {}}}
            body = next(iter(content.values()))
            response["content"] = {media: body, "application/json": body}
    error = {"schema": {"$ref": "#/components/schemas/ConfluentError"}}
    refusals = [401, 403, 404, 409, 422, 429, 500] + ([413, 415] if has_body else [])
    if connect:  # Kafka Connect answers 400 for what it cannot take
        refusals.insert(0, 400)
    for refusal in refusals:
        responses[str(refusal)] = {
            "description": REFUSALS[refusal],
            "content": {media: error, "application/json": error},
        }
    if has_body:
        # over the service's limit the app's edge answers, before any route, with its
        # own body; over the surface's own (smaller) limit the route answers
        either = {"schema": {"anyOf": [error["schema"], ERROR_REF]}}
        responses["413"]["content"] = {media: either, "application/json": either}
