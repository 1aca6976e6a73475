"""Who may call what on the Confluent-compatible surfaces: the hook the routers call.

The routers know three kinds of call and nothing about keys; whoever mounts them
passes an :data:`Authorizer` that decides (the service's is
:func:`.access_policy.kafka_authorizer`). Refusals are Confluent-shaped:
401/40101 without credentials, 403/40301 with credentials that may not do this.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from fastapi import Request

from .errors import ConfluentError

UNAUTHENTICATED = 40101
FORBIDDEN = 40301


class Access(enum.StrEnum):
    """The kinds of call, from the routers' point of view."""

    #: register a schema; produce to a topic (which may create it)
    PRODUCE = "produce"
    #: delete a subject or a version; set or delete a compatibility level
    ADMIN = "admin"


#: Raises :class:`ConfluentError` (see :func:`unauthenticated`, :func:`forbidden`) when
#: the request may not make a call of this kind. Reads are not checked.
Authorizer = Callable[[Request, Access], None]


def open_access(request: Request, access: Access) -> None:
    """Everyone may do everything: for a router used as a library (tests, tools); the
    service passes its key policy instead."""


def unauthenticated(message: str) -> ConfluentError:
    """401/40101: the call needs credentials and none came."""
    return ConfluentError(401, UNAUTHENTICATED, message)


def forbidden(message: str) -> ConfluentError:
    """403/40301: the credentials are unknown or may not make this call."""
    return ConfluentError(403, FORBIDDEN, message)


__all__ = ["Access", "Authorizer", "forbidden", "open_access", "unauthenticated"]
