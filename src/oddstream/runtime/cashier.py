"""Money through the tote: the process manager between wallets and races (and, in
:class:`StakeCashier`, what it shares with the markets' cashier, ``market_cashier.py``).

A bet that names a wallet goes through three steps, each a single-stream append by the
single writer of that stream:

1. the wallet reserves the stake (``StakeReserved``; ``StakeRejected`` if it is short);
2. the race decides on the bet (``BetPlaced`` carrying the wallet id, or a refusal);
3. the wallet captures the stake (the race took it) or releases it (the race refused).

Later, every ``BetSettled`` of a wallet bet (payout, loss or refund — cancellation,
scratch, abandonment, no winner) becomes a ``SettleStake`` on its wallet.

Exactly once, across crashes and replays, comes from two things. The wallet's stake
commands are idempotent by state: a bet the wallet no longer holds decides no events, so
a settlement seen twice pays once. And this process manager follows the log (wallet
reservations and race settlements) from a checkpoint that never passes a reservation
still open, so after a crash it sees every unfinished bet again. A reservation left open
(the process died between steps) is resolved by the sweep once it is ``stale_after``
seconds old: if the race holds the bet for this wallet, capture; otherwise release. Bets
being placed right now are never swept (``_busy``), and a retry of a bet the sweep is
resolving is told to retry.

Why not one multi-stream append of bet and stake? The race's writer decides a batch of
bets from many wallets in one append; making it also own each wallet's balance would
serialize every wallet behind every race (and, once writers are spread over several
processes, put a wallet's balance in two owners' hands). Here each stream keeps one
writer, and the only cost is a stake that is briefly reserved before the race has
answered — counted as money in play.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..consumers import Batch, Consumer, ConsumerRunner, StoreCheckpoint, Subscription
from ..domain.tote.events import BetPlaced
from ..domain.tote.race import PlaceBet, ToteRejection
from ..domain.wallet import (
    CaptureStake,
    ReleaseStake,
    ReserveStake,
    SettleStake,
    WalletRejection,
    book_race,
    race_book,
)
from ..domain.wallet.events import RACE_BOOK, StakeRejected
from ..eventstore import EventStore, EventStoreError, StoreClosed
from .ports import Races, WalletBets, Wallets
from .writer import CommandOutcome, RequestIdReused

log = logging.getLogger(__name__)

CHECKPOINT = "process-wallet-cashier"
_RESERVED = "wallet.StakeReserved"
_CLOSING = frozenset(
    {
        "wallet.StakeCaptured",
        "wallet.StakeReleased",
        "wallet.WinningsCredited",
        "wallet.StakeRefunded",
        "wallet.StakeLost",
    }
)
_SETTLED = "tote.BetSettled"


class InsufficientFunds(WalletRejection):
    """The wallet's balance is short of the stake (the refusal is recorded)."""

    def __init__(self, wallet_id: str, stake: int, balance: int) -> None:
        super().__init__(
            "insufficient_funds",
            f"wallet {wallet_id} has {balance} cents available, the stake is {stake}",
        )
        self.balance = balance


@dataclass(slots=True)
class _Open:
    """Where a reservation is in the log and when it was made (its key says whose)."""

    position: int
    reserved_at: float


def cashier_subscription(settled: str) -> Subscription:
    """What a cashier follows: reservations, their closings, and its books'
    settlement events (``settled``)."""
    return Subscription(types=frozenset([_RESERVED, *_CLOSING, settled]))


#: a reservation as a cashier keys it: (wallet, book, bet)
OpenKey = tuple[str, str, str]


def wallet_bet_request_id(wallet_id: str, bet_id: str) -> str:
    """The race (or market) request id of a wallet bet: a retry of the same bet from the
    same wallet gets the original answer; the same bet id from another wallet is a new
    request."""
    return f"wallet-bet:{wallet_id}:{bet_id}"


def book_of(data: Mapping[str, Any]) -> str:
    """The book a stored stake event names: ``book``, or (version 1) its race's."""
    book = data.get("book")
    return str(book) if book else race_book(data["race_id"])


