"""The service's key policy for the Schema Registry and the REST Proxy.

* Reads (schemas, subjects, versions, lookups, compatibility checks, config, topics)
  are open.
* Registering schemas and producing (which may create a topic) take a ``producer`` or
  ``admin`` key, or nothing when anonymous producers are allowed
  (``ODDSTREAM_KAFKA_ANONYMOUS_PRODUCERS``).
* Deleting subjects or versions and setting or deleting compatibility levels take the
  admin key.

Outside these surfaces a ``producer`` key is still a key, never "no key": a principal
with no rights there. Admin routes refuse it (403), wallets refuse it
(``authorize_wallet`` answers 403 saying why), and a bet placed with it is a cash
bet whose request ids (and derived bet ids) are in the ``producer`` namespace, apart
from anonymous bettors' (:mod:`oddstream.api.request_ids`).

A key is taken from ``X-API-Key``, ``Authorization: Bearer`` or ``Authorization: Basic``
(Confluent clients' ``basic.auth.user.info``; the key is the password). A key that was
sent is always checked, also where none is needed: a wrong key is 403, never anonymous.
"""

from __future__ import annotations

from fastapi import Request

from ...api.auth import KeyRing, basic_auth_key, key_from_headers, principal_of
from ...api.errors import ApiError
from .access import Access, Authorizer, forbidden, unauthenticated
from .errors import ConfluentError

_MAY = {
    Access.PRODUCE: frozenset({"producer", "admin"}),
    Access.ADMIN: frozenset({"admin"}),
}
_NEEDS = {
    Access.PRODUCE: "registering schemas and producing need a producer or admin API key",
    Access.ADMIN: "deleting schemas and changing compatibility need the admin API key",
}


def kafka_authorizer(keys: KeyRing, *, anonymous_producers: bool) -> Authorizer:
    """The authorizer the service passes to both routers, on every port it serves them."""

    def authorize(request: Request, access: Access) -> None:
        headers = request.scope["headers"]
        key = key_from_headers(headers)
        if key is None:
            key = basic_auth_key(headers)
        try:
            principal = principal_of(keys, key, request.scope.get("client"))
        except ApiError as exc:  # a key nobody has, or too many of them from this client
            if exc.status == 429:
                raise ConfluentError(429, 42901, exc.message) from None
            raise forbidden(exc.message) from None
        if principal is None:
            if access is Access.PRODUCE and anonymous_producers:
                return
            raise unauthenticated(_NEEDS[access])
        if principal.role not in _MAY[access]:
            raise forbidden(f"a {principal.role} key may not do this: {_NEEDS[access]}")

    return authorize


__all__ = ["kafka_authorizer"]
