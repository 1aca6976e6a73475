"""HTTP routes of REST Proxy v2: produce, list and describe topics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response

from ..access import Access, Authorizer, open_access
from ..http import (
    confluent_route_class,
    install_json_errors,
    json_response,
    media_type_of,
    parse_json,
    read_body,
)
from . import errors as err
from .service import RestProxy, embedded_format

MEDIA_TYPE = "application/vnd.kafka.v2+json"
#: A batch of 1,000 records with room to spare.
DEFAULT_MAX_BODY = 16 << 20


def _ok(content: Any) -> Response:
    return json_response(content, MEDIA_TYPE)


def _partition(text: str, topic: str) -> int:
    """A path's partition number; one that cannot exist is simply not found."""
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise err.partition_not_found(topic, text)
    return int(value)


def rest_proxy_router(
    proxy: RestProxy,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    authorize: Authorizer = open_access,
) -> APIRouter:
    """Every REST Proxy route, at Confluent's root paths. ``authorize`` is asked before
    producing (:attr:`Access.PRODUCE`: producing may also create the topic); reads are
    open."""
    router = APIRouter(
        route_class=confluent_route_class(MEDIA_TYPE, err.KAFKA_ERROR), tags=["rest proxy"]
    )

    async def produce(topic: str, partition: int | None, request: Request) -> Response:
        authorize(request, Access.PRODUCE)
        fmt = embedded_format(media_type_of(request))
        body = parse_json(await read_body(request, max_body_bytes), err.INVALID_PAYLOAD)
        return _ok(await proxy.produce(topic, body, fmt, partition))

    async def description(topic: str) -> Any:
        found = await proxy.topics.describe(topic)
        if found is None:
            raise err.topic_not_found(topic)
        return found

    @router.get("/topics", summary="Topic names")
    async def topics() -> Response:
        return _ok(await proxy.topics.topics())

    @router.get("/topics/{topic}", summary="A topic")
    async def topic(topic: str) -> Response:
        return _ok((await description(topic)).to_json())

    @router.post("/topics/{topic}", summary="Produce records to a topic")
    async def produce_topic(topic: str, request: Request) -> Response:
        return await produce(topic, None, request)

    @router.get("/topics/{topic}/partitions", summary="A topic's partitions")
    async def partitions(topic: str) -> Response:
        found = await description(topic)
        return _ok([found.partition_json(p) for p in range(found.partitions)])

    @router.get("/topics/{topic}/partitions/{partition}", summary="One partition")
    async def partition(topic: str, partition: str) -> Response:
        found = await description(topic)
        number = _partition(partition, topic)
        if number >= found.partitions:
            raise err.partition_not_found(topic, number)
        return _ok(found.partition_json(number))

    @router.post("/topics/{topic}/partitions/{partition}", summary="Produce to a partition")
    async def produce_partition(topic: str, partition: str, request: Request) -> Response:
        return await produce(topic, _partition(partition, topic), request)

    @router.get("/brokers", summary="Brokers")
    async def brokers() -> Response:
        return _ok({"brokers": [0]})

    return router


def rest_proxy_app(
    proxy: RestProxy,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    authorize: Authorizer = open_access,
) -> FastAPI:
    """A FastAPI app serving only the REST Proxy (for the dedicated port 8082)."""
    app = FastAPI(title="oddstream REST proxy", docs_url=None, redoc_url=None)
    install_json_errors(app, MEDIA_TYPE, err.KAFKA_ERROR)
    app.include_router(rest_proxy_router(proxy, max_body_bytes=max_body_bytes, authorize=authorize))

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return _ok({})

    return app
