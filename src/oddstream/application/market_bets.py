"""Bets on fixed-odds markets, paid from wallets: ``POST /odds/{external_id}/bets``.

The tote's conventions (``application/bets.py``): a customer key pays from its own
wallet, an admin key names the wallet (``wallet_id``); a wallet bet's id in the market
is ``<wallet>~<id>``; a ``request_id`` names the same bet on every retry, which answers
as the first time did (``"repeated": true``) without moving money; the answer carries
the ``position`` to read one's write at (``?min_position=`` on the wallet's balance).
A bet on a market always comes from a wallet: there are no cash bets on markets.

The price is the one the customer accepts, read exactly: ``price`` is decimal odds (a
JSON number or a decimal string, its digits as written: ``1.91`` is 191/100), or
``price_fractional`` is the fractional text (``"8/13"``), for prices whose decimal does
not end. The market takes the bet at its current price if that is at least the price
asked, else refuses it (``price_worse``) and the stake goes back (docs/fixed-odds.md).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from ..domain.fixedodds import FixedOddsRejection, Odds, Outcome, PlaceBet
from ..domain.fixedodds.events import BetAccepted
from ..domain.fixedodds.formats import decimal_str, exact_str
from ..runtime.ids import new_id
from ..runtime.writer import CommandOutcome
from .access import Principal, authorize_wallet
from .bets import outcome_answer
from .bodies import Id, RequestId, decode
from .errors import ApiError
from .odds import check_external_id
from .request_ids import derived_id, race_bet_id
from .services import Services


class MarketBetBody(msgspec.Struct, forbid_unknown_fields=True):
    """A bet on a market: the body of ``POST /odds/{external_id}/bets``."""

    outcome: Outcome
    stake_cents: Annotated[int, Meta(ge=-(10**12), le=10**12)]
    price: (
        Annotated[
            Decimal,
            Meta(description="the lowest decimal odds accepted, exact (1.91 is 191/100)"),
        ]
        | None
    ) = None
    price_fractional: (
        Annotated[
            str,
            Meta(
                max_length=32, description='the lowest price accepted as fractional odds ("8/13")'
            ),
        ]
        | None
    ) = None
    bet_id: Annotated[Id, Meta(description="generated when left out")] | None = None
    request_id: RequestId | None = None
    wallet_id: (
        Annotated[
            Id, Meta(description="pay from this wallet (a customer key's own wallet by default)")
        ]
        | None
    ) = None


market_bet_decoder = msgspec.json.Decoder(MarketBetBody)


def asked_price(body: MarketBetBody) -> Odds:
    """The price the bet accepts, exactly (422 naming the field otherwise)."""
    if (body.price is None) == (body.price_fractional is None):
        raise ApiError(422, "bad_price", "give exactly one of price and price_fractional")
    try:
        if body.price is not None:
            return Odds.from_decimal(body.price)
        assert body.price_fractional is not None
        return Odds.from_fractional(body.price_fractional)
    except FixedOddsRejection as exc:
        field = "price" if body.price is not None else "price_fractional"
        raise ApiError(422, exc.code, f"{field}: {exc.message}") from None


def market_bet_wallet(principal: Principal | None, named: str | None) -> str:
    """The wallet a bet on a market is paid from: the one named (which the key must be
    allowed to use), else a customer key's own. 401 without a key; 422 for an admin
    key naming none."""
    if principal is None:
        raise ApiError(
            401, "unauthenticated", "a bet on a market is paid from a wallet: send a key"
        )
    if named is not None:
        authorize_wallet(principal, named)
        return named
    if principal.is_admin:
        raise ApiError(422, "wallet_required", "an admin key must name the wallet (wallet_id)")
    authorize_wallet(principal, principal.wallet_id or "")
    assert principal.wallet_id is not None
    return principal.wallet_id


def market_bet_command(
    market_id: str, body: MarketBetBody, wallet_id: str, principal: Principal
) -> PlaceBet:
    """The market's command for a bet, with its id in the market (``<wallet>~<id>``)."""
    if body.bet_id is not None:
        client_id = body.bet_id
    elif body.request_id is not None:  # a retry names the same bet
        client_id = derived_id(principal, f"bet/market/{market_id}/{wallet_id}", body.request_id)
    else:
        client_id = new_id()
    return PlaceBet(
        market_id=market_id,
        bet_id=race_bet_id(wallet_id, client_id),
        outcome=body.outcome,
        stake_cents=body.stake_cents,
        price=asked_price(body),
        wallet_id=wallet_id,
    )


def _price(odds: Odds) -> dict[str, Any]:
    return {
        "num": odds.num,
        "den": odds.den,
        "decimal": decimal_str(odds),
        "exact": exact_str(odds),
    }


async def place_market_bet(
    services: Services, market_id: str, raw: bytes, principal: Principal | None
) -> dict[str, Any]:
    """Place one bet on a market from its JSON body: its answer, or the refusal."""
    cashier = services.market_cashier
    assert cashier is not None  # made with the app, in both modes
    check_external_id(market_id)
    body = decode(market_bet_decoder, raw)
    wallet_id = market_bet_wallet(principal, body.wallet_id)
    assert principal is not None
    command = market_bet_command(market_id, body, wallet_id, principal)
    outcome: CommandOutcome = await cashier.place_bet(command)
    accepted = next((e for e in outcome.events if isinstance(e, BetAccepted)), None)
    if accepted is None:  # not expected: the cashier answers only a bet the market took
        raise ApiError(409, "duplicate_bet", f"bet {command.bet_id} is not this wallet's")
    services.metrics.wallet_bets.inc()
    return outcome_answer(
        outcome,
        bet_id=accepted.bet_id,
        market_id=market_id,
        wallet_id=wallet_id,
        selection=accepted.outcome.value,
        stake_cents=accepted.stake_cents,
        price=_price(accepted.price),
        requested=_price(accepted.requested),
    )
