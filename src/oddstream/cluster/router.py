"""Commands to the owner of their partition, over NATS request/reply.

:class:`Router` gives the ports of :mod:`oddstream.runtime.ports` — ``races``,
``markets``, ``wallets``, ``bets`` (wallet bets on races) and ``market_bets`` (wallet
bets on markets) — that the use cases (in an API process) and the cashiers (in a
worker) send commands through. Each command goes to the subject of its stream's
partition (``<prefix>.cmd.<partition>``), which only that partition's owner subscribes
to; the answer carries the outcome and its position, or a typed refusal. Races and
markets are both *books* and go the same way (:class:`_RemoteBooks`); a wallet bet on
either goes to the wallet's owner (:class:`_ToWalletOwner`).

While a partition has no owner (a worker died and another has not taken over yet, or
ownership is moving) NATS answers "no responders" at once, or the old owner answers
``not_owner``: the command was not executed, so it is sent again after a short pause
until its deadline (``ODDSTREAM_COMMAND_DEADLINE_SECONDS``). Past the deadline, or with
NATS unreachable, the caller gets :class:`CommandsUnavailable` (HTTP 503 with
``Retry-After``). A request that was sent but not answered in time may have been
executed (``outcome_unknown``): a retry with the same request id answers ``repeated``.
An owner that speaks another wire format version (:mod:`.wire`; a rolling upgrade) is
``CommandsUnavailable`` too: at once, ``outcome_unknown`` unless it refused the request.

In a worker, a command for a partition the worker owns itself does not leave the
process (:class:`LocalOwner`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from nats.errors import ConnectionClosedError, NoRespondersError, OutboundBufferLimitError
from nats.errors import TimeoutError as NatsTimeout

from ..domain import fixedodds
from ..domain.tote.race import PlaceBet
from ..domain.wallet import WalletCommand, WalletState, market_book, race_book
from ..eventstore import EventStore, StoreUnavailable
from ..runtime.codec import registry
from ..runtime.market_writer import market_stream
from ..runtime.race_writer import race_stream
from ..runtime.writer import CommandOutcome
from . import wire
from .partitions import partition_of, wallet_partition

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient

    from ..runtime.cashier import Cashier
    from ..runtime.market_cashier import MarketCashier
    from ..runtime.market_writer import MarketWriter
    from ..runtime.race_writer import RaceWriter
    from ..runtime.wallet_writer import WalletWriter

log = logging.getLogger(__name__)

#: pause between attempts while a partition has no owner
_RETRY_PAUSE = 0.05


class CommandsUnavailable(StoreUnavailable):
    """No owner of the command's partition answered before the deadline, or the bus is
    unreachable (HTTP 503 with ``Retry-After``)."""


def command_subject(prefix: str, partition: int) -> str:
    """The NATS subject a partition's owner takes its commands on."""
    return f"{prefix}.cmd.{partition}"


class LocalOwner(Protocol):
    """A worker, as its own router sees it: commands for partitions it owns run here."""

    races: RaceWriter
    markets: MarketWriter
    wallets: WalletWriter
    cashier: Cashier
    market_cashier: MarketCashier

    def owns(self, partition: int) -> bool: ...

    def serving(self, partition: int) -> contextlib.AbstractAsyncContextManager[bool]:
        """Count a command in flight on ``partition``; yields False if not owned."""
        ...


