"""HTTP routes of the Schema Registry (Confluent's paths, bodies and error codes).

Handlers read query parameters and JSON bodies themselves: unknown parameters are
ignored, and malformed input answers the Confluent 422 of what the body carries
(42201 for a schema, 42203 for a compatibility level) instead of a framework error.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response

from ..access import Access, Authorizer, open_access
from ..errors import ConfluentError
from ..http import (
    confluent_route_class,
    install_json_errors,
    json_response,
    media_type_of,
    parse_json,
    query_flag,
    read_body,
)
from . import errors as err
from .service import LATEST, SchemaRegistry, VersionRef, parse_version

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
ACCEPTED_CONTENT_TYPES = frozenset(
    {
        "application/vnd.schemaregistry.v1+json",
        "application/vnd.schemaregistry+json",
        "application/json",
        "application/octet-stream",
    }
)
DEFAULT_MAX_BODY = 1 << 20


def _ok(content: Any) -> Response:
    return json_response(content, MEDIA_TYPE)


async def _body(request: Request, limit: int, error_code: int) -> dict[str, Any]:
    """The request's JSON object; anything else answers 422 with ``error_code``."""
    media_type = media_type_of(request)
    if media_type is not None and media_type not in ACCEPTED_CONTENT_TYPES:
        raise ConfluentError(415, 415, f"HTTP 415 Unsupported Media Type: {media_type}")
    value = parse_json(await read_body(request, limit), error_code)
    if not isinstance(value, dict):
        raise ConfluentError(422, error_code, "The request body must be a JSON object")
    return value


def _schema_id(text: str) -> int:
    """A path's schema id; one that cannot exist is simply not found."""
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 12:
        raise err.schema_not_found(f"Schema {text} not found")
    return int(value)


