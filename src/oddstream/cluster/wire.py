"""Commands, answers and refusals as they travel on NATS (MessagePack, via msgspec).

A :class:`Request` names an operation, the partition it is for, the command (its kind —
its class qualified by its domain, :func:`kind_of` — and its fields: a race's, a
wallet's, a fixed-odds market's request, or a bet on a race or a market), the request id
and an absolute deadline; a :class:`Reply` carries
the outcome (its events and positions), a small value, or a refusal. Refusals come back
as the same typed exceptions the writers raise in process (:func:`raise_error`), so the
use cases and the HTTP layer cannot tell a remote writer from a local one.

Both carry the wire format's version (:data:`WIRE_VERSION`) as their first element, so
that processes of two releases (a rolling upgrade) find out they do not speak the same
format instead of misreading each other: a worker answers a request of another version
with a version refusal (:func:`version_refusal`; to a release before versions, in its
own format, as a store refusal that did nothing), and a reply of another version, or
such a refusal, is :class:`WireVersionError` (the router's ``CommandsUnavailable``,
HTTP 503). Whatever else changes, every version keeps the version first and a version
refusal's shape (``[version, None, [kind "version", code, message, ...]]``).
"""

from __future__ import annotations

import enum
import time
import typing
from typing import Any

import msgspec

from ..domain import fixedodds
from ..domain.fixedodds import FixedOddsRejection, MarketCommand
from ..domain.tote.events import ALL_EVENTS as TOTE_EVENTS
from ..domain.tote.race import PlaceBet as TotePlaceBet
from ..domain.tote.race import RaceCommand, ToteRejection
from ..domain.wallet import WalletCommand, WalletRejection
from ..domain.wallet.events import ALL_EVENTS as WALLET_EVENTS
from ..eventstore import EventStoreError, StoreUnavailable
from ..runtime.cashier import InsufficientFunds
from ..runtime.market_writer import MarketRequest, market_stream
from ..runtime.race_writer import race_stream
from ..runtime.wallet_writer import wallet_stream
from ..runtime.writer import CommandOutcome, RequestIdReused
from ..velocity.channels import Velocity


class Op(enum.StrEnum):
    """What a request asks of the partition's owner. A *book* is a race or a market
    (``race-<id>``, ``market-<id>``: its stream's id, whose partition it is in)."""

    RACE = "race"  #: execute a race command
    MARKET = "market"  #: execute a market request (a fixed-odds market's command)
    RECALL = "recall"  #: the answer a book's request id got before, if any
    BET_WALLET = "bet_wallet"  #: whose wallet a book holds a bet for: (book, bet id)
    WALLET = "wallet"  #: execute a wallet command
    #: place a bet paid from a wallet, on a race or a market (the wallet's cashiers)
    WALLET_BET = "wallet_bet"
    #: resolve a stale stake reservation (the wallet's cashiers): (wallet, book, bet id)
    RESOLVE = "resolve"


#: The version of the format below. Raise it with any change that a process of the
#: previous release would misread (a field added, removed, moved or retyped).
#: 2: wallet stake commands and events name a ``book`` (``race-<id>``, ``market-<id>``)
#: where they named a ``race_id``.
#: 3: markets are partitioned: the ``market`` operation; ``bet_wallet`` and ``resolve``
#: name a book where they named a race; a command's kind is qualified by its domain
#: (``tote.PlaceBet``, ``fixedodds.PlaceBet``, ``MarketRequest.UpdatePrices``).
WIRE_VERSION = 3


class _Head(msgspec.Struct, array_like=True):
    """A message's first element, whatever the rest is (extra elements are ignored):
    its version; in a message of a release before versions, a request's operation (a
    string) or a reply's outcome (nil or an array)."""

    v: int | str | list[Any] | None