class Router:
    """Sends each command to its partition's owner (see the module's docstring)."""

    def __init__(
        self,
        nc: NatsClient,
        *,
        prefix: str,
        partitions: int,
        deadline: float,
        store: EventStore,
        reader: WalletWriter,
        local: LocalOwner | None = None,
    ) -> None:
        """``store``: the log, for the events of an answer too large for a NATS message
        (:func:`.wire.fit`); ``reader`` answers :meth:`RemoteWallets.committed` from the
        log (a read any process may make); ``local``: the worker this router is in, if
        any."""
        self._nc = nc
        self._store = store
        self.prefix = prefix
        self.partitions = partitions
        self.deadline = deadline
        self._local = local
        self.races = RemoteRaces(self)
        self.markets = RemoteMarkets(self)
        self.wallets = RemoteWallets(self, reader)
        self.bets = RemoteWalletBets(self)
        self.market_bets = RemoteMarketBets(self)
        #: requests sent again because their partition had no owner for a moment
        self.retries = 0

    @contextlib.asynccontextmanager
    async def _locally(self, partition: int) -> AsyncIterator[LocalOwner | None]:
        """The local owner, holding ``partition`` for the call, or None: go remote."""
        local = self._local
        if local is None or not local.owns(partition):
            yield None
            return
        async with local.serving(partition) as owned:
            yield local if owned else None

    async def call(
        self,
        op: wire.Op,
        partition: int,
        command: Any = None,
        *,
        request_id: str | None = None,
        legacy_ids: Sequence[str] = (),
        args: tuple[str, ...] = (),
    ) -> wire.Reply:
        """Send ``op`` to ``partition``'s owner, again while it has none, until the
        deadline (each attempt carries the time left); the reply (a refusal not yet
        raised)."""
        subject = command_subject(self.prefix, partition)
        give_up = time.monotonic() + self.deadline
        while True:
            left = give_up - time.monotonic()
            if left <= 0:
                raise CommandsUnavailable(
                    f"partition {partition} has no owner answering; retry shortly"
                )
            req = wire.request(
                op,
                partition,
                left,
                command,
                request_id=request_id,
                legacy_ids=legacy_ids,
                args=args,
            )
            try:
                msg = await self._nc.request(subject, wire.encode(req), timeout=left)
            except NoRespondersError:
                self.retries += 1
                await asyncio.sleep(min(_RETRY_PAUSE, max(left, 0)))
                continue
            except NatsTimeout:
                raise CommandsUnavailable(
                    f"no answer from partition {partition}'s owner within the deadline",
                    outcome_unknown=True,
                ) from None
            except (ConnectionClosedError, OutboundBufferLimitError, OSError) as exc:
                raise CommandsUnavailable(f"the bus is unreachable: {exc}") from None
            try:
                reply = wire.decode_reply(msg.data)
            except wire.WireVersionError as exc:
                # a rolling upgrade across a format change: not this caller's fault
                raise CommandsUnavailable(
                    f"partition {partition}'s owner does not speak this process's wire "
                    f"format: {exc}",
                    outcome_unknown=not exc.refused,
                ) from None
            if reply.error is not None and wire.moved(reply.error):
                self.retries += 1
                await asyncio.sleep(min(_RETRY_PAUSE, max(left, 0)))
                continue
            return reply

    async def outcome(
        self,
        op: wire.Op,
        partition: int,
        command: Any,
        *,
        request_id: str | None = None,
        legacy_ids: Sequence[str] = (),
    ) -> CommandOutcome:
        """:meth:`call` for a command: its outcome, or its refusal raised."""
        reply = await self.call(
            op, partition, command, request_id=request_id, legacy_ids=legacy_ids
        )
        if reply.error is not None:
            wire.raise_error(reply.error)
        if reply.outcome is None:
            raise wire.WireFormatError("a command's reply without an outcome")
        return await self.outcome_of(reply.outcome)

    async def outcome_of(self, outcome: wire.WireOutcome) -> CommandOutcome:
        """The outcome of a reply, its events read from the log when they were left
        out of it (too many for a NATS message)."""
        count = outcome.elided
        if not count:
            return wire.outcome_of(outcome)
        first = outcome.stream_version - count + 1
        recorded = await self._store.read_stream(outcome.stream, from_version=first, limit=count)
        if len(recorded) != count:
            raise wire.WireFormatError(
                f"{outcome.stream} holds {len(recorded)} events from version {first}, "
                f"the answer {count}"
            )
        return CommandOutcome(
            events=tuple(registry.decode(r) for r in recorded),
            stream_version=outcome.stream_version,
            first_position=outcome.first_position,
            last_position=outcome.last_position,
            repeated=outcome.repeated,
        )

    async def value(self, op: wire.Op, partition: int, *args: str) -> str | bool | None:
        """:meth:`call` for a read: its value, or its refusal raised."""
        reply = await self.call(op, partition, args=args)
        if reply.error is not None:
            wire.raise_error(reply.error)
        return reply.value


class _RemoteBooks:
    """The ports of one kind of book (races, markets) through the router: a command,
    the recall of a request id and whose wallet a bet is, each to the owner of the
    book's partition (or run here, in a worker that owns it)."""

    #: the operation executing a command of this kind of book
    _op: wire.Op

    def __init__(self, router: Router) -> None:
        self._router = router

    def _here(self, local: LocalOwner) -> Any:
        """This kind of book's writer in a worker."""
        raise NotImplementedError

    def _book(self, key: str) -> str:
        """The book (stream id) of the race or market ``key``."""
        raise NotImplementedError

    async def execute(
        self,
        command: Any,
        *,
        request_id: str | None = None,
        legacy_ids: Sequence[str] = (),
    ) -> CommandOutcome:
        router = self._router
        partition = partition_of(wire.book_of(command), router.partitions)
        async with router._locally(partition) as local:
            if local is not None:
                outcome: CommandOutcome = await self._here(local).execute(
                    command, request_id=request_id, legacy_ids=legacy_ids
                )
                return outcome

        return await router.outcome(
            self._op, partition, command, request_id=request_id, legacy_ids=legacy_ids
        )

    async def recall(
        self, command: Any, request_id: str, legacy_ids: Sequence[str] = ()
    ) -> CommandOutcome | None:
        router = self._router
        partition = partition_of(wire.book_of(command), router.partitions)
        async with router._locally(partition) as local:
            if local is not None:
                found: CommandOutcome | None = await self._here(local).recall(
                    command, request_id, legacy_ids
                )
                return found

        reply = await router.call(
            wire.Op.RECALL, partition, command, request_id=request_id, legacy_ids=legacy_ids
        )
        if reply.error is not None:
            wire.raise_error(reply.error)
        return None if reply.outcome is None else await router.outcome_of(reply.outcome)

    async def bet_wallet(self, key: str, bet_id: str) -> str | None:
        router = self._router
        book = self._book(key)
        partition = partition_of(book, router.partitions)
        async with router._locally(partition) as local:
            if local is not None:
                held: str | None = await self._here(local).bet_wallet(key, bet_id)
                return held

        found = await router.value(wire.Op.BET_WALLET, partition, book, bet_id)
        return found if isinstance(found, str) else None