def schema_registry_router(
    registry: SchemaRegistry,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    authorize: Authorizer = open_access,
) -> APIRouter:
    """Every Schema Registry route, at Confluent's root paths. ``authorize`` is asked
    before registering (:attr:`Access.PRODUCE`) and before deletes and config changes
    (:attr:`Access.ADMIN`); reads are open."""
    router = APIRouter(
        route_class=confluent_route_class(MEDIA_TYPE, err.BACKEND_STORE_ERROR),
        tags=["schema registry"],
    )

    async def schema_body(request: Request) -> dict[str, Any]:
        return await _body(request, max_body_bytes, err.INVALID_SCHEMA)

    def deleted(request: Request) -> bool:
        return query_flag(request, "deleted")

    # ----------------------------------------------------------------- schemas
    @router.get("/schemas/types", summary="Supported schema types")
    async def schema_types() -> Response:
        return _ok(registry.schema_types())

    @router.get("/schemas/ids/{schema_id}", summary="A schema by global id")
    async def schema_by_id(schema_id: str) -> Response:
        stored = await registry.schema(_schema_id(schema_id))
        body: dict[str, Any] = {"schema": stored.text}
        if stored.schema_type != "AVRO":
            body["schemaType"] = stored.schema_type
        return _ok(body)

    @router.get("/schemas/ids/{schema_id}/schema", summary="A schema's text by global id")
    async def schema_text_by_id(schema_id: str) -> Response:
        stored = await registry.schema(_schema_id(schema_id))
        return Response(stored.text, media_type=MEDIA_TYPE)

    @router.get("/schemas/ids/{schema_id}/subjects", summary="Subjects using a schema id")
    async def schema_subjects(schema_id: str, request: Request) -> Response:
        usages = await registry.schema_usages(_schema_id(schema_id), deleted=deleted(request))
        return _ok(sorted({subject for subject, _ in usages}))

    @router.get("/schemas/ids/{schema_id}/versions", summary="Subject-versions of a schema id")
    async def schema_versions(schema_id: str, request: Request) -> Response:
        usages = await registry.schema_usages(_schema_id(schema_id), deleted=deleted(request))
        return _ok([{"subject": s, "version": v} for s, v in usages])

    # ----------------------------------------------------------------- subjects
    @router.get("/subjects", summary="Subjects")
    async def subjects(request: Request) -> Response:
        names = await registry.subjects(
            deleted=deleted(request),
            deleted_only=query_flag(request, "deletedOnly", "deleted_only"),
            prefix=request.query_params.get("subjectPrefix", ""),
        )
        return _ok(names)

    @router.get("/subjects/{subject:subject}/versions/{version}/schema", summary="A version's text")
    async def version_schema(subject: str, version: str, request: Request) -> Response:
        found = await registry.get_version(
            subject, parse_version(version), deleted=deleted(request)
        )
        return Response(found.schema, media_type=MEDIA_TYPE)

    @router.get(
        "/subjects/{subject:subject}/versions/{version}/referencedby",
        summary="Schemas referencing a version (none: references are not supported)",
    )
    async def referenced_by(subject: str, version: str, request: Request) -> Response:
        await registry.get_version(subject, parse_version(version), deleted=deleted(request))
        return _ok([])

    @router.get("/subjects/{subject:subject}/versions/{version}", summary="One version")
    async def get_version(subject: str, version: str, request: Request) -> Response:
        found = await registry.get_version(
            subject, parse_version(version), deleted=deleted(request)
        )
        return _ok(found.to_json())

    @router.delete("/subjects/{subject:subject}/versions/{version}", summary="Delete a version")
    async def delete_version(subject: str, version: str, request: Request) -> Response:
        authorize(request, Access.ADMIN)
        permanent = query_flag(request, "permanent")
        number = await registry.delete_version(subject, parse_version(version), permanent=permanent)
        return _ok(number)

    @router.get("/subjects/{subject:subject}/versions", summary="A subject's versions")
    async def versions(subject: str, request: Request) -> Response:
        return _ok(await registry.versions(subject, deleted=deleted(request)))

    @router.post("/subjects/{subject:subject}/versions", summary="Register a schema")
    async def register(subject: str, request: Request) -> Response:
        authorize(request, Access.PRODUCE)
        body = await schema_body(request)
        schema_id = await registry.register(
            subject, body.get("schema"), body.get("schemaType"), body.get("references")
        )
        return _ok({"id": schema_id})

    @router.post("/subjects/{subject:subject}", summary="Look a schema up in a subject")
    async def lookup(subject: str, request: Request) -> Response:
        body = await schema_body(request)
        found = await registry.lookup(
            subject,
            body.get("schema"),
            body.get("schemaType"),
            body.get("references"),
            deleted=deleted(request),
        )
        return _ok(found.to_json())

    @router.delete("/subjects/{subject:subject}", summary="Delete a subject")
    async def delete_subject(subject: str, request: Request) -> Response:
        authorize(request, Access.ADMIN)
        permanent = query_flag(request, "permanent")
        return _ok(await registry.delete_subject(subject, permanent=permanent))

    # ----------------------------------------------------------------- compatibility
    async def compatibility(subject: str, version: VersionRef | None, request: Request) -> Response:
        body = await schema_body(request)
        result = await registry.test_compatibility(
            subject,
            body.get("schema"),
            body.get("schemaType"),
            body.get("references"),
            version=version,
        )
        answer: dict[str, Any] = {"is_compatible": result.is_compatible}
        if query_flag(request, "verbose"):
            answer["messages"] = result.messages
        return _ok(answer)

    @router.post(
        "/compatibility/subjects/{subject:subject}/versions/{version}",
        summary="Test compatibility with one version",
    )
    async def compatibility_version(subject: str, version: str, request: Request) -> Response:
        ref = parse_version(version)
        return await compatibility(subject, ref, request)

    @router.post(
        "/compatibility/subjects/{subject:subject}/versions",
        summary="Test compatibility as registering would",
    )
    async def compatibility_all(subject: str, request: Request) -> Response:
        return await compatibility(subject, None, request)

    # ----------------------------------------------------------------- config
    async def level_body(request: Request) -> object:
        body = await _body(request, max_body_bytes, err.INVALID_COMPATIBILITY_LEVEL)
        return body.get("compatibility", body.get("compatibilityLevel"))

    @router.get("/config", summary="Global compatibility level")
    async def get_config() -> Response:
        return _ok({"compatibilityLevel": (await registry.get_level()).value})

    @router.put("/config", summary="Set the global compatibility level")
    async def put_config(request: Request) -> Response:
        authorize(request, Access.ADMIN)
        level = await registry.set_level(None, await level_body(request))
        return _ok({"compatibility": level.value})

    @router.delete("/config", summary="Reset the global compatibility level")
    async def delete_config(request: Request) -> Response:
        authorize(request, Access.ADMIN)
        return _ok({"compatibilityLevel": (await registry.delete_level(None)).value})

    @router.get("/config/{subject:subject}", summary="A subject's compatibility level")
    async def get_subject_config(subject: str, request: Request) -> Response:
        level = await registry.get_level(
            subject, default_to_global=query_flag(request, "defaultToGlobal")
        )
        return _ok({"compatibilityLevel": level.value})

    @router.put("/config/{subject:subject}", summary="Set a subject's compatibility level")
    async def put_subject_config(subject: str, request: Request) -> Response:
        authorize(request, Access.ADMIN)
        level = await registry.set_level(subject, await level_body(request))
        return _ok({"compatibility": level.value})

    @router.delete("/config/{subject:subject}", summary="Drop a subject's compatibility level")
    async def delete_subject_config(subject: str, request: Request) -> Response:
        authorize(request, Access.ADMIN)
        return _ok({"compatibilityLevel": (await registry.delete_level(subject)).value})

    return router


def schema_registry_app(
    registry: SchemaRegistry,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    authorize: Authorizer = open_access,
) -> FastAPI:
    """A FastAPI app serving only the Schema Registry (for the dedicated port 8081)."""
    app = FastAPI(title="oddstream schema registry", docs_url=None, redoc_url=None)
    install_json_errors(app, MEDIA_TYPE, err.BACKEND_STORE_ERROR)
    app.include_router(
        schema_registry_router(registry, max_body_bytes=max_body_bytes, authorize=authorize)
    )

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return _ok({})

    return app


__all__ = ["LATEST", "MEDIA_TYPE", "schema_registry_app", "schema_registry_router"]
