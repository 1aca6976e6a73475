"""Money through fixed-odds markets: the process manager between wallets and markets.

The markets' counterpart of the tote's :class:`~.cashier.Cashier`, and the same
:class:`~.cashier.StakeCashier` underneath. A bet on a market is always paid from a
wallet, in three single-stream appends:

1. the wallet reserves the stake in the market's book (``market-<id>``;
   ``StakeRejected`` if the balance is short);
2. the market decides on the bet at its current price (``BetAccepted`` carrying the
   wallet id, or a refusal: ``price_worse``, ``market_suspended``, a limit …);
3. the wallet captures the stake (accepted) or releases it (refused).

Every ``fixedodds.BetSettled`` of a wallet bet (won, dead heat, lost, void) becomes a
``SettleStake`` on its wallet, paid once: the wallet's stake commands are idempotent by
state. A reservation a crash left open is resolved by the sweep once it is
``stale_after`` old, from what the market's log holds: captured if the market took the
bet for this wallet, released otherwise. This cashier follows reservations of market
books only (and the tote's of race books only), under a checkpoint of its own.

In services mode each worker has one: the bets paid from the wallets it owns are
placed by its cashier (the market reached through the router, on whichever worker owns
it), and the follower (settlements, the sweep) runs on one worker of the deployment,
resolving each stale reservation on the wallet's owner (``resolver``), as the tote's
cashier does (docs/services.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..domain.fixedodds import FixedOddsRejection, PlaceBet
from ..domain.fixedodds.events import BetAccepted
from ..domain.wallet import book_market, market_book
from ..domain.wallet.events import MARKET_BOOK
from ..eventstore import EventStore
from .cashier import StakeCashier, cashier_subscription, wallet_bet_request_id
from .market_writer import MarketRequest
from .ports import Markets, MarketWalletBets, Wallets
from .writer import CommandOutcome

CHECKPOINT = "process-wallet-market-cashier"
_SETTLED = "fixedodds.BetSettled"
#: what a bet is called among a market's requests (part of its request's fingerprint)
PLACE_BET = "PlaceBet"


def bet_request(command: PlaceBet) -> MarketRequest:
    """The market request of a bet."""
    return MarketRequest(action=PLACE_BET, command=command)


class MarketBets:
    """What the cashier asks of markets: through ``markets``, this process's market
    writer (embedded) or the router's (services mode: the market's owner)."""

    def __init__(self, markets: Markets) -> None:
        self.markets = markets

    async def execute(self, command: PlaceBet, request_id: str) -> CommandOutcome:
        """Decide and store the bet (the answer its request id got, if it had one)."""
        return await self.markets.execute(bet_request(command), request_id=request_id)

    async def recall(
        self, command: PlaceBet, request_id: str, legacy_ids: Sequence[str] = ()
    ) -> CommandOutcome | None:
        """The answer the bet's request id got before, or ``None``."""
        return await self.markets.recall(bet_request(command), request_id, legacy_ids)

    async def bet_wallet(self, market_id: str, bet_id: str) -> str | None:
        """The wallet the market holds bet ``bet_id`` for (``""`` for none named), or
        ``None`` if it holds no such bet — once the market's commands taken so far are
        decided and stored."""
        return await self.markets.bet_wallet(market_id, bet_id)


class MarketCashier(StakeCashier):
    """Places wallet bets on markets and pays their settlements into wallets, exactly
    once: the cashier of market books."""

    name = CHECKPOINT
    subscription = cashier_subscription(_SETTLED)
    book_prefix = MARKET_BOOK

    def __init__(
        self,
        store: EventStore,
        markets: MarketBets,
        wallets: Wallets,
        *,
        resolver: MarketWalletBets | None = None,
        stale_after: float = 10.0,
        sweep_every: float = 2.0,
        checkpoint_every: float = 1.0,
    ) -> None:
        super().__init__(
            store,
            wallets,
            stale_after=stale_after,
            sweep_every=sweep_every,
            checkpoint_every=checkpoint_every,
        )
        self._markets = markets
        # who resolves a stale reservation: this cashier (embedded), or, in services
        # mode, the markets' cashier of the worker owning the wallet, which knows what
        # is being placed there right now
        self._resolver: MarketWalletBets = resolver or self

    async def place_bet(self, command: PlaceBet) -> CommandOutcome:
        """Reserve the stake, place the bet on the market, capture or release: the
        market's answer (``BetAccepted``, at the price it was taken at).

        Raises :class:`~.cashier.InsufficientFunds`, the market's
        :class:`FixedOddsRejection` (the stake is released first), ``RequestIdReused``
        for a retry of the bet that differs (before any money moves), or
        :class:`WalletRejection` ``bet_in_progress`` while the same bet is being placed.
        """
        wallet_id = command.wallet_id
        if wallet_id is None:
            raise ValueError("a bet on a market is paid from a wallet")
        bet_id = command.bet_id
        request_id = wallet_bet_request_id(wallet_id, bet_id)

        def took(outcome: CommandOutcome) -> bool:
            accepted = [e for e in outcome.events if isinstance(e, BetAccepted)]
            return bool(accepted) and accepted[0].wallet_id == wallet_id

        return await self._place(
            wallet_id,
            market_book(command.market_id),
            bet_id,
            command.stake_cents,
            recall=lambda: self._markets.recall(command, request_id),
            place=lambda: self._markets.execute(command, request_id),
            took=took,
            duplicate=lambda: FixedOddsRejection("duplicate_bet", f"bet {bet_id} exists already"),
        )

    def _settled_book(self, data: Mapping[str, Any]) -> str:
        return market_book(data["market_id"])

    def _book_refusals(self) -> tuple[type[Exception], ...]:
        return (FixedOddsRejection,)

    async def _resolve_open(self, wallet_id: str, book: str, bet_id: str) -> bool:
        market_id = book_market(book)
        assert market_id is not None  # this cashier follows market books only
        return await self._resolver.resolve(wallet_id, market_id, bet_id)

    async def resolve(self, wallet_id: str, market_id: str, bet_id: str) -> bool:
        """Capture the stake if the market holds the bet for this wallet, release it
        otherwise (a reservation already closed is left as it is). False, doing
        nothing, while the bet is being placed in this process."""
        return await self._resolve_with(
            wallet_id,
            market_book(market_id),
            bet_id,
            lambda: self._markets.bet_wallet(market_id, bet_id),
        )
