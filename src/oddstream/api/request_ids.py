"""Clients' request ids, scoped by who sent them and what they asked for.

A client's ``request_id`` makes a command safe to retry. Two clients' ids must never meet:
an anonymous bettor's ``close-1`` is not the admin's ``close-1``, and a customer's debit
cannot take the id of the admin's coming deposit. So the id a writer records is the
client's id inside a namespace of the sender (``anonymous``, ``admin``, ``producer``
or ``customer:<wallet>``) and the command's kind, under ``client:`` so that no client can
reach the ids the runtime itself uses (the cashier's ``wallet-bet:…``, the Kafka bridge's
``tote_win_bets:…``). Ids are also per aggregate: the writer of a race or a wallet
remembers the ids of its own stream (forever: the store indexes them).
"""

from __future__ import annotations

import uuid

from .auth import Principal

_DERIVED_NAMESPACE = uuid.UUID("6f1f2f7e-4f3a-4a53-9a55-0d7c1b9e3a10")


def sender(principal: Principal | None) -> str:
    """The namespace of a request's sender."""
    if principal is None:
        return "anonymous"
    if principal.wallet_id is None:
        return principal.role
    return f"{principal.role}:{principal.wallet_id}"


def request_key(principal: Principal | None, kind: str, request_id: str | None) -> str | None:
    """The id a writer records for a client's ``request_id`` of a ``kind`` of command."""
    if request_id is None:
        return None
    return f"client:{sender(principal)}:{kind}:{request_id}"


def derived_id(principal: Principal | None, scope: str, request_id: str) -> str:
    """An id the server makes for a client's request (a bet, a race) that the client did
    not name: the same for every retry of the request, different for every sender."""
    return uuid.uuid5(_DERIVED_NAMESPACE, f"{scope}/{sender(principal)}/{request_id}").hex
