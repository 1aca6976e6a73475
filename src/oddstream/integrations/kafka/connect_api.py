"""Kafka Connect's REST API on the SQL sinks' :class:`~oddstream.sinks.ConnectorManager`.

The routes, answers and errors are Kafka Connect's (``ConnectorsResource``,
``ConnectorPluginsResource``): errors are ``{"error_code": <the HTTP status>, "message":
…}``; an invalid configuration, a name that cannot be one, a name in the config other
than the URL's and a body that is not a ``{name, config}`` object (or, for ``PUT
…/config``, a config object) are 400, as Connect answers them; an existing name 409, an
unknown one 404; pause and resume 202, restart and delete 204. Passwords are never
echoed (the manager answers the redacted view).

Every connector route takes the admin key (``X-API-Key``, ``Authorization: Bearer`` or
``Basic`` with the key as the password): a config names the target database, its host
and user, and a status trace carries the driver's messages. ``GET /connector-plugins``
(and ``GET /`` on the dedicated port) is open.

The same router serves the main app (embedded mode) and, with ``--kafka-compat``, the
dedicated app on port 8083 (:func:`connect_app`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, FastAPI, Request, Response

from ... import __version__
from ...api.auth import KeyRing, basic_auth_key, key_from_headers, principal_of
from ...api.errors import ApiError
from ...sinks import (
    ConnectorConflict,
    ConnectorExists,
    ConnectorManager,
    ConnectorNotFound,
    InvalidConnectorName,
    SinkConfigError,
)
from ...sinks.config import SINK_CLASS
from ...sinks.connectors import MAX_NAME_LENGTH
from .errors import ConfluentError
from .http import (
    confluent_route_class,
    install_json_errors,
    json_response,
    media_type_of,
    read_body,
)

MEDIA_TYPE = "application/json"
#: the largest body a connector route reads (a config is a few hundred bytes)
MAX_BODY = 1 << 20
#: the version ``GET /connector-plugins`` reports for the JDBC sink (Confluent's
#: connector whose configuration and behaviour the sinks follow)
PLUGIN_VERSION = "10.8.0"

#: the admin check of the connector routes: raises :class:`ConfluentError` (401, 403, 429)
ConnectAuthorizer = Callable[[Request], None]
#: the manager serving a request
ManagerOf = Callable[[Request], ConnectorManager]


def connect_authorizer(keys: KeyRing) -> ConnectAuthorizer:
    """Admin keys only, refused in Connect's error shape."""

    def authorize(request: Request) -> None:
        headers = request.scope["headers"]
        key = key_from_headers(headers)
        if key is None:
            key = basic_auth_key(headers)
        try:
            principal = principal_of(keys, key, request.scope.get("client"))
        except ApiError as exc:  # a key nobody has, or too many of them from this client
            raise _error(exc.status if exc.status == 429 else 403, exc.message) from None
        if principal is None:
            raise _error(401, "connectors need the admin API key")
        if not principal.is_admin:
            raise _error(403, f"a {principal.role} key may not manage connectors")

    return authorize


def _error(status: int, message: str) -> ConfluentError:
    return ConfluentError(status, status, message)


def _invalid_config(exc: SinkConfigError) -> ConfluentError:
    """Connect's answer to a refused configuration (``AbstractHerder``'s message)."""
    lines = "\n".join(f"{p.setting}: {p.message}" for p in exc.problems)
    return _error(
        400,
        f"Connector configuration is invalid and contains the following "
        f"{len(exc.problems)} error(s):\n{lines}\nYou can also find the above list of "
        "errors at the endpoint `/connector-plugins/{connectorType}/config/validate`",
    )


async def _json_body(request: Request) -> Any:
    media = media_type_of(request)
    if media is None or not (media == "application/json" or media.endswith("+json")):
        raise _error(415, "HTTP 415 Unsupported Media Type: send application/json")
    body = await read_body(request, MAX_BODY)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _error(400, f"Invalid JSON in request body: {exc}") from None


