"""The wallet aggregate: commands, state, ``decide`` and ``evolve``. Pure.

A wallet's money is in three places: the ``balance`` (free to spend or withdraw), stakes
``reserved`` for bets the book (a race or a market) has not decided on yet, and stakes
``staked`` of bets it took, awaiting settlement. The balance never goes negative: a
debit or a stake larger than it is refused, and the refusal is recorded
(``DebitRejected`` / ``StakeRejected``).

Stake commands are keyed by the bet — its book and its bet id, since bet ids are unique
only within a book. A book is where a stake goes: a tote race (``race-<id>``) or a
fixed-odds market (``market-<id>``); the wallet treats both alike. They are idempotent
by state: capturing, releasing or settling a bet the
wallet no longer holds decides no events. That is what makes money through the tote
exactly-once when a process manager replays race or market events after a crash: the second
settlement of a bet finds nothing to settle. The wallet also remembers the last
``SETTLED_MEMORY`` bets it settled and refuses to reserve a stake for one of them again
(a late retry of a settled bet must not put money back in play). The maps hold only open
bets and that bounded memory, so the state stays small however long the history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from .events import (
    MARKET_BOOK,
    RACE_BOOK,
    Credited,
    Debited,
    DebitRejected,
    StakeCaptured,
    StakeLost,
    StakeRefunded,
    StakeRejected,
    StakeReleased,
    StakeReserved,
    WalletEvent,
    WalletOpened,
    WinningsCredited,
)

#: The largest single movement ($10bn) and the largest balance ($10tn): far above any
#: real wallet, far below where integer columns in any read model would overflow.
MAX_AMOUNT_CENTS = 10**12
MAX_BALANCE_CENTS = 10**15
INSUFFICIENT_FUNDS = "insufficient_funds"
#: How many settled bets a wallet remembers (to refuse a stake for them again).
SETTLED_MEMORY = 1000

#: A bet as wallets know it: (book, bet id).
BetKey = tuple[str, str]
#: The longest book key (a prefix and an id of up to 100 characters, with room).
MAX_BOOK_LENGTH = 120
#: The shape of :meth:`WalletState.to_snapshot` (1: bets keyed by race id; 2: by book).
SNAPSHOT_VERSION = 2


class WalletRejection(Exception):
    """A command the wallet refuses without recording it (bad input, unknown wallet);
    ``code`` is stable, ``message`` says exactly why."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


# ----------------------------------------------------------------------------- commands


class OpenWallet(msgspec.Struct, frozen=True, kw_only=True):
    wallet_id: str


class Credit(msgspec.Struct, frozen=True, kw_only=True):
    """Deposit ``amount_cents`` (opens the wallet if it is new)."""

    wallet_id: str
    amount_cents: int
    reference: str | None = None


class Debit(msgspec.Struct, frozen=True, kw_only=True):
    """Withdraw ``amount_cents``; more than the balance is refused and recorded."""

    wallet_id: str
    amount_cents: int
    reference: str | None = None


class ReserveStake(msgspec.Struct, frozen=True, kw_only=True):
    """Set aside the stake of bet ``bet_id`` in ``book`` (``race-<id>`` or
    ``market-<id>``); refused and recorded when the balance is short."""

    wallet_id: str
    bet_id: str
    book: str
    amount_cents: int


class CaptureStake(msgspec.Struct, frozen=True, kw_only=True):
    """The book took the bet: move its reserved stake into play."""

    wallet_id: str
    bet_id: str
    book: str


class ReleaseStake(msgspec.Struct, frozen=True, kw_only=True):
    """The book did not take the bet: give the reserved stake back."""

    wallet_id: str
    bet_id: str
    book: str
    reason: str


class SettleStake(msgspec.Struct, frozen=True, kw_only=True):
    """The book settled the bet: credit its payout or refund (both 0: it lost)."""

    wallet_id: str
    bet_id: str
    book: str
    payout_cents: int
    refund_cents: int
    reason: str


WalletCommand = (
    OpenWallet | Credit | Debit | ReserveStake | CaptureStake | ReleaseStake | SettleStake
)


# ----------------------------------------------------------------------------- state