class StakeCashier(Consumer):
    """What a cashier of one kind of book does (a subclass says which kind): places
    wallet bets (reserve, place, capture or release), follows the log's reservations,
    closings and the book's settlements, pays each settlement into its wallet, and
    sweeps reservations a crash left open.

    A consumer with a store checkpoint that never passes a reservation still open; it
    follows only reservations of its own kind of book (``book_prefix``), so the
    cashiers of races and of markets never resolve each other's."""

    #: the books this cashier serves (``race-`` or ``market-``)
    book_prefix: str
    #: what the reservation a cashier is placing is called in messages
    venue: str = "book"

    def __init__(
        self,
        store: EventStore,
        wallets: Wallets,
        *,
        stale_after: float = 10.0,
        sweep_every: float = 2.0,
        checkpoint_every: float = 1.0,
    ) -> None:
        self._store = store
        self._wallets = wallets
        self._stale_after = stale_after
        self._sweep_every = sweep_every
        self._checkpoint_every = checkpoint_every
        #: (wallet, book, bet) being placed or swept right now, in this process
        self._busy: set[OpenKey] = set()
        #: (wallet, book, bet) → a reservation seen in the log, not yet resolved
        self._open: dict[OpenKey, _Open] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.runner = ConsumerRunner(
            store, self, StoreCheckpoint(every=checkpoint_every), batch_size=2000
        )

    @property
    def position(self) -> int:
        """The log position this process manager has acted on: every reservation,
        closing and settlement up to it, and every other event up to it passed over."""
        return self.runner.position

    @property
    def open_reservations(self) -> int:
        """Reservations seen in the log and not yet captured, released or settled."""
        return len(self._open)

    # ----------------------------------------------------------------- placing
    async def _place(
        self,
        wallet_id: str,
        book: str,
        bet_id: str,
        stake_cents: int,
        *,
        recall: Callable[[], Awaitable[CommandOutcome | None]],
        place: Callable[[], Awaitable[CommandOutcome]],
        took: Callable[[CommandOutcome], bool],
        duplicate: Callable[[], Exception],
    ) -> CommandOutcome:
        """Reserve the stake, place the bet (``place``), capture or release.

        ``recall`` is the answer the bet's request id got before (``None``: none);
        ``took(outcome)`` whether the book took the bet for this wallet (else
        ``duplicate()`` is raised: the bet id is another's); on one of the book's refusals
        (:meth:`_book_refusals`) the stake is released before it is raised — on
        :class:`RequestIdReused` from the book only if this call reserved it."""
        key = (wallet_id, book, bet_id)
        if key in self._busy:
            raise WalletRejection("bet_in_progress", f"bet {bet_id} is being placed; retry")
        self._busy.add(key)
        try:
            # A retry of a bet the book has taken: its answer, without reserving again
            # (and RequestIdReused, before any money moves, if the retry differs).
            try:
                earlier = await recall()
            except RequestIdReused:  # a wallet bet's identity is its bet id
                raise RequestIdReused(f"bet {bet_id} (its bet_id or request_id)") from None
            if earlier is not None:
                return earlier
            try:
                reserved = await self._wallets.execute(
                    ReserveStake(
                        wallet_id=wallet_id, bet_id=bet_id, book=book, amount_cents=stake_cents
                    )
                )
            except WalletRejection as exc:
                if exc.code != "bet_settled":
                    raise
                # a late retry of a bet already settled: the book's original answer
                return await place()
            refused = [e for e in reserved.events if isinstance(e, StakeRejected)]
            if refused:
                raise InsufficientFunds(wallet_id, stake_cents, refused[0].balance_cents)
            fresh = bool(reserved.events)  # this call reserved (not a retry's earlier one)
            try:
                outcome = await place()
                if not took(outcome):
                    raise duplicate()
            except (*self._book_refusals(), RequestIdReused) as exc:  # type: ignore[misc]
                # The book holds a bet under this request id when it answers
                # RequestIdReused (a retry that differs, which the recall missed: it came
                # from a deposed owner's memory). A reservation an earlier call left open
                # (a crash) may back that bet: it is the sweep's, which asks the book's
                # log; only one this call made is released here.
                if fresh or not isinstance(exc, RequestIdReused):
                    await self._release(wallet_id, book, bet_id, getattr(exc, "code", "refused"))
                raise
            if outcome.repeated and fresh:
                # The book took this bet before, paid from an earlier reservation that
                # is settled or resolved by now: this reservation backs nothing.
                await self._release(wallet_id, book, bet_id, "repeated_request")
                return outcome
            # Any other failure leaves the reservation open for the sweep to resolve
            # from what the book's log says.
            try:
                await self._wallets.execute(
                    CaptureStake(wallet_id=wallet_id, bet_id=bet_id, book=book)
                )
            except EventStoreError:
                log.warning("capture of bet %s failed; the sweep will retry", bet_id)
            return outcome
        finally:
            self._busy.discard(key)

    async def _release(self, wallet_id: str, book: str, bet_id: str, reason: str) -> None:
        await self._wallets.execute(
            ReleaseStake(wallet_id=wallet_id, bet_id=bet_id, book=book, reason=reason)
        )

    # ----------------------------------------------------------------- following
    async def start(self) -> None:
        """Follow the log from the stored checkpoint, and sweep, in the background.

        Starting again after :meth:`stop` (a worker given this follower back) reloads the
        checkpoint: another process may have moved it meanwhile."""
        await self.reset()
        await self.runner.load()
        await self.runner.start()
        self._sweeper = asyncio.create_task(self._sweep_loop(), name=f"{self.name}-sweep")

    async def stop(self) -> None:
        """Stop sweeping and following; the checkpoint is saved if the store is open."""
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            try:
                await sweeper
            except (asyncio.CancelledError, StoreClosed):
                pass
            except Exception:  # stopping must go on: the app still has to shut down
                log.exception("cashier sweep failed")
        await self.runner.stop()

    async def wait_caught_up(self, timeout: float) -> bool:
        """Whether the follower reached the head of the log within ``timeout``."""
        return await self.runner.wait_caught_up(timeout)

    def _settled_book(self, data: Mapping[str, Any]) -> str:
        """The book a settlement event's data is of (``race-…``, ``market-…``)."""
        raise NotImplementedError

    def _settlement(self, data: Mapping[str, Any]) -> SettleStake | None:
        """The wallet's command for a settlement event of the book (``None``: a cash
        bet's, nothing to pay)."""
        wallet_id = data.get("wallet_id")
        if not wallet_id:
            return None
        return SettleStake(
            wallet_id=wallet_id,
            bet_id=data["bet_id"],
            book=self._settled_book(data),
            payout_cents=data["payout_cents"],
            refund_cents=data["refund_cents"],
            reason=data["reason"],
        )

    async def handle(self, batch: Batch) -> None:
        """Act on reservations, closings and settlements: pay every wallet bet's
        settlement into its wallet (idempotent by the wallet's state: a batch given
        again pays nothing twice)."""
        settles: list[SettleStake] = []
        prefix = self.book_prefix
        for recorded in batch.events:
            kind = recorded.type
            data: Mapping[str, Any] = recorded.data
            if kind == _RESERVED or kind in _CLOSING:
                book = book_of(data)
                if not book.startswith(prefix):
                    continue  # another cashier's book
                key = (data["wallet_id"], book, data["bet_id"])
                if kind == _RESERVED:
                    self._open[key] = _Open(recorded.position, recorded.recorded_at.timestamp())
                else:
                    self._open.pop(key, None)
            else:
                settle = self._settlement(data)
                if settle is not None:
                    settles.append(settle)
        if not settles:
            return
        results = await self._wallets.execute_many([(s, None) for s in settles])
        failed = 0
        for command, result in zip(settles, results, strict=True):
            if isinstance(result, WalletRejection):
                log.error("settlement of bet %s refused: %s", command.bet_id, result)
            elif isinstance(result, BaseException):
                failed += 1
        if failed:
            # the runner gives the batch again: the settlements already made pay nothing
            raise EventStoreError(f"{failed} of {len(settles)} settlements failed")

    async def reset(self) -> None:
        self._open.clear()

    def floor(self) -> int | None:
        """Never past a reservation still open: after a crash it must be seen again."""
        return min((o.position - 1 for o in self._open.values()), default=None)

    # ----------------------------------------------------------------- sweeping
    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_every)
            try:
                await self.sweep()
            except (EventStoreError, WalletRejection, *self._book_refusals()):  # type: ignore[misc]
                log.warning("reservation sweep failed; retrying later", exc_info=True)
            except Exception:  # anything else (in services mode, the owner's failure over
                # NATS): the sweep is the only thing that resolves what a crash left open
                log.exception("reservation sweep failed unexpectedly; retrying later")

    def _book_refusals(self) -> tuple[type[Exception], ...]:
        """The book's refusals: of a bet (the stake released, then raised) and of a
        sweep (logged, retried at the next sweep)."""
        return ()

    async def _resolve_open(self, wallet_id: str, book: str, bet_id: str) -> bool:
        """Resolve one stale reservation (on the wallet's owner)."""
        raise NotImplementedError

    async def sweep(self, *, now: float | None = None) -> int:
        """Resolve reservations open longer than ``stale_after`` (on the wallet's
        owner). Returns how many were resolved. One that cannot be resolved now (its
        owner unreachable) is left for the next sweep and does not hold up the others."""
        now = time.time() if now is None else now
        resolved = 0
        for key, item in list(self._open.items()):
            if now - item.reserved_at < self._stale_after or key in self._busy:
                continue
            try:
                if await self._resolve_open(*key):
                    resolved += 1
            except (EventStoreError, WalletRejection, *self._book_refusals()) as exc:  # type: ignore[misc]
                log.warning("reservation of bet %s not resolved yet: %s", key[2], exc)
        return resolved

    async def _resolve_with(
        self,
        wallet_id: str,
        book: str,
        bet_id: str,
        holder: Callable[[], Awaitable[str | None]],
    ) -> bool:
        """Capture the stake if the book holds the bet for this wallet (``holder()``:
        the wallet the book holds it for), release it otherwise. False, doing nothing, while
        the bet is being placed in this process."""
        key = (wallet_id, book, bet_id)
        if key in self._busy:
            return False
        self._busy.add(key)
        try:
            if await holder() == wallet_id:
                command: CaptureStake | ReleaseStake = CaptureStake(
                    wallet_id=wallet_id, bet_id=bet_id, book=book
                )
            else:
                command = ReleaseStake(
                    wallet_id=wallet_id, bet_id=bet_id, book=book, reason="not_placed"
                )
            await self._wallets.execute(command)
            return True
        finally:
            self._busy.discard(key)


