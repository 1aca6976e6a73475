"""API keys and roles. Admin actions need the admin key (``Authorization: Bearer`` or
``X-API-Key``); keys are compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import Request

from .errors import ApiError


def presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return None


def require_admin(request: Request) -> None:
    """FastAPI dependency: 401 without a key, 403 with a wrong one."""
    expected: str | None = request.app.state.services.admin_key
    key = presented_key(request)
    if key is None:
        raise ApiError(401, "unauthenticated", "this action needs the admin API key")
    if expected is None or not hmac.compare_digest(key.encode(), expected.encode()):
        raise ApiError(403, "forbidden", "this key may not perform admin actions")