@dataclass(slots=True)
class WalletState:
    """A wallet as its events left it."""

    wallet_id: str = ""
    opened: bool = False
    balance: int = 0
    #: (book, bet) → stake, for bets the book has not decided on yet
    reserved: dict[BetKey, int] = field(default_factory=dict)
    #: (book, bet) → stake, for bets the book took, awaiting settlement
    staked: dict[BetKey, int] = field(default_factory=dict)
    in_play: int = 0
    #: the last SETTLED_MEMORY bets settled, oldest first (a dict as an ordered set)
    settled: dict[BetKey, None] = field(default_factory=dict)

    def to_snapshot(self) -> dict[str, Any]:
        """The state as plain JSON values (a snapshot, :data:`SNAPSHOT_VERSION`)."""
        return {
            "v": SNAPSHOT_VERSION,
            "wallet_id": self.wallet_id,
            "opened": self.opened,
            "balance": self.balance,
            "reserved": [[book, bet, stake] for (book, bet), stake in self.reserved.items()],
            "staked": [[book, bet, stake] for (book, bet), stake in self.staked.items()],
            "settled": [[book, bet] for book, bet in self.settled],
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> WalletState:
        """The state a :meth:`to_snapshot` value describes. A snapshot without ``"v"``
        (version 1) keyed bets by race id: its bets are race books'."""
        version = data.get("v", 1)
        if version not in (1, SNAPSHOT_VERSION):
            raise ValueError(f"wallet snapshot version {version!r} is not one this code reads")
        book = (lambda key: RACE_BOOK + str(key)) if version == 1 else str
        reserved = {(book(r), str(b)): int(v) for r, b, v in data["reserved"]}
        staked = {(book(r), str(b)): int(v) for r, b, v in data["staked"]}
        return cls(
            wallet_id=str(data["wallet_id"]),
            opened=bool(data["opened"]),
            balance=int(data["balance"]),
            reserved=reserved,
            staked=staked,
            in_play=sum(reserved.values()) + sum(staked.values()),
            settled={(book(r), str(b)): None for r, b in data.get("settled", ())},
        )


def _reject(code: str, message: str) -> WalletRejection:
    return WalletRejection(code, message)


def _amount(amount: int, what: str) -> None:
    if type(amount) is not int or amount <= 0:
        raise _reject("bad_amount", f"the {what} must be a whole number of cents above zero")
    if amount > MAX_AMOUNT_CENTS:
        raise _reject("bad_amount", f"the {what} is above the maximum of {MAX_AMOUNT_CENTS} cents")


def _book(book: str) -> None:
    if (
        type(book) is not str
        or len(book) > MAX_BOOK_LENGTH
        or not (
            (book.startswith(RACE_BOOK) and len(book) > len(RACE_BOOK))
            or (book.startswith(MARKET_BOOK) and len(book) > len(MARKET_BOOK))
        )
    ):
        raise _reject(
            "bad_book",
            f"a bet's book is race-<id> or market-<id>, at most {MAX_BOOK_LENGTH} characters",
        )


def _opened(state: WalletState, wallet_id: str) -> None:
    if not state.opened:
        raise _reject("wallet_not_found", f"no wallet {wallet_id}")


def decide(state: WalletState, command: WalletCommand) -> list[WalletEvent]:
    """The events ``command`` causes on the wallet in ``state``, or a WalletRejection.

    A refusal for want of funds is an event (recorded), not an exception.
    """
    wid = command.wallet_id
    match command:
        case OpenWallet():
            return [] if state.opened else [WalletOpened(wallet_id=wid)]
        case Credit():
            _amount(command.amount_cents, "credit")
            balance = state.balance + command.amount_cents
            if balance > MAX_BALANCE_CENTS:
                raise _reject(
                    "balance_limit", f"a wallet may hold at most {MAX_BALANCE_CENTS} cents"
                )
            opening: list[WalletEvent] = [] if state.opened else [WalletOpened(wallet_id=wid)]
            return [
                *opening,
                Credited(
                    wallet_id=wid,
                    amount_cents=command.amount_cents,
                    balance_cents=balance,
                    in_play_cents=state.in_play,
                    reference=command.reference,
                ),
            ]
        case Debit():
            _opened(state, wid)
            _amount(command.amount_cents, "debit")
            if command.amount_cents > state.balance:
                return [
                    DebitRejected(
                        wallet_id=wid,
                        amount_cents=command.amount_cents,
                        balance_cents=state.balance,
                        in_play_cents=state.in_play,
                        reason=INSUFFICIENT_FUNDS,
                        reference=command.reference,
                    )
                ]
            return [
                Debited(
                    wallet_id=wid,
                    amount_cents=command.amount_cents,
                    balance_cents=state.balance - command.amount_cents,
                    in_play_cents=state.in_play,
                    reference=command.reference,
                )
            ]
        case ReserveStake():
            _opened(state, wid)
            _book(command.book)
            _amount(command.amount_cents, "stake")
            key = (command.book, command.bet_id)
            held = state.reserved.get(key, state.staked.get(key))
            if held is not None:
                if held != command.amount_cents:
                    raise _reject(
                        "bet_mismatch",
                        f"bet {command.bet_id} in {command.book} holds a stake of "
                        f"{held} cents, not {command.amount_cents}",
                    )
                return []  # reserved before: a retry of the same bet
            if key in state.settled:
                raise _reject(
                    "bet_settled",
                    f"bet {command.bet_id} in {command.book} is already settled",
                )
            if command.amount_cents > state.balance:
                return [
                    StakeRejected(
                        wallet_id=wid,
                        bet_id=command.bet_id,
                        book=command.book,
                        amount_cents=command.amount_cents,
                        balance_cents=state.balance,
                        in_play_cents=state.in_play,
                        reason=INSUFFICIENT_FUNDS,
                    )
                ]
            return [
                StakeReserved(
                    wallet_id=wid,
                    bet_id=command.bet_id,
                    book=command.book,
                    amount_cents=command.amount_cents,
                    balance_cents=state.balance - command.amount_cents,
                    in_play_cents=state.in_play + command.amount_cents,
                )
            ]
        case CaptureStake():
            stake = state.reserved.get((command.book, command.bet_id))
            if stake is None:
                return []
            return [
                StakeCaptured(
                    wallet_id=wid,
                    bet_id=command.bet_id,
                    book=command.book,
                    amount_cents=stake,
                    balance_cents=state.balance,
                    in_play_cents=state.in_play,
                )
            ]
        case ReleaseStake():
            stake = state.reserved.get((command.book, command.bet_id))
            if stake is None:
                return []
            return [
                StakeReleased(
                    wallet_id=wid,
                    bet_id=command.bet_id,
                    book=command.book,
                    amount_cents=stake,
                    balance_cents=state.balance + stake,
                    in_play_cents=state.in_play - stake,
                    reason=command.reason,
                )
            ]
        case SettleStake():
            return _settle(state, command)
    raise TypeError(f"not a wallet command: {command!r}")


def _settle(state: WalletState, command: SettleStake) -> list[WalletEvent]:
    # A bet can be settled before its capture was recorded (a refund on a scratch racing
    # the capture, a market voided meanwhile, or a crash in between): the stake is then
    # still in ``reserved``.
    key = (command.book, command.bet_id)
    stake = state.staked.get(key, state.reserved.get(key))
    if stake is None:
        return []  # settled before (a replay), or never this wallet's
    if command.payout_cents < 0 or command.refund_cents < 0:
        raise _reject("bad_amount", "a settlement cannot take money")
    wid = command.wallet_id
    in_play = state.in_play - stake
    if command.refund_cents:
        return [
            StakeRefunded(
                wallet_id=wid,
                bet_id=command.bet_id,
                book=command.book,
                amount_cents=command.refund_cents,
                stake_cents=stake,
                balance_cents=state.balance + command.refund_cents,
                in_play_cents=in_play,
                reason=command.reason,
            )
        ]
    if command.payout_cents:
        return [
            WinningsCredited(
                wallet_id=wid,
                bet_id=command.bet_id,
                book=command.book,
                amount_cents=command.payout_cents,
                stake_cents=stake,
                balance_cents=state.balance + command.payout_cents,
                in_play_cents=in_play,
            )
        ]
    return [
        StakeLost(
            wallet_id=wid,
            bet_id=command.bet_id,
            book=command.book,
            stake_cents=stake,
            balance_cents=state.balance,
            in_play_cents=in_play,
        )
    ]


def evolve(state: WalletState, event: WalletEvent) -> WalletState:
    """Apply ``event`` to ``state`` (in place) and return it."""
    match event:
        case WalletOpened():
            state.wallet_id = event.wallet_id
            state.opened = True
        case Credited() | Debited():
            state.balance = event.balance_cents
        case StakeReserved():
            state.reserved[(event.book, event.bet_id)] = event.amount_cents
            state.balance -= event.amount_cents
            state.in_play += event.amount_cents
        case StakeCaptured():
            key = (event.book, event.bet_id)
            state.staked[key] = state.reserved.pop(key)
        case StakeReleased():
            state.balance += state.reserved.pop((event.book, event.bet_id))
            state.in_play -= event.amount_cents
        case WinningsCredited() | StakeRefunded() | StakeLost():
            key = (event.book, event.bet_id)
            stake = state.staked.pop(key, None)
            if stake is None:
                stake = state.reserved.pop(key)
            state.in_play -= stake
            state.balance += getattr(event, "amount_cents", 0)
            settled = state.settled
            settled[key] = None
            if len(settled) > SETTLED_MEMORY:
                del settled[next(iter(settled))]
        case DebitRejected() | StakeRejected():
            pass
    return state


def replay(events: list[WalletEvent], state: WalletState | None = None) -> WalletState:
    """The state after ``events`` (from a snapshot ``state`` if given)."""
    state = state or WalletState()
    for event in events:
        evolve(state, event)
    return state
