"""What the use cases and the cashier send commands through.

Embedded, these are the writers themselves (:class:`~.race_writer.RaceWriter`,
:class:`~.wallet_writer.WalletWriter`, :class:`~.market_writer.MarketWriter`) and the
cashiers (:class:`~.cashier.Cashier`, :class:`~.market_cashier.MarketCashier`); in services
mode they are :mod:`oddstream.cluster.router`'s, which carry each command to the worker
owning its partition and bring its answer back. Either way a caller sees the same
outcomes and the same typed refusals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ..domain.fixedodds import PlaceBet as MarketBet
from ..domain.tote.race import PlaceBet, RaceCommand
from ..domain.wallet import WalletCommand, WalletState
from .writer import CommandOutcome

if TYPE_CHECKING:
    from .market_writer import MarketRequest


class Races(Protocol):
    """Race commands and the reads the cashier needs of a race."""

    async def execute(
        self,
        command: RaceCommand,
        *,
        request_id: str | None = None,
        legacy_ids: Sequence[str] = (),
    ) -> CommandOutcome:
        """Decide and store ``command`` (see :meth:`.writer.AggregateWriter.execute`)."""
        ...

    async def recall(
        self, command: RaceCommand, request_id: str, legacy_ids: Sequence[str] = ()
    ) -> CommandOutcome | None:
        """The answer ``request_id`` got before, or ``None``."""
        ...

    async def bet_wallet(self, race_id: str, bet_id: str) -> str | None:
        """The wallet the race holds bet ``bet_id`` for (``""`` for a cash bet), or
        ``None`` if the race has no such bet."""
        ...


class Wallets(Protocol):
    """Wallet commands, and a wallet as the log holds it."""

    async def execute(
        self,
        command: WalletCommand,
        *,
        request_id: str | None = None,
        legacy_ids: Sequence[str] = (),
    ) -> CommandOutcome:
        """Decide and store ``command``."""
        ...

    async def execute_many(
        self, commands: Sequence[tuple[WalletCommand, str | None]]
    ) -> list[CommandOutcome | BaseException]:
        """Each ``(command, request_id)`` on its own; refusals in place of answers."""
        ...

    async def committed(self, key: str) -> tuple[WalletState, int, int]:
        """``(state, version, position)`` of the wallet as the log holds it."""
        ...


class WalletBets(Protocol):
    """Bets paid from wallets (the cashier of the wallet's owner)."""

    async def place_bet(
        self, command: PlaceBet, *, legacy_ids: Sequence[str] = ()
    ) -> CommandOutcome:
        """Reserve the stake, place the bet, capture or release: the race's answer."""
        ...

    async def resolve(self, wallet_id: str, race_id: str, bet_id: str) -> bool:
        """Capture or release a reservation left open; False if the bet is being placed
        right now (it is left alone)."""
        ...


class Markets(Protocol):
    """Fixed-odds market requests and the read a cashier needs of a market."""

    async def execute(
        self,
        command: MarketRequest,
        *,
        request_id: str | None = None,
        legacy_ids: Sequence[str] = (),
    ) -> CommandOutcome:
        """Decide and store ``command`` (see :meth:`.writer.AggregateWriter.execute`)."""
        ...

    async def recall(
        self, command: MarketRequest, request_id: str, legacy_ids: Sequence[str] = ()
    ) -> CommandOutcome | None:
        """The answer ``request_id`` got before, or ``None``."""
        ...

    async def bet_wallet(self, market_id: str, bet_id: str) -> str | None:
        """The wallet the market holds bet ``bet_id`` for (``""`` for none named), or
        ``None`` if the market has no such bet."""
        ...


class MarketWalletBets(Protocol):
    """Bets on markets paid from wallets (the markets' cashier of the wallet's owner)."""

    async def place_bet(self, command: MarketBet) -> CommandOutcome:
        """Reserve the stake, place the bet, capture or release: the market's answer."""
        ...

    async def resolve(self, wallet_id: str, market_id: str, bet_id: str) -> bool:
        """Capture or release a reservation left open; False if the bet is being placed
        right now (it is left alone)."""
        ...
