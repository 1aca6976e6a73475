"""Who a request is from and what it may do with a wallet (the keys themselves, and
how a request presents one, are the HTTP layer's: ``api/auth.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import ApiError

Role = Literal["admin", "customer", "producer", "ingest", "provider"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a key belongs to: a role and, for a customer, the one wallet it may use; for
    an odds provider, the provider it speaks for."""

    role: Role
    wallet_id: str | None = None
    provider: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def may_ingest(self) -> bool:
        """Whether the key may post quote events (an ingest or an admin key)."""
        return self.role in ("ingest", "admin")


def authorize_wallet(
    principal: Principal | None, wallet_id: str, *, admin_only: bool = False
) -> Principal:
    """Whether ``principal`` may use ``wallet_id``: 401 without a key, 403 for another
    customer's wallet (the same answer whether that wallet exists or not) and for a
    producer key, which has no wallet."""
    if principal is None:
        raise ApiError(401, "unauthenticated", "wallet calls need an API key")
    if principal.is_admin:
        return principal
    if principal.role == "producer":  # said apart, so the answer says why
        raise ApiError(
            403,
            "forbidden",
            "a producer key may only register schemas and produce to topics: "
            "it has no wallet and may use none",
        )
    if principal.role == "ingest":
        raise ApiError(
            403, "forbidden", "an ingest key may only post quote events: it may use no wallet"
        )
    if principal.role == "provider":
        raise ApiError(
            403, "forbidden", "a provider key may only send odds commands: it may use no wallet"
        )
    if admin_only:
        raise ApiError(403, "forbidden", "only an admin key may do this")
    if principal.wallet_id != wallet_id:
        raise ApiError(403, "forbidden", "this key may only use its own wallet")
    return principal


def authorize_provider(principal: Principal | None, provider: str) -> Principal:
    """Who may give a market's commands in ``provider``'s name: its own provider key, or
    an admin key (for any provider). 401 without a key; 403 for any other key, and for a
    provider key naming another provider (whether the market is its own is the domain's
    ``not_owner``)."""
    if principal is None:
        raise ApiError(401, "unauthenticated", "odds commands need a provider (or admin) API key")
    if principal.is_admin:
        return principal
    if principal.role != "provider":
        raise ApiError(403, "forbidden", f"a {principal.role} key may not send odds commands")
    if principal.provider != provider:
        raise ApiError(
            403,
            "provider_mismatch",
            f"this key speaks for provider {principal.provider!r}, not {provider!r}",
        )
    return principal
