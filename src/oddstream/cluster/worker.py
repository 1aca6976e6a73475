"""The worker process: owns a share of the partitions and runs the consumers.

A worker holds the single writers of the races, fixed-odds markets and wallets whose
partitions it owns (:mod:`.leases` says which), takes their commands from NATS (one
subscription per owned partition: ``<prefix>.cmd.<partition>``) and answers each with
its outcome. It runs the cashiers (of races and of markets) for the wallets it owns, and
whichever of the deployment's run-once consumers it was given (each cashier's follower,
which pays settlements into wallets and sweeps stale reservations; the wallet read
model in Redis). The market events it stores it publishes on the velocity bus.

Giving a partition up (another worker joined, or this one stops): unsubscribe (a drain:
requests already on their way are answered ``not_owner``, none is dropped), let the
commands in flight finish, forget the states in memory, then release the lock. A
partition lost with the lock connection is dropped at once; anything still in flight
there is fenced by the store's version check (see :mod:`.leases`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from ..config import Settings
from ..consumers import RunnerStatus
from ..domain.fixedodds import PlaceBet as MarketBet
from ..domain.wallet import book_market, book_race
from ..eventstore import CheckpointConflict, EventStore, open_store
from ..eventstore.factory import is_postgres_url
from ..projections.wallet_models.base import CONSUMER_NAME as WALLET_READ_MODEL
from ..projections.wallets import WalletProjection, open_wallet_read_model
from ..runtime.cashier import CHECKPOINT as CASHIER
from ..runtime.cashier import Cashier
from ..runtime.market_cashier import CHECKPOINT as MARKET_CASHIER
from ..runtime.market_cashier import MarketBets, MarketCashier
from ..runtime.market_writer import MarketRequest, MarketWriter
from ..runtime.race_writer import RaceWriter
from ..runtime.wallet_writer import WalletWriter
from ..velocity.nats_bus import NatsVelocityBus
from . import wire
from .leases import Leases
from .partitions import market_partition, partition_of, race_partition, wallet_partition
from .router import Router, command_subject
from .status import bus_state

log = logging.getLogger(__name__)

#: the NATS queue group of a partition's subscribers (one of them gets each request)
OWNERS = "owner"
#: how long giving a partition up waits for its commands in flight
_DRAIN_SECONDS = 10.0
#: how long giving a partition up waits for the server to confirm its unsubscription
_UNSUBSCRIBE_SECONDS = 2.0


#: a reservation counts as stale after at least this long (the cashier's default)
_STALE_AFTER = 10.0


def stale_after(settings: Settings) -> float:
    """How old an open reservation must be before the sweep resolves it: longer than a
    race command of a wallet bet may travel (its deadline), twice over, since the
    wallet's owner that sent it may have died and the race's owner may take it until
    then (a stake released before would back a bet placed after: a free bet)."""
    return max(_STALE_AFTER, 2 * settings.command_deadline_seconds)


def _known_book(book: str) -> str:
    """``book`` if it is a race's or a market's (``race-<id>``, ``market-<id>``)."""
    if book_race(book) is None and book_market(book) is None:
        raise wire.WireFormatError(f"{book[:60]!r} is no race or market book")
    return book


#: the store checkpoint holding a deployment's identity (see :func:`subject_prefix`)
DEPLOYMENT_ID = "services-deployment-id"


async def deployment_id(store: EventStore) -> int:
    """A random number kept in the store (the first process of a deployment draws it):
    the same for every process on one log, different for two logs — also two databases
    (or servers) with the same schema name."""
    found = await store.get_checkpoint(DEPLOYMENT_ID)
    if found:
        return found
    drawn = secrets.randbits(62) + 1
    try:
        await store.save_checkpoint(DEPLOYMENT_ID, drawn, expected=0)
    except CheckpointConflict:  # another process drew first
        return await store.get_checkpoint(DEPLOYMENT_ID)
    return drawn


async def subject_prefix(settings: Settings, store: EventStore) -> str:
    """The NATS subject prefix of the deployment whose log ``store`` holds: its schema
    and its :func:`deployment_id`, so two deployments on one NATS server never take each
    other's commands (a schema name alone is the same, ``oddstream``, for any two
    deployments left at the default)."""
    return f"oddstream.{settings.pg_schema}.{await deployment_id(store):x}"


@dataclass
class _Partition:
    subscription: Subscription | None = None
    in_flight: int = 0
    idle: asyncio.Event | None = None


class Worker:
    """One worker process's parts (see the module's docstring)."""

    def __init__(self, settings: Settings, *, name: str = "worker") -> None:
        if not is_postgres_url(settings.store_url):
            raise ValueError("a worker needs a PostgreSQL store (ODDSTREAM_STORE_URL)")
        if not settings.nats_url:
            raise ValueError("a worker needs NATS (ODDSTREAM_NATS_URL)")
        if not settings.redis_url:
            raise ValueError("a worker needs Redis for the read models (ODDSTREAM_REDIS_URL)")
        self.settings = settings
        self.name = name
        #: the NATS subject prefix (known once started: :func:`subject_prefix`)
        self.prefix = ""
        self._partitions: dict[int, _Partition] = {}
        self._consumers: dict[str, Any] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.store: EventStore
        self.races: RaceWriter
        self.markets: MarketWriter
        self.wallets: WalletWriter
        self.cashier: Cashier
        self.market_cashier: MarketCashier
        self.bus: NatsVelocityBus | None = None
        self.router: Router
        self.leases: Leases
        self.wallet_view: WalletProjection | None = None
        self._nc: Any = None
        #: commands answered, by partition owners in this process
        self.answered = 0
        #: ``starting`` until :meth:`start` is done, ``running``, then ``stopping``
        self.state = "starting"

    # ----------------------------------------------------------------- health
    def partitions(self) -> list[int]:
        """The partitions this worker serves now, in order."""
        return sorted(self._partitions)

    def consumer_statuses(self) -> list[RunnerStatus]:
        """The runner status of each run-once consumer this worker runs now."""
        return [consumer.runner.status() for consumer in self._consumers.values()]

    def bus_state(self) -> str:
        """NATS: ``connected``, ``reconnecting``, ``closed`` (or ``not_started``)."""
        return "not_started" if self._nc is None else bus_state(self._nc)

    def lock_connection_alive(self) -> bool:
        """Whether the connection holding this worker's advisory locks is open."""
        return hasattr(self, "leases") and self.leases.connected

    def members(self) -> int:
        """The workers of the deployment as this worker's last look counted them."""
        return self.leases.members if hasattr(self, "leases") else 0

    def velocity_counts(self) -> dict[str, tuple[int, int]]:
        """Per tier: market events published on the velocity bus, and dropped."""
        return {} if self.bus is None else self.bus.counts()

    # ----------------------------------------------------------------- ownership
    def owns(self, partition: int) -> bool:
        return partition in self._partitions

    @contextlib.asynccontextmanager
    async def serving(self, partition: int) -> AsyncIterator[bool]:
        state = self._partitions.get(partition)
        if state is None:
            yield False
            return
        state.in_flight += 1
        try:
            yield True
        finally:
            state.in_flight -= 1
            if state.in_flight == 0 and state.idle is not None:
                state.idle.set()

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        settings = self.settings
        self.store = await open_store(settings.store_url, **settings.store_options())
        self.prefix = await subject_prefix(settings, self.store)
        assert settings.nats_url is not None  # checked in __init__
        # the market events this worker stores, on the velocity bus (docs/fixed-odds.md)
        self.bus = NatsVelocityBus(
            settings.nats_url,
            f"{self.prefix}.velocity",
            name=f"oddstream-{self.name}",
            fmt=settings.bus_format,
            rates=settings.velocity_rates(),
        )
        await self.bus.start()
        self.races = RaceWriter(self.store)
        self.markets = MarketWriter(self.store, bus=self.bus)
        self.wallets = WalletWriter(self.store)
        self._nc = await nats.connect(
            settings.nats_url,
            name=f"oddstream-{self.name}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,
            allow_reconnect=True,
        )
        self.router = Router(
            self._nc,
            prefix=self.prefix,
            partitions=settings.partitions,
            deadline=settings.command_deadline_seconds,
            store=self.store,
            reader=self.wallets,
            local=self,
        )
        self.cashier = Cashier(
            self.store,
            self.router.races,
            self.router.wallets,
            resolver=self.router.bets,
            stale_after=stale_after(settings),
        )
        self.market_cashier = MarketCashier(
            self.store,
            MarketBets(self.router.markets),
            self.router.wallets,
            resolver=self.router.market_bets,
            stale_after=stale_after(settings),
        )
        self.leases = Leases(
            settings.store_url,
            schema=settings.pg_schema,
            partitions=settings.partitions,
            consumers=(CASHIER, MARKET_CASHIER, WALLET_READ_MODEL),
            every=settings.rebalance_seconds,
            on_gain=self._gain,
            on_lose=self._lose,
            name=f"oddstream-{self.name}",
        )
        await self.leases.start()
        self.state = "running"

    async def stop(self) -> None:
        """Give everything up in order (so the others take over at once), then close."""
        self.state = "stopping"
        await self.leases.stop()
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
        if self.bus is not None:
            with contextlib.suppress(Exception):
                await self.bus.close()
        await self.store.close()

    async def _gain(self, kind: str, what: Any) -> None:
        """Take a partition or start a consumer; on failure leave nothing half-taken
        (the leases then release the lock, and it is tried again later)."""
        try:
            if kind == "partition":
                await self._take_partition(int(what))
            else:
                await self._start_consumer(str(what))
        except Exception:
            log.exception("taking %s %s failed", kind, what)
            if kind == "partition":
                state = self._partitions.pop(int(what), None)
                if state is not None and state.subscription is not None:
                    await self._close_subscription(state.subscription)
            raise

    async def _lose(self, kind: str, what: Any) -> None:
        try:
            if kind == "partition":
                await self._give_up_partition(int(what))
            else:
                await self._stop_consumer(str(what))
        except Exception:  # giving up must go on
            log.exception("giving up %s %s failed", kind, what)

    async def _take_partition(self, partition: int) -> None:
        state = _Partition()
        self._partitions[partition] = state
        # a queue group: NATS gives each request to one subscriber. While two workers
        # believe they own the partition (the fence's moment) both are subscribed, and a
        # plain subscription gave every request to both: the version check refuses the
        # second append, but the writer then decides the command again on the fresh
        # state — a command without a request id (a credit) was applied twice
        state.subscription = await self._nc.subscribe(
            command_subject(self.prefix, partition), queue=OWNERS, cb=self._on_message
        )
        log.info("%s owns partition %d", self.name, partition)

    async def _give_up_partition(self, partition: int) -> None:
        state = self._partitions.pop(partition, None)
        if state is None:
            return
        if state.subscription is not None:
            await self._close_subscription(state.subscription)
        if state.in_flight:
            state.idle = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_DRAIN_SECONDS):
                    await state.idle.wait()
        # states in memory would be stale once another worker writes these streams
        count = self.settings.partitions
        self.races.forget_where(lambda key: race_partition(key, count) == partition)
        self.markets.forget_where(lambda key: market_partition(key, count) == partition)
        self.wallets.forget_where(lambda key: wallet_partition(key, count) == partition)
        log.info("%s gave up partition %d", self.name, partition)

    async def _close_subscription(self, subscription: Subscription) -> None:
        """Stop taking a partition's commands without dropping any already on their way.

        nats-py's ``unsubscribe`` discards the messages the server sent before it saw the
        UNSUB (in the socket, or queued): those requests would get no answer at all and
        their callers would wait out their deadline (503 ``outcome_unknown``). A drain
        sends UNSUB, waits for the server's PONG and hands every message received until
        then to the callback, which answers ``not_owner`` (the partition is no longer
        owned): the router asks the next owner at once. Without a connection (NATS
        restarting) there is nothing on its way: the subscription is just removed."""
        nc = self._nc
        if nc.is_connected:
            try:
                async with asyncio.timeout(_UNSUBSCRIBE_SECONDS):
                    await subscription.drain()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the connection went meanwhile, or no PONG in time
                log.warning("draining a partition's subscription failed (%s)", exc)
        # as unsubscribe does, also after a drain cut short (which marked it closed): no
        # more messages to the callback, and not restored by a reconnection
        with contextlib.suppress(Exception):
            subscription._stop_processing()
            nc._remove_sub(subscription._id)
        with contextlib.suppress(Exception):
            if not nc.is_reconnecting and not nc.is_closed:
                await nc._send_unsubscribe(subscription._id)

    async def _start_consumer(self, name: str) -> None:
        if name in (CASHIER, MARKET_CASHIER):
            cashier = self.cashier if name == CASHIER else self.market_cashier
            await cashier.start()
            self._consumers[name] = cashier
        elif name == WALLET_READ_MODEL:
            view = open_wallet_read_model(self.settings, self.store, shared=True)
            try:
                await view.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await view.stop()  # its storage's connections
                raise
            self.wallet_view = view
            self._consumers[name] = view
        log.info("%s runs consumer %s", self.name, name)

    async def _stop_consumer(self, name: str) -> None:
        consumer = self._consumers.pop(name, None)
        if consumer is not None:
            await consumer.stop()
        if name == WALLET_READ_MODEL:
            self.wallet_view = None

    # ----------------------------------------------------------------- commands
    async def _on_message(self, msg: Msg) -> None:
        # NATS calls this once per message, in order: run each command in a task of its
        # own, so that the writers can batch the commands waiting for one stream
        task = asyncio.create_task(self._answer(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msg: Msg) -> None:
        req: wire.Request | None = None
        refusal: bytes | None = None
        try:
            req = wire.decode_request(msg.data)
        except wire.WireVersionError as exc:
            log.warning("refused a request on %s: %s", msg.subject, exc)
            refusal = wire.version_refusal(exc)  # in a format the asker reads
            reply = wire.Reply()
        except wire.WireFormatError as exc:
            log.warning("refused a message on %s: %s", msg.subject, exc)
            reply = wire.Reply(error=wire.WireError("internal", "bad_request", str(exc)))
        else:
            reply = await self.handle(req)
        if msg.reply:
            data = wire.encode(reply) if refusal is None else refusal
            limit = self._nc.max_payload
            if len(data) > limit and req is not None:
                # too large for one message: its events are left for the asker to read
                # from the log (a race's dividends: one event per bet)
                data = wire.fit(reply, data, limit, req)
            with contextlib.suppress(Exception):  # the asker may have gone
                await msg.respond(data)

    async def handle(self, req: wire.Request) -> wire.Reply:
        """Execute a request for a partition this worker owns."""
        if time.time() > req.deadline:
            return wire.Reply(
                error=wire.WireError(
                    "unavailable", "store_unavailable", "the request's deadline had passed"
                )
            )
        async with self.serving(req.partition) as owned:
            if not owned:
                return wire.Reply(
                    error=wire.WireError(
                        "unavailable", wire.NOT_OWNER, f"partition {req.partition} moved"
                    )
                )
            try:
                command = self._check_partition(req)
                reply = await self._execute(req, command)
            except wire.WrongPartition as exc:
                reply = wire.Reply(error=wire.WireError("internal", "wrong_partition", str(exc)))
            except Exception as exc:
                if not isinstance(exc, wire.WireFormatError):
                    reply = wire.error_reply(exc)
                    if reply.error is not None and reply.error.kind == "internal":
                        log.exception("command %s failed", req.kind)
                else:
                    reply = wire.Reply(error=wire.WireError("internal", "bad_request", str(exc)))
            self.answered += 1
            return reply

    def _check_partition(self, req: wire.Request) -> Any:
        """The request's command (``None`` for an operation that carries none), once
        checked to be for a stream of the partition the request names: a sender that
        hashes with another number of partitions (``ODDSTREAM_PARTITIONS`` differs
        between processes) is refused, or the stream would have two writers."""
        count = self.settings.partitions
        op = req.op
        command: Any = None
        if op in (wire.Op.RACE, wire.Op.MARKET, wire.Op.RECALL):
            command = wire.carried(req)
            found = partition_of(wire.book_of(command), count)  # races' and markets'
        elif op in (wire.Op.WALLET, wire.Op.WALLET_BET):
            command = wire.carried(req)
            wallet_id = command.wallet_id
            if not isinstance(wallet_id, str):
                raise wire.WireFormatError("a wallet bet that names no wallet")
            found = wallet_partition(wallet_id, count)
        elif op is wire.Op.BET_WALLET and len(req.args) == 2:
            found = partition_of(_known_book(req.args[0]), count)
        elif op is wire.Op.RESOLVE and len(req.args) == 3:
            _known_book(req.args[1])
            found = wallet_partition(req.args[0], count)
        else:
            raise wire.WireFormatError(f"bad {op} request")
        if found != req.partition:
            log.error(
                "a %s request for partition %d carries a stream of partition %d (of %d): "
                "ODDSTREAM_PARTITIONS must be the same in every process",
                op,
                req.partition,
                found,
                count,
            )
            raise wire.WrongPartition(
                f"the command is for partition {found} of {count}, not {req.partition}: "
                "ODDSTREAM_PARTITIONS differs between processes"
            )
        return command

    async def _execute(self, req: wire.Request, command: Any) -> wire.Reply:
        op = req.op
        if op is wire.Op.RACE:
            outcome = await self.races.execute(
                command, request_id=req.request_id, legacy_ids=req.legacy_ids
            )
        elif op is wire.Op.MARKET:
            outcome = await self.markets.execute(
                command, request_id=req.request_id, legacy_ids=req.legacy_ids
            )
        elif op is wire.Op.WALLET:
            outcome = await self.wallets.execute(
                command, request_id=req.request_id, legacy_ids=req.legacy_ids
            )
        elif op is wire.Op.WALLET_BET:
            if isinstance(command, MarketBet):
                outcome = await self.market_cashier.place_bet(command)
            else:
                outcome = await self.cashier.place_bet(command, legacy_ids=req.legacy_ids)
        elif op is wire.Op.RECALL:
            if req.request_id is None:
                raise wire.WireFormatError("recall without a request id")
            books: RaceWriter | MarketWriter = (
                self.markets if isinstance(command, MarketRequest) else self.races
            )
            found = await books.recall(command, req.request_id, req.legacy_ids)
            return wire.Reply() if found is None else wire.outcome_reply(found)
        elif op is wire.Op.BET_WALLET:
            book, bet_id = req.args
            race_id, market_id = book_race(book), book_market(book)
            if race_id is not None:
                return wire.Reply(value=await self.races.bet_wallet(race_id, bet_id))
            assert market_id is not None  # _check_partition: a known book
            return wire.Reply(value=await self.markets.bet_wallet(market_id, bet_id))
        elif op is wire.Op.RESOLVE:
            wallet_id, book, bet_id = req.args
            race_id, market_id = book_race(book), book_market(book)
            if race_id is not None:
                resolved = await self.cashier.resolve(wallet_id, race_id, bet_id)
            else:
                assert market_id is not None  # _check_partition: a known book
                resolved = await self.market_cashier.resolve(wallet_id, market_id, bet_id)
            return wire.Reply(value=resolved)
        else:  # pragma: no cover - Op is closed
            raise wire.WireFormatError(f"unknown operation {op}")
        return wire.outcome_reply(outcome)
