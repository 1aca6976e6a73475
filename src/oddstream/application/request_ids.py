"""Clients' request ids and bet ids, scoped by who sent them and what they asked for.

A client's ``request_id`` makes a command safe to retry. Two clients' ids must never meet:
an anonymous bettor's ``close-1`` is not the admin's ``close-1``, and a customer's debit
cannot take the id of the admin's coming deposit. So the id a writer records is the
client's id inside a namespace of the sender (``anonymous``, ``admin``, ``producer``,
``customer:<wallet>`` or ``provider:<provider>``) and the command's kind, under
``client:`` so that no client can reach the ids the runtime itself uses (the cashier's
``wallet-bet:…``, the Kafka bridge's ``tote_win_bets:…``). Ids are also per aggregate:
the writer of a race, a wallet or a market remembers the ids of its own stream (forever:
the store indexes them).
"""

from __future__ import annotations

import uuid

from .access import Principal

_DERIVED_NAMESPACE = uuid.UUID("6f1f2f7e-4f3a-4a53-9a55-0d7c1b9e3a10")


def sender(principal: Principal | None) -> str:
    """The namespace of a request's sender."""
    if principal is None:
        return "anonymous"
    if principal.provider is not None:
        return f"{principal.role}:{principal.provider}"
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


#: Joins a wallet and a client's bet id into the bet's id in the race. Neither client ids
#: nor wallet ids may contain it, so a wallet's bets can never share an id with a cash
#: bet or another wallet's bet.
OWNER_SEPARATOR = "~"


def race_bet_id(wallet_id: str | None, bet_id: str) -> str:
    """A bet's id in its race: a cash bet's is the client's id; a wallet bet's is
    ``<wallet>~<id>``. Bet ids are unique per race, so without the wallet anyone could
    take a customer's bet id in a race first (a cash bet), or learn from the refusal
    that a customer had bet under it."""
    return bet_id if wallet_id is None else f"{wallet_id}{OWNER_SEPARATOR}{bet_id}"


# Versions before scoped ids recorded clients' ids differently. A retry sent across the
# upgrade must still find its first answer, so these are looked up too, among events
# stored without a fingerprint (by those versions) only.


def legacy_ids(request_id: str | None, *, on_race: bool) -> tuple[str, ...]:
    """The id a client's ``request_id`` was recorded under before scoping: on a race
    ``client:<id>``, on a wallet the id itself."""
    if request_id is None:
        return ()
    return (f"client:{request_id}",) if on_race else (request_id,)


def legacy_bet_id(
    race_id: str, wallet_id: str, bet_id: str | None, request_id: str | None
) -> str | None:
    """The id a wallet bet had in its race before owner-scoped bet ids: the client's, or
    one derived from race, wallet and request id (``None``: neither was given)."""
    if bet_id is not None:
        return bet_id
    if request_id is None:
        return None
    return uuid.uuid5(_DERIVED_NAMESPACE, f"{race_id}/{wallet_id}/{request_id}").hex