class Request(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    #: the wire format's version (first, so that any release can read it)
    v: int = WIRE_VERSION
    op: Op
    partition: int
    #: unix time after which the sender has given up (the owner then does nothing)
    deadline: float
    kind: str = ""
    command: bytes = b""
    request_id: str | None = None
    legacy_ids: tuple[str, ...] = ()
    args: tuple[str, ...] = ()


class WireOutcome(msgspec.Struct, array_like=True, frozen=True):
    events: list[tuple[str, bytes]]
    stream_version: int
    first_position: int
    last_position: int
    repeated: bool
    #: how many events were left out (the reply would not fit in a NATS message): the
    #: receiver reads them from ``stream``'s log, the versions up to ``stream_version``
    elided: int = 0
    stream: str = ""


class WireError(msgspec.Struct, array_like=True, frozen=True):
    kind: str
    code: str
    message: str
    balance: int = 0
    outcome_unknown: bool = False


class Reply(msgspec.Struct, array_like=True, frozen=True):
    #: the wire format's version (first, so that any release can read it)
    v: int = WIRE_VERSION
    outcome: WireOutcome | None = None
    error: WireError | None = None
    value: str | bool | None = None


#: the refusal of a request that reached a process not owning its partition (any more)
NOT_OWNER = "not_owner"


def moved(error: WireError) -> bool:
    """Whether ``error`` is a worker's :data:`NOT_OWNER` (the partition moved: ask its
    next owner), told apart by its kind from a domain refusal of the same code (a
    market's ``not_owner``: another provider's market, 403)."""
    return error.kind == "unavailable" and error.code == NOT_OWNER


#: a market request's kind: this, then its domain command's class (``MarketRequest.
#: UpdatePrices``); its ``command`` field is decoded as that class
_MARKET_REQUEST = "MarketRequest"
_COMMANDS: dict[str, type[msgspec.Struct]] = {
    f"{domain}.{cls.__name__}": cls
    for domain, union in (
        ("tote", RaceCommand),
        ("wallet", WalletCommand),
        ("fixedodds", MarketCommand),
    )
    for cls in typing.get_args(union)
}
_MARKET_COMMANDS: dict[str, type[msgspec.Struct]] = {
    f"{_MARKET_REQUEST}.{cls.__name__}": cls for cls in typing.get_args(MarketCommand)
}
_KINDS: dict[type[msgspec.Struct], str] = {cls: kind for kind, cls in _COMMANDS.items()}
_RACE_COMMANDS: tuple[type[Any], ...] = typing.get_args(RaceCommand)
#: the commands each operation that carries one may carry
_CARRIES: dict[Op, tuple[type[msgspec.Struct], ...]] = {
    Op.RACE: _RACE_COMMANDS,
    Op.MARKET: (MarketRequest,),
    Op.RECALL: (*_RACE_COMMANDS, MarketRequest),
    Op.WALLET: typing.get_args(WalletCommand),
    Op.WALLET_BET: (TotePlaceBet, fixedodds.PlaceBet),
}
_EVENTS: dict[str, type[msgspec.Struct]] = {
    f"{domain}.{cls.__name__}": cls
    for domain, events in (
        ("tote", TOTE_EVENTS),
        ("wallet", WALLET_EVENTS),
        ("fixedodds", fixedodds.ALL_EVENTS),
    )
    for cls in events
}
_EVENT_NAMES: dict[type[msgspec.Struct], str] = {cls: name for name, cls in _EVENTS.items()}
_encoder = msgspec.msgpack.Encoder()
_request_decoder = msgspec.msgpack.Decoder(Request)
_reply_decoder = msgspec.msgpack.Decoder(Reply)


class WireFormatError(Exception):
    """A message that is not a request or reply of this version of oddstream."""


class WireVersionError(WireFormatError):
    """A request or reply of a wire format version this process does not speak (or a
    peer's refusal of ours): processes of two releases that cannot talk (a rolling
    upgrade across a format change). ``refused``: the peer refused the request, so it
    did nothing; otherwise (a reply we cannot read) the command may have been executed."""

    def __init__(self, message: str, *, theirs: int, refused: bool = False) -> None:
        super().__init__(message)
        self.theirs = theirs
        self.refused = refused


#: the code of a version refusal (kind ``version``)
WRONG_VERSION = "wire_version"


def _version_of(data: bytes) -> int | None:
    """The version a message says it is of: ``0`` for one of the releases before
    versions (see :class:`_Head`), None if it is no message of ours at all."""
    try:
        v = msgspec.msgpack.decode(data, type=_Head).v
    except msgspec.DecodeError:
        return None
    return v if isinstance(v, int) else 0


class _LegacyReply(msgspec.Struct, array_like=True, frozen=True):
    """A reply as the releases before versions write and read it: no version first."""

    outcome: Any = None
    error: WireError | None = None
    value: Any = None


def _legacy_refusal(data: bytes) -> bool:
    """Whether ``data``, a reply of a release before versions, refuses a request it
    could not decode (``bad_request``): such a release decodes no request of ours, so
    it did nothing."""
    try:
        error = msgspec.msgpack.decode(data, type=_LegacyReply).error
    except msgspec.DecodeError:
        return False
    return error is not None and (error.kind, error.code) == ("internal", "bad_request")


def _version_error(what: str, theirs: int, *, refused: bool = False) -> WireVersionError:
    shown = "0 (before versions)" if theirs == 0 else repr(theirs)
    who = "this worker" if what == "request" else "this process"
    return WireVersionError(
        f"a {what} of wire format version {shown}; {who} speaks version {WIRE_VERSION} "
        "(processes of two releases that cannot talk: finish the upgrade)",
        theirs=theirs,
        refused=refused,
    )


def kind_of(command: msgspec.Struct) -> str:
    """What a request calls its command: the class qualified by its domain (the tote's
    and the markets' bets are both ``PlaceBet``), or for a market request the class of
    the domain command it carries."""
    if isinstance(command, MarketRequest):
        return f"{_MARKET_REQUEST}.{type(command.command).__name__}"
    kind = _KINDS.get(type(command))
    if kind is None:
        raise WireFormatError(f"{type(command).__name__} is not a command of the wire")
    return kind


def request(
    op: Op,
    partition: int,
    timeout: float,
    command: msgspec.Struct | None = None,
    *,
    request_id: str | None = None,
    legacy_ids: typing.Sequence[str] = (),
    args: tuple[str, ...] = (),
) -> Request:
    """A request that the owner may act on for ``timeout`` seconds from now."""
    return Request(
        op=op,
        partition=partition,
        deadline=time.time() + timeout,
        kind="" if command is None else kind_of(command),
        command=b"" if command is None else _encoder.encode(command),
        request_id=request_id,
        legacy_ids=tuple(legacy_ids),
        args=args,
    )


def encode(message: Request | Reply) -> bytes:
    return _encoder.encode(message)


def decode_request(data: bytes) -> Request:
    """The request ``data`` holds; :class:`WireVersionError` if it is of another
    version (answer it with :func:`version_refusal`)."""
    try:
        req = _request_decoder.decode(data)
    except msgspec.DecodeError as exc:
        theirs = _version_of(data)
        if theirs is not None and theirs != WIRE_VERSION:
            raise _version_error("request", theirs) from None
        raise WireFormatError(f"not a request: {exc}") from None
    if req.v != WIRE_VERSION:  # read as ours by chance: nothing of it can be trusted
        raise _version_error("request", req.v)
    return req


def decode_reply(data: bytes) -> Reply:
    """The reply ``data`` holds; :class:`WireVersionError` if it is of another version
    or refuses ours (``refused``: then the request did nothing)."""
    try:
        reply = _reply_decoder.decode(data)
    except msgspec.DecodeError as exc:
        theirs = _version_of(data)
        if theirs is not None and theirs != WIRE_VERSION:
            refused = theirs == 0 and _legacy_refusal(data)
            raise _version_error("reply", theirs, refused=refused) from None
        raise WireFormatError(f"not a reply: {exc}") from None
    error = reply.error
    if error is not None and error.kind == "version":  # the same shape in every version
        raise WireVersionError(error.message, theirs=reply.v, refused=True)
    if reply.v != WIRE_VERSION:
        raise _version_error("reply", reply.v)
    return reply


def version_refusal(exc: WireVersionError) -> bytes:
    """A worker's answer (encoded) to a request of a version it does not speak.

    A release before versions reads no reply of ours (it would fail the request as an
    internal error, HTTP 500, not knowing that nothing was done): it gets its own
    format's refusal of a store that did nothing, which it answers as HTTP 503 with
    ``Retry-After``, as for a worker that cannot reach the store."""
    if exc.theirs == 0:
        error = WireError("unavailable", "store_unavailable", str(exc))
        return msgspec.msgpack.encode(_LegacyReply(error=error))
    return encode(Reply(error=WireError("version", WRONG_VERSION, str(exc))))


class _MarketRequestOnWire(msgspec.Struct, frozen=True, kw_only=True):
    """A :class:`MarketRequest` as encoded, its domain command left to decode by the
    class the request's kind names (a union of commands has no tag to tell them by)."""

    action: str
    command: msgspec.Raw
    game_id: str | None = None
    velocity: Velocity = "medium"


def command_of(req: Request) -> Any:
    """The command a request carries, as its domain class (a market request as a
    :class:`MarketRequest`)."""
    try:
        market = _MARKET_COMMANDS.get(req.kind)
        if market is not None:
            wrapped = msgspec.msgpack.decode(req.command, type=_MarketRequestOnWire)
            inner: MarketCommand = msgspec.msgpack.decode(wrapped.command, type=market)  # type: ignore[assignment]
            return MarketRequest(
                action=wrapped.action,
                command=inner,
                game_id=wrapped.game_id,
                velocity=wrapped.velocity,
            )
        cls = _COMMANDS.get(req.kind)
        if cls is None:
            raise WireFormatError(f"unknown command {req.kind!r}")
        return msgspec.msgpack.decode(req.command, type=cls)
    except (msgspec.DecodeError, FixedOddsRejection) as exc:  # a price out of bounds too
        raise WireFormatError(f"bad {req.kind}: {exc}") from None


def carried(req: Request) -> Any:
    """:func:`command_of`, once checked to be a command its operation takes (a market
    request for ``market``, a race command or a market request for ``recall``, a bet on
    a race or a market for ``wallet_bet`` …); :class:`WireFormatError` otherwise."""
    takes = _CARRIES.get(req.op)
    if takes is None:
        raise WireFormatError(f"a {req.op} request carries no command")
    command = command_of(req)
    if not isinstance(command, takes):
        raise WireFormatError(f"a {req.op} request carrying a {req.kind}")
    return command


def book_of(command: Any) -> str:
    """The book (its stream's id) a race command, a market request or a bet on either
    is for; :class:`WireFormatError` for any other command."""
    if isinstance(command, MarketRequest):
        return market_stream(command.command.market_id)
    if isinstance(command, fixedodds.PlaceBet):
        return market_stream(command.market_id)
    if isinstance(command, _RACE_COMMANDS):
        return race_stream(command.race_id)
    raise WireFormatError(f"{type(command).__name__} is for no race or market")


def outcome_reply(outcome: CommandOutcome) -> Reply:
    return Reply(
        outcome=WireOutcome(
            events=[(_EVENT_NAMES[type(e)], _encoder.encode(e)) for e in outcome.events],
            stream_version=outcome.stream_version,
            first_position=outcome.first_position,
            last_position=outcome.last_position,
            repeated=outcome.repeated,
        )
    )


def stream_of(req: Request) -> str:
    """The stream whose events a request's outcome holds (a wallet bet's: its book's)."""
    if req.op in (Op.RACE, Op.MARKET, Op.RECALL, Op.WALLET_BET):
        return book_of(command_of(req))
    if req.op is Op.WALLET:
        return wallet_stream(command_of(req).wallet_id)
    raise WireFormatError(f"{req.op} answers no events")


def fit(reply: Reply, data: bytes, limit: int, req: Request) -> bytes:
    """``data`` (``reply`` encoded) if it fits in ``limit`` bytes, else ``reply`` with its
    events left out for the receiver to read from the log (a race's dividends: one event
    per bet, ~145 bytes each, past NATS's 1 MB default beyond ~7,000 bets)."""
    outcome = reply.outcome
    if len(data) <= limit or outcome is None or not outcome.events:
        return data
    slim = msgspec.structs.replace(
        outcome, events=[], elided=len(outcome.events), stream=stream_of(req)
    )
    return encode(msgspec.structs.replace(reply, outcome=slim))


def outcome_of(wire: WireOutcome) -> CommandOutcome:
    """The outcome a reply carries (its events with it: see :func:`fit`)."""
    if wire.elided:
        raise WireFormatError("an outcome whose events are in the log: read them there")
    return CommandOutcome(
        events=tuple(
            msgspec.msgpack.decode(data, type=_EVENTS[name]) for name, data in wire.events
        ),
        stream_version=wire.stream_version,
        first_position=wire.first_position,
        last_position=wire.last_position,
        repeated=wire.repeated,
    )


def error_reply(exc: BaseException) -> Reply:
    """The refusal to send back for ``exc``: every typed refusal keeps its type; anything
    else is ``internal`` (the owner logs it)."""
    if isinstance(exc, InsufficientFunds):
        error = WireError("funds", exc.code, exc.message, balance=exc.balance)
    elif isinstance(exc, ToteRejection):
        error = WireError("tote", exc.code, exc.message)
    elif isinstance(exc, FixedOddsRejection):
        error = WireError("fixedodds", exc.code, exc.message)
    elif isinstance(exc, WalletRejection):
        error = WireError("wallet", exc.code, exc.message)
    elif isinstance(exc, RequestIdReused):
        error = WireError("reused", exc.code, str(exc))
    elif isinstance(exc, StoreUnavailable):
        error = WireError(
            "unavailable", "store_unavailable", str(exc), outcome_unknown=exc.outcome_unknown
        )
    elif isinstance(exc, EventStoreError):
        error = WireError("store", "conflict", str(exc))
    else:
        error = WireError("internal", "internal", f"{type(exc).__name__}: {exc}")
    return Reply(error=error)


class WrongPartition(Exception):
    """A request's command is not for the partition the request names (its sender
    hashes with another number of partitions)."""


class RemoteError(Exception):
    """A command failed on its owner in a way that is not a refusal (a bug there)."""


def raise_error(error: WireError) -> typing.NoReturn:
    """Raise the exception a refusal stands for."""
    if error.kind == "funds":
        exc: Exception = InsufficientFunds.__new__(InsufficientFunds)
        WalletRejection.__init__(exc, error.code, error.message)  # type: ignore[arg-type]
        exc.balance = error.balance  # type: ignore[attr-defined]
        raise exc
    if error.kind == "tote":
        raise ToteRejection(error.code, error.message)
    if error.kind == "fixedodds":
        raise FixedOddsRejection(error.code, error.message)
    if error.kind == "wallet":
        raise WalletRejection(error.code, error.message)
    if error.kind == "reused":
        reused = RequestIdReused()
        reused.args = (error.message,)
        raise reused
    if error.kind == "unavailable":
        raise StoreUnavailable(error.message, outcome_unknown=error.outcome_unknown)
    if error.kind == "store":
        raise EventStoreError(error.message)
    raise RemoteError(error.message)
