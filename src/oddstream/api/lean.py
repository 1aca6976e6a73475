"""Routes answered without the framework's routing, dependency solving and validation:
the ones that come by the thousand (a bet, a wallet's credit, debit and balance, the
live odds stream). Each is the only implementation of its endpoint.

They run inside the app's one middleware (:class:`.middleware.Edge`), like every other
route: the same correlation id, request metrics and log line, body limit, key checks
and error rendering (:func:`.errors.render`). What they skip is what a profile under
load showed to cost: FastAPI's route matching over every route, its dependency solving
and pydantic validation (together about 40% of a bet's CPU). Their bodies are decoded
by msgspec with the use case's own schema, which is also what the OpenAPI document
shows (:meth:`LeanRoutes.openapi_paths`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import msgspec
from starlette.types import Receive, Scope, Send

from ..application.access import Principal
from ..application.bodies import MAX_POSITION
from ..application.errors import ApiError, error_body, render
from ..application.services import Services
from .auth import key_from_headers, principal_of
from .schemas import require_json

if TYPE_CHECKING:
    from .middleware import RequestRecord

_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}\Z")
encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class Call:
    """One request to a lean JSON route, as its endpoint sees it."""

    services: Services
    principal: Principal | None
    param: str  # the path's one parameter
    body: bytes
    scope: Scope

    def query_int(self, name: str, lo: int = 0, hi: int = MAX_POSITION) -> int | None:
        """The query parameter ``name`` as an integer in ``[lo, hi]`` (its last value),
        ``None`` when absent, else a 422 naming it."""
        raw = self.scope.get("query_string")
        if not raw:
            return None
        found = None
        for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            if key == name:
                found = value
        if found is None:
            return None
        text = found.strip()
        if not (text.isascii() and text.lstrip("-").isdigit()) or not lo <= int(text) <= hi:
            raise ApiError(
                422,
                "invalid_request",
                f"query.{name}: should be an integer from {lo} to {hi}",
                details=[{"where": f"query.{name}", "problem": "not an integer in range"}],
            )
        return int(text)


JsonEndpoint = Callable[[Call], Awaitable[tuple[int, Any]]]
StreamEndpoint = Callable[[Services, Scope, Receive, Send, "RequestRecord", str], Awaitable[None]]


@dataclass(slots=True)
class LeanRoute:
    """``method path`` answered by ``endpoint``; ``path`` has one ``{parameter}``, an id
    (checked here: 422 otherwise, as the framework's routes answer)."""

    method: str
    path: str
    endpoint: JsonEndpoint | None = None
    stream: StreamEndpoint | None = None
    operation: dict[str, Any] = field(default_factory=dict)
    pattern: re.Pattern[str] = field(init=False)
    param: str = field(init=False)

    def __post_init__(self) -> None:
        head, param, tail = re.fullmatch(r"(.*)\{(\w+)\}(.*)", self.path).groups()  # type: ignore[union-attr]
        self.param = param
        self.pattern = re.compile(f"^{re.escape(head)}([^/]+){re.escape(tail)}$")


class LeanRoutes:
    """The lean routes, matched by path before the framework's router sees a request."""

    def __init__(self, routes: Sequence[LeanRoute]) -> None:
        self.routes = tuple(routes)
        self._by_path: dict[str, list[LeanRoute]] = {}
        for route in self.routes:
            self._by_path.setdefault(route.path, []).append(route)

    def match(self, scope: Scope) -> tuple[LeanRoute | None, str | None, str | None]:
        """The route for the request and its path parameter; ``(None, None, allow)``
        when the path is a lean route's but not the method (``allow``: its methods);
        ``(None, None, None)`` when the path is none of theirs."""
        path = scope["path"]
        method = scope["method"]
        allow = None
        for route in self.routes:
            found = route.pattern.match(path)
            if found is not None:
                if route.method == method:
                    return route, found.group(1), None
                allow = ", ".join(r.method for r in self._by_path[route.path])
        return None, None, allow

    async def serve(
        self,
        route: LeanRoute,
        param: str,
        services: Services,
        scope: Scope,
        receive: Receive,
        send: Send,
        record: RequestRecord,
    ) -> None:
        """Answer the request: read its body, check it, run the endpoint, send the JSON
        answer or the refusal."""
        if route.stream is not None:
            if _ID.match(param) is None:
                await send_json(send, record, *_refusal(_bad_param(route, param)))
                return
            await route.stream(services, scope, receive, send, record, param)
            return
        assert route.endpoint is not None
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        try:
            if _ID.match(param) is None:
                raise _bad_param(route, param)
            if scope["method"] == "POST":
                require_json(scope["headers"])
            principal = principal_of(
                services.keys, key_from_headers(scope["headers"]), scope.get("client")
            )
            status, payload = await route.endpoint(
                Call(services, principal, param, b"".join(chunks), scope)
            )
            body, headers = encoder.encode(payload), None
        except Exception as exc:  # rendered as the framework's routes render it
            status, body, headers = _refusal(exc)
        await send_json(send, record, status, body, headers)

    def openapi_paths(self) -> dict[str, Any]:
        """The OpenAPI ``paths`` of the lean routes."""
        paths: dict[str, Any] = {}
        for route in self.routes:
            paths.setdefault(route.path, {})[route.method.lower()] = route.operation
        return paths


def _bad_param(route: LeanRoute, value: str) -> ApiError:
    where = f"path.{route.param}"
    problem = "should be 1 to 100 characters of A-Z a-z 0-9 . _ : -"
    return ApiError(
        422,
        "invalid_request",
        f"{where}: {problem}",
        details=[{"where": where, "problem": problem}],
    )


def _refusal(exc: Exception) -> tuple[int, bytes, dict[str, str] | None]:
    status, payload, headers = render(exc)
    return status, encoder.encode(payload), headers


def method_not_allowed(allow: str) -> tuple[int, bytes, dict[str, str]]:
    """The 405 of a lean route's path asked with another method."""
    body = error_body("method_not_allowed", "Method Not Allowed")
    return 405, encoder.encode(body), {"Allow": allow}


async def send_json(
    send: Send,
    record: RequestRecord,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
) -> None:
    """Send a whole JSON answer."""
    raw = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if headers:
        raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": record.answer_headers(status, raw),
        }
    )
    await send({"type": "http.response.body", "body": body})