class RemoteRaces(_RemoteBooks):
    """:class:`oddstream.runtime.ports.Races` through the router."""

    _op = wire.Op.RACE

    def _here(self, local: LocalOwner) -> RaceWriter:
        return local.races

    def _book(self, key: str) -> str:
        return race_stream(key)


class RemoteMarkets(_RemoteBooks):
    """:class:`oddstream.runtime.ports.Markets` through the router: a market's requests
    go to the worker owning its partition, its single writer."""

    _op = wire.Op.MARKET

    def _here(self, local: LocalOwner) -> MarketWriter:
        return local.markets

    def _book(self, key: str) -> str:
        return market_stream(key)


class RemoteWallets:
    """:class:`oddstream.runtime.ports.Wallets` through the router."""

    def __init__(self, router: Router, reader: WalletWriter) -> None:
        self._router = router
        self._reader = reader

    async def execute(
        self,
        command: WalletCommand,
        *,
        request_id: str | None = None,
        legacy_ids: Sequence[str] = (),
    ) -> CommandOutcome:
        router = self._router
        partition = wallet_partition(command.wallet_id, router.partitions)
        async with router._locally(partition) as local:
            if local is not None:
                return await local.wallets.execute(
                    command, request_id=request_id, legacy_ids=legacy_ids
                )

        return await router.outcome(
            wire.Op.WALLET, partition, command, request_id=request_id, legacy_ids=legacy_ids
        )

    async def execute_many(
        self, commands: Sequence[tuple[WalletCommand, str | None]]
    ) -> list[CommandOutcome | BaseException]:
        return list(
            await asyncio.gather(
                *(self.execute(command, request_id=rid) for command, rid in commands),
                return_exceptions=True,
            )
        )

    async def committed(self, key: str) -> tuple[WalletState, int, int]:
        """Read from the log, here: any process may."""
        return await self._reader.committed(key)


class _ToWalletOwner:
    """Wallet bets through the router: placed and resolved by the cashier of the
    worker owning the wallet (which knows what it is placing right now)."""

    def __init__(self, router: Router) -> None:
        self._router = router

    async def _place(
        self,
        command: PlaceBet | fixedodds.PlaceBet,
        here: Callable[[LocalOwner], Awaitable[CommandOutcome]],
        legacy_ids: Sequence[str] = (),
    ) -> CommandOutcome:
        router = self._router
        if command.wallet_id is None:
            raise ValueError("place_bet needs a bet that names a wallet")
        partition = wallet_partition(command.wallet_id, router.partitions)
        async with router._locally(partition) as local:
            if local is not None:
                return await here(local)

        return await router.outcome(wire.Op.WALLET_BET, partition, command, legacy_ids=legacy_ids)

    async def _resolve(
        self,
        wallet_id: str,
        book: str,
        bet_id: str,
        here: Callable[[LocalOwner], Awaitable[bool]],
    ) -> bool:
        router = self._router
        partition = wallet_partition(wallet_id, router.partitions)
        async with router._locally(partition) as local:
            if local is not None:
                return await here(local)

        return bool(await router.value(wire.Op.RESOLVE, partition, wallet_id, book, bet_id))


class RemoteWalletBets(_ToWalletOwner):
    """:class:`oddstream.runtime.ports.WalletBets`: the cashier of the wallet's owner."""

    async def place_bet(
        self, command: PlaceBet, *, legacy_ids: Sequence[str] = ()
    ) -> CommandOutcome:
        return await self._place(
            command,
            lambda local: local.cashier.place_bet(command, legacy_ids=legacy_ids),
            legacy_ids,
        )

    async def resolve(self, wallet_id: str, race_id: str, bet_id: str) -> bool:
        return await self._resolve(
            wallet_id,
            race_book(race_id),
            bet_id,
            lambda local: local.cashier.resolve(wallet_id, race_id, bet_id),
        )


class RemoteMarketBets(_ToWalletOwner):
    """:class:`oddstream.runtime.ports.MarketWalletBets`: the markets' cashier of the
    wallet's owner (which places the bet on the market through its own router)."""

    async def place_bet(self, command: fixedodds.PlaceBet) -> CommandOutcome:
        return await self._place(command, lambda local: local.market_cashier.place_bet(command))

    async def resolve(self, wallet_id: str, market_id: str, bet_id: str) -> bool:
        return await self._resolve(
            wallet_id,
            market_book(market_id),
            bet_id,
            lambda local: local.market_cashier.resolve(wallet_id, market_id, bet_id),
        )
