"""Money through the tote: the process manager between wallets and races.

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
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..domain.tote.events import BetPlaced
from ..domain.tote.race import PlaceBet, ToteRejection
from ..domain.wallet import (
    CaptureStake,
    ReleaseStake,
    ReserveStake,
    SettleStake,
    WalletRejection,
)
from ..domain.wallet.events import StakeRejected
from ..eventstore import EventStore, EventStoreError, ReadPage, RecordedEvent, StoreClosed
from .race_writer import RaceWriter
from .wallet_writer import WalletWriter
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
_FOLLOWED = [_RESERVED, *_CLOSING, _SETTLED]


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


def wallet_bet_request_id(wallet_id: str, bet_id: str) -> str:
    """The race request id of a wallet bet: a retry of the same bet from the same wallet
    gets the original answer; the same bet id from another wallet is a new request."""
    return f"wallet-bet:{wallet_id}:{bet_id}"


class Cashier:
    """Places wallet bets and pays their settlements into wallets, exactly once."""

    def __init__(
        self,
        store: EventStore,
        races: RaceWriter,
        wallets: WalletWriter,
        *,
        stale_after: float = 10.0,
        sweep_every: float = 2.0,
        checkpoint_every: float = 1.0,
    ) -> None:
        self._store = store
        self._races = races
        self._wallets = wallets
        self._stale_after = stale_after
        self._sweep_every = sweep_every
        self._checkpoint_every = checkpoint_every
        #: (wallet, race, bet) being placed or swept right now, in this process
        self._busy: set[tuple[str, str, str]] = set()
        #: (wallet, race, bet) → a reservation seen in the log, not yet resolved
        self._open: dict[tuple[str, str, str], _Open] = {}
        self._position = 0
        self._saved = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._caught_up = asyncio.Event()

    @property
    def position(self) -> int:
        """The log position this process manager has acted on: every reservation,
        closing and settlement up to it, and every other event up to it passed over."""
        return self._position

    @property
    def open_reservations(self) -> int:
        """Reservations seen in the log and not yet captured, released or settled."""
        return len(self._open)

    # ----------------------------------------------------------------- placing
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
        bet_id, race_id = command.bet_id, command.race_id
        key = (wallet_id, race_id, bet_id)
        if key in self._busy:
            raise WalletRejection("bet_in_progress", f"bet {bet_id} is being placed; retry")
        self._busy.add(key)
        request_id = wallet_bet_request_id(wallet_id, bet_id)
        try:
            # A retry of a bet the race has taken: its answer, without reserving again
            # (and RequestIdReused, before any money moves, if the retry differs).
            try:
                earlier = await self._races.recall(command, request_id, legacy_ids)
            except RequestIdReused:  # a wallet bet's identity is its bet id
                raise RequestIdReused(f"bet {bet_id} (its bet_id or request_id)") from None
            if earlier is not None:
                return earlier
            try:
                reserved = await self._wallets.execute(
                    ReserveStake(
                        wallet_id=wallet_id,
                        bet_id=bet_id,
                        race_id=race_id,
                        amount_cents=command.stake_cents,
                    )
                )
            except WalletRejection as exc:
                if exc.code != "bet_settled":
                    raise
                # a late retry of a bet already settled: the race's original answer
                return await self._races.execute(command, request_id=request_id)
            refused = [e for e in reserved.events if isinstance(e, StakeRejected)]
            if refused:
                raise InsufficientFunds(wallet_id, command.stake_cents, refused[0].balance_cents)
            fresh = bool(reserved.events)  # this call reserved (not a retry's earlier one)
            try:
                outcome = await self._races.execute(command, request_id=request_id)
                placed = [e for e in outcome.events if isinstance(e, BetPlaced)]
                if not placed or placed[0].wallet_id != wallet_id:
                    raise ToteRejection("duplicate_bet", f"bet {bet_id} exists already")
            except (ToteRejection, RequestIdReused) as exc:
                await self._release(wallet_id, race_id, bet_id, exc.code)
                raise
            if outcome.repeated and fresh:
                # The race took this bet before, paid from an earlier reservation that
                # is settled or resolved by now: this reservation backs nothing.
                await self._release(wallet_id, race_id, bet_id, "repeated_request")
                return outcome
            # Any other failure leaves the reservation open for the sweep to resolve
            # from what the race's log says.
            try:
                await self._wallets.execute(
                    CaptureStake(wallet_id=wallet_id, bet_id=bet_id, race_id=race_id)
                )
            except EventStoreError:
                log.warning("capture of bet %s failed; the sweep will retry", bet_id)
            return outcome
        finally:
            self._busy.discard(key)

    async def _release(self, wallet_id: str, race_id: str, bet_id: str, reason: str) -> None:
        await self._wallets.execute(
            ReleaseStake(wallet_id=wallet_id, bet_id=bet_id, race_id=race_id, reason=reason)
        )

    # ----------------------------------------------------------------- following
    async def start(self) -> None:
        """Follow the log from the checkpoint (in the background)."""
        self._position = self._saved = await self._store.get_checkpoint(CHECKPOINT)
        self._tasks = [
            asyncio.create_task(self._follow_forever(), name="cashier-follow"),
            asyncio.create_task(self._sweep_loop(), name="cashier-sweep"),
        ]

    async def stop(self) -> None:
        """Stop following; the checkpoint is saved if the store is still open."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, StoreClosed):
                pass
            except Exception:  # stopping must go on: the app still has to shut down
                log.exception("cashier task %s failed", task.get_name())
        self._tasks = []
        with contextlib.suppress(EventStoreError):
            await self._save_checkpoint()

    async def wait_caught_up(self, timeout: float) -> bool:
        """Whether the follower reached the head of the log within ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                await self._caught_up.wait()
        except TimeoutError:
            return False
        return True

    async def _follow_forever(self) -> None:
        """Follow the log; a store failure (say, saving the checkpoint during an outage)
        restarts following from the last position acted on, after a pause."""
        delay = 0.1
        while True:
            try:
                await self._follow()
                return
            except StoreClosed:
                return
            except EventStoreError as exc:
                log.warning("cashier: the store failed (%s); following again in %.1fs", exc, delay)
                self._caught_up.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _follow(self) -> None:
        queue: asyncio.Queue[ReadPage] = asyncio.Queue()

        async def feed() -> None:
            async for page in self._store.subscribe_pages(self._position, types=_FOLLOWED):
                queue.put_nowait(page)

        feeder = asyncio.create_task(feed(), name="cashier-feed")
        last_save = time.monotonic()
        try:
            while True:
                if queue.empty():
                    if not self._caught_up.is_set():
                        head = await self._store.head_position()
                        if head <= self._position or not await self._pending(head):
                            self._caught_up.set()
                    try:
                        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow
                        # the cancellation that stop() sends (the task never ends)
                        async with asyncio.timeout(self._checkpoint_every):
                            page = await queue.get()
                    except TimeoutError:
                        await self._save_checkpoint()
                        continue
                    batch, position = list(page.events), page.position
                else:
                    batch, position = [], self._position
                while not queue.empty() and len(batch) < 2000:
                    page = queue.get_nowait()
                    batch += page.events
                    position = page.position
                await self._apply(batch, position)
                if time.monotonic() - last_save >= self._checkpoint_every:
                    await self._save_checkpoint()
                    last_save = time.monotonic()
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError, StoreClosed):
                await feeder

    async def _pending(self, head: int) -> bool:
        """Whether events this follower wants exist between its position and ``head``."""
        found = await self._store.read_all(self._position, 1, types=_FOLLOWED)
        return bool(found) and found[0].position <= head

    async def _apply(self, batch: Sequence[RecordedEvent], position: int) -> None:
        """Act on ``batch`` (the followed events up to ``position``), then stand there."""
        settles: list[SettleStake] = []
        for recorded in batch:
            kind = recorded.type
            data: Mapping[str, Any] = recorded.data
            if kind == _SETTLED:
                wallet_id = data.get("wallet_id")
                if wallet_id:
                    settles.append(
                        SettleStake(
                            wallet_id=wallet_id,
                            bet_id=data["bet_id"],
                            race_id=data["race_id"],
                            payout_cents=data["payout_cents"],
                            refund_cents=data["refund_cents"],
                            reason=data["reason"],
                        )
                    )
            elif kind == _RESERVED:
                self._open[(data["wallet_id"], data["race_id"], data["bet_id"])] = _Open(
                    recorded.position, recorded.recorded_at.timestamp()
                )
            else:
                self._open.pop((data["wallet_id"], data["race_id"], data["bet_id"]), None)
        delay = 0.05
        while settles:
            results = await self._wallets.execute_many([(s, None) for s in settles])
            retry = []
            for command, result in zip(settles, results, strict=True):
                if isinstance(result, WalletRejection):
                    log.error("settlement of bet %s refused: %s", command.bet_id, result)
                elif isinstance(result, BaseException):
                    retry.append(command)
            if retry:
                log.warning("%d settlements failed; retrying", len(retry))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            settles = retry
        self._position = position

    async def _save_checkpoint(self) -> None:
        floor = min((o.position - 1 for o in self._open.values()), default=self._position)
        checkpoint = min(floor, self._position)
        if checkpoint != self._saved:
            await self._store.save_checkpoint(CHECKPOINT, checkpoint)
            self._saved = checkpoint

    # ----------------------------------------------------------------- sweeping
    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_every)
            try:
                await self.sweep()
            except (EventStoreError, ToteRejection, WalletRejection):
                log.warning("reservation sweep failed; retrying later", exc_info=True)

    async def sweep(self, *, now: float | None = None) -> int:
        """Resolve reservations open longer than ``stale_after``: capture the stake if
        the race holds the bet for this wallet, release it otherwise. Returns how many
        it resolved."""
        now = time.time() if now is None else now
        resolved = 0
        for key, item in list(self._open.items()):
            if now - item.reserved_at < self._stale_after or key in self._busy:
                continue
            wallet_id, race_id, bet_id = key
            self._busy.add(key)
            try:
                race = await self._races.state(race_id)
                bet = race.bets.get(bet_id)
                if bet is not None and bet.wallet_id == wallet_id:
                    command: CaptureStake | ReleaseStake = CaptureStake(
                        wallet_id=wallet_id, bet_id=bet_id, race_id=race_id
                    )
                else:
                    command = ReleaseStake(
                        wallet_id=wallet_id, bet_id=bet_id, race_id=race_id, reason="not_placed"
                    )
                await self._wallets.execute(command)
                resolved += 1
            finally:
                self._busy.discard(key)
        return resolved