def _config_of(value: Any) -> dict[str, Any]:
    """A config as Connect reads it (``Map<String, String>``: scalars only)."""
    if not isinstance(value, Mapping):
        raise _error(400, "the connector's config must be a JSON object of settings")
    for key, setting in value.items():
        if not isinstance(setting, (str, int, float, bool)):
            raise _error(400, f"setting {key!r} must be a string, a number or a boolean")
    return dict(value)


def _name_of(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _error(400, "a connector needs a name: a non-empty string")
    if len(value) > MAX_NAME_LENGTH:
        raise _error(400, f"a connector's name is at most {MAX_NAME_LENGTH} characters")
    return value.strip()  # Connect trims the name it is given


def _with_name(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """Connect's ``checkAndPutConnectorConfigName``: the config's ``name`` is the URL's."""
    given = config.get("name")
    if given is None:
        return {**config, "name": name}
    if given != name:
        raise _error(
            400,
            f"Connector name configuration ({given}) doesn't match connector name in the "
            f"URL ({name})",
        )
    return config


def _check_name(name: str) -> None:
    if "/" in name:
        raise _error(400, "connector name should not contain '/'")


async def _run(call: Any) -> Any:
    """Await a manager call, its refusals as Connect's errors."""
    try:
        return await call
    except SinkConfigError as exc:
        raise _invalid_config(exc) from None
    except InvalidConnectorName as exc:
        raise _error(400, str(exc)) from None
    except ConnectorNotFound as exc:
        raise _error(404, str(exc)) from None
    except (ConnectorExists, ConnectorConflict) as exc:
        raise _error(409, str(exc)) from None


def _found(manager: ConnectorManager, name: str) -> None:
    if name not in manager.list():
        raise _error(404, f"Connector {name} not found")


def _location(name: str) -> str:
    """The new connector's URL, percent-encoded (a header is Latin-1: a name may be any
    text)."""
    return "/connectors/" + quote(name, safe="")


def _ok(content: Any, status: int = 200) -> Response:
    return json_response(content, MEDIA_TYPE, status)


def _plugins(manager: ConnectorManager) -> list[dict[str, str]]:
    return [{"class": SINK_CLASS, "type": "sink", "version": PLUGIN_VERSION}] + [
        {"class": plugin.connector_class, "type": "sink", "version": plugin.version}
        for plugin in manager.plugins.values()
    ]


def connect_router(manager_of: ManagerOf, authorize: ConnectAuthorizer) -> APIRouter:
    """Kafka Connect's connector and plugin routes on the manager ``manager_of`` gives."""
    router = APIRouter(route_class=confluent_route_class(MEDIA_TYPE, 500), tags=["kafka connect"])

    def manager(request: Request) -> ConnectorManager:
        authorize(request)
        return manager_of(request)

    @router.get("/connectors", summary="Connector names (with ?expand=status|info: details)")
    async def list_connectors(request: Request) -> Response:
        connectors = manager(request)
        expand = {e.strip().lower() for e in request.query_params.getlist("expand")}
        names = connectors.list()
        if not expand & {"status", "info"}:
            return _ok(names)
        out: dict[str, dict[str, Any]] = {}
        for name in names:
            entry: dict[str, Any] = {}
            try:
                if "status" in expand:
                    entry["status"] = (await connectors.status(name)).to_json()
                if "info" in expand:
                    entry["info"] = connectors.info(name).to_json()
            except ConnectorNotFound:
                continue  # deleted meanwhile
            out[name] = entry
        return _ok(out)

    @router.post("/connectors", summary="Create a connector: {name, config}", status_code=201)
    async def create_connector(request: Request) -> Response:
        connectors = manager(request)
        body = await _json_body(request)
        if not isinstance(body, Mapping):
            raise _error(400, 'the body must be a JSON object {"name": …, "config": {…}}')
        name = _name_of(body.get("name"))
        _check_name(name)
        config = _with_name(name, _config_of(body.get("config")))
        info = await _run(connectors.create(name, config))
        response = _ok(info.to_json(), 201)
        response.headers["Location"] = _location(name)
        return response

    @router.get("/connectors/{name}", summary="A connector: name, config, tasks, type")
    async def get_connector(name: str, request: Request) -> Response:
        connectors = manager(request)
        _found(connectors, name)
        return _ok(connectors.info(name).to_json())

    @router.delete(
        "/connectors/{name}",
        summary="Delete a connector (its tables and offsets row stay)",
        status_code=204,
        response_class=Response,
    )
    async def delete_connector(name: str, request: Request) -> Response:
        await _run(manager(request).delete(name))
        return Response(status_code=204)

    @router.get("/connectors/{name}/config", summary="A connector's config (passwords hidden)")
    async def get_config(name: str, request: Request) -> Response:
        connectors = manager(request)
        _found(connectors, name)
        return _ok(connectors.config(name))

    @router.put(
        "/connectors/{name}/config",
        summary="Create or update a connector's config (201 created, 200 updated)",
        responses={
            201: {
                "description": "created",
                "content": {MEDIA_TYPE: {"schema": {"type": "object"}}},
            }
        },
    )
    async def put_config(name: str, request: Request) -> Response:
        connectors = manager(request)
        _check_name(name)
        config = _with_name(name, _config_of(await _json_body(request)))
        info, created = await _run(connectors.update_config(name, config))
        response = _ok(info.to_json(), 201 if created else 200)
        if created:
            response.headers["Location"] = _location(name)
        return response

    @router.get(
        "/connectors/{name}/status",
        summary="Connector and task states (?details=true: the sink's own figures)",
    )
    async def get_status(name: str, request: Request) -> Response:
        connectors = manager(request)
        status = await _run(connectors.status(name))
        details = request.query_params.get("details", "").strip().lower() == "true"
        answer = status.to_json(details=details)
        if details:
            answer["details"]["config_report"] = connectors.info(name).report
        return _ok(answer)

    @router.get("/connectors/{name}/tasks", summary="A connector's tasks and their configs")
    async def get_tasks(name: str, request: Request) -> Response:
        connectors = manager(request)
        _found(connectors, name)
        config = connectors.config(name)
        return _ok([{"id": {"connector": name, "task": 0}, "config": config}])

    @router.put(
        "/connectors/{name}/pause",
        summary="Pause a connector",
        status_code=202,
        response_class=Response,
    )
    async def pause(name: str, request: Request) -> Response:
        await _run(manager(request).pause(name))
        return Response(status_code=202)

    @router.put(
        "/connectors/{name}/resume",
        summary="Resume a connector",
        status_code=202,
        response_class=Response,
    )
    async def resume(name: str, request: Request) -> Response:
        await _run(manager(request).resume(name))
        return Response(status_code=202)

    @router.post(
        "/connectors/{name}/restart",
        summary="Restart a connector and its task (204; with includeTasks or onlyFailed: "
        "202 and the status)",
        status_code=204,
        response_class=Response,
        responses={
            202: {
                "description": "restarting: the status",
                "content": {MEDIA_TYPE: {"schema": {"type": "object"}}},
            }
        },
    )
    async def restart(name: str, request: Request) -> Response:
        connectors = manager(request)
        await _run(connectors.restart(name))
        flags = ("includeTasks", "onlyFailed")
        if any(request.query_params.get(f, "").strip().lower() == "true" for f in flags):
            return _ok((await _run(connectors.status(name))).to_json(), 202)
        return Response(status_code=204)

    @router.get(
        "/connector-plugins", summary="The connector plugins: the JDBC sink, the quote tables"
    )
    async def plugins(request: Request) -> Response:
        return _ok(_plugins(manager_of(request)))  # open: no key, as Connect

    return router


def connect_app(manager: ConnectorManager, authorize: ConnectAuthorizer) -> FastAPI:
    """Kafka Connect's REST API as an app of its own (port 8083 with --kafka-compat)."""
    app = FastAPI(title="oddstream Kafka Connect", docs_url=None, redoc_url=None)
    install_json_errors(app, MEDIA_TYPE, 500)
    app.include_router(connect_router(lambda _request: manager, authorize))

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return _ok(
            {"version": f"oddstream-{__version__}", "commit": "", "kafka_cluster_id": "oddstream"}
        )

    return app


__all__ = [
    "ConnectAuthorizer",
    "connect_app",
    "connect_authorizer",
    "connect_router",
]
