"""The services of the app serving a request (:class:`~oddstream.application.services.Services`)."""

from __future__ import annotations

from fastapi import Request

from ..application.services import Services


def services_of(request: Request) -> Services:
    """The services of the app serving ``request``."""
    return request.app.state.services  # type: ignore[no-any-return,unused-ignore]