class Cashier(StakeCashier):
    """Places wallet bets on races and pays their settlements into wallets, exactly
    once: the cashier of race books."""

    name = CHECKPOINT
    subscription = cashier_subscription(_SETTLED)
    book_prefix = RACE_BOOK

    def __init__(
        self,
        store: EventStore,
        races: Races,
        wallets: Wallets,
        *,
        resolver: WalletBets | None = None,
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
        self._races = races
        # who resolves a stale reservation: this cashier (embedded), or, in services
        # mode, the cashier of the worker owning the wallet, which knows what is busy
        self._resolver: WalletBets = resolver or self

    async def place_bet(
        self, command: PlaceBet, *, legacy_ids: Sequence[str] = ()
    ) -> CommandOutcome:
        """Reserve the stake, place the bet, capture or release: the race's answer.

        ``legacy_ids``: race request ids an earlier version may have placed this bet
        under (see :meth:`AggregateWriter.execute`); a bet found under one is answered,
        not placed again.

        Raises :class:`InsufficientFunds`, the race's :class:`ToteRejection` (the stake
        is released first), or :class:`WalletRejection` ``bet_in_progress`` when the same
        bet is being placed or resolved right now.
        """
        wallet_id = command.wallet_id
        if wallet_id is None:
            raise ValueError("place_bet needs a bet that names a wallet")
        bet_id = command.bet_id
        request_id = wallet_bet_request_id(wallet_id, bet_id)

        def took(outcome: CommandOutcome) -> bool:
            placed = [e for e in outcome.events if isinstance(e, BetPlaced)]
            return bool(placed) and placed[0].wallet_id == wallet_id

        return await self._place(
            wallet_id,
            race_book(command.race_id),
            bet_id,
            command.stake_cents,
            recall=lambda: self._races.recall(command, request_id, legacy_ids),
            place=lambda: self._races.execute(command, request_id=request_id),
            took=took,
            duplicate=lambda: ToteRejection("duplicate_bet", f"bet {bet_id} exists already"),
        )

    def _settled_book(self, data: Mapping[str, Any]) -> str:
        return race_book(data["race_id"])

    def _book_refusals(self) -> tuple[type[Exception], ...]:
        return (ToteRejection,)

    async def _resolve_open(self, wallet_id: str, book: str, bet_id: str) -> bool:
        race_id = book_race(book)
        assert race_id is not None  # this cashier follows race books only
        return await self._resolver.resolve(wallet_id, race_id, bet_id)

    async def resolve(self, wallet_id: str, race_id: str, bet_id: str) -> bool:
        """Capture the stake if the race holds the bet for this wallet, release it
        otherwise (idempotent: a reservation already closed is left as it is). False,
        doing nothing, while the bet is being placed in this process."""
        return await self._resolve_with(
            wallet_id, race_book(race_id), bet_id, lambda: self._races.bet_wallet(race_id, bet_id)
        )
