from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_HOME: _ClassVar[Outcome]
    OUTCOME_AWAY: _ClassVar[Outcome]
    OUTCOME_DRAW: _ClassVar[Outcome]
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_HOME: Outcome
OUTCOME_AWAY: Outcome
OUTCOME_DRAW: Outcome

class Odds(_message.Message):
    __slots__ = ("num", "den")
    NUM_FIELD_NUMBER: _ClassVar[int]
    DEN_FIELD_NUMBER: _ClassVar[int]
    num: int
    den: int
    def __init__(self, num: _Optional[int] = ..., den: _Optional[int] = ...) -> None: ...

class MoneyLine(_message.Message):
    __slots__ = ("home", "away", "draw")
    HOME_FIELD_NUMBER: _ClassVar[int]
    AWAY_FIELD_NUMBER: _ClassVar[int]
    DRAW_FIELD_NUMBER: _ClassVar[int]
    home: Odds
    away: Odds
    draw: Odds
    def __init__(self, home: _Optional[_Union[Odds, _Mapping]] = ..., away: _Optional[_Union[Odds, _Mapping]] = ..., draw: _Optional[_Union[Odds, _Mapping]] = ...) -> None: ...

class MarketLimits(_message.Message):
    __slots__ = ("max_stake_cents", "max_liability_cents", "min_stake_cents")
    MAX_STAKE_CENTS_FIELD_NUMBER: _ClassVar[int]
    MAX_LIABILITY_CENTS_FIELD_NUMBER: _ClassVar[int]
    MIN_STAKE_CENTS_FIELD_NUMBER: _ClassVar[int]
    max_stake_cents: int
    max_liability_cents: int
    min_stake_cents: int
    def __init__(self, max_stake_cents: _Optional[int] = ..., max_liability_cents: _Optional[int] = ..., min_stake_cents: _Optional[int] = ...) -> None: ...

class MarketCreated(_message.Message):
    __slots__ = ("market_id", "game_id", "provider", "money_line", "limits")
    MARKET_ID_FIELD_NUMBER: _ClassVar[int]
    GAME_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MONEY_LINE_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    market_id: str
    game_id: str
    provider: str
    money_line: MoneyLine
    limits: MarketLimits
    def __init__(self, market_id: _Optional[str] = ..., game_id: _Optional[str] = ..., provider: _Optional[str] = ..., money_line: _Optional[_Union[MoneyLine, _Mapping]] = ..., limits: _Optional[_Union[MarketLimits, _Mapping]] = ...) -> None: ...

class PricesUpdated(_message.Message):
    __slots__ = ("market_id", "money_line")
    MARKET_ID_FIELD_NUMBER: _ClassVar[int]
    MONEY_LINE_FIELD_NUMBER: _ClassVar[int]
    market_id: str
    money_line: MoneyLine
    def __init__(self, market_id: _Optional[str] = ..., money_line: _Optional[_Union[MoneyLine, _Mapping]] = ...) -> None: ...

class MarketSuspended(_message.Message):
    __slots__ = ("market_id",)
    MARKET_ID_FIELD_NUMBER: _ClassVar[int]
    market_id: str
    def __init__(self, market_id: _Optional[str] = ...) -> None: ...

class MarketResumed(_message.Message):
    __slots__ = ("market_id",)
    MARKET_ID_FIELD_NUMBER: _ClassVar[int]
    market_id: str
    def __init__(self, market_id: _Optional[str] = ...) -> None: ...

class MarketClosed(_message.Message):
    __slots__ = ("market_id",)
    MARKET_ID_FIELD_NUMBER: _ClassVar[int]
    market_id: str
    def __init__(self, market_id: _Optional[str] = ...) -> None: ...

class BetAccepted(_message.Message):
    __slots__ = ("market_id", "bet_id", "outcome", "stake_cents", "requested", "price", "wallet_id")
    MARKET_ID_FIELD_NUMBER: _ClassVar[int]
    BET_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    STAKE_CENTS_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    WALLET_ID_FIELD_NUMBER: _ClassVar[int]
    market_id: str
    bet_id: str
    outcome: Outcome
    stake_cents: int
    requested: Odds
    price: Odds
    wallet_id: str
    def __init__(self, market_id: _Optional[str] = ..., bet_id: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., stake_cents: _Optional[int] = ..., requested: _Optional[_Union[Odds, _Mapping]] = ..., price: _Optional[_Union[Odds, _Mapping]] = ..., wallet_id: _Optional[str] = ...) -> None: ...

class MarketResulted(_message.Message):
    __slots__ = ("market_id", "winners", "stakes_cents", "paid_cents", "book_cents")
    MARKET_ID_FIELD_NUMBER: _ClassVar[int]
    WINNERS_FIELD_NUMBER: _ClassVar[int]
    STAKES_CENTS_FIELD_NUMBER: _ClassVar[int]
    PAID_CENTS_FIELD_NUMBER: _ClassVar[int]
    BOOK_CENTS_FIELD_NUMBER: _ClassVar[int]
    market_id: str
    winners: _containers.RepeatedScalarFieldContainer[Outcome]
    stakes_cents: int
    paid_cents: int
    book_cents: int
    def __init__(self, market_id: _Optional[str] = ..., winners: _Optional[_Iterable[_Union[Outcome, str]]] = ..., stakes_cents: _Optional[int] = ..., paid_cents: _Optional[int] = ..., book_cents: _Optional[int] = ...) -> None: ...

class MarketVoided(_message.Message):
    __slots__ = ("market_id", "reason")
    MARKET_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    market_id: str
    reason: str
    def __init__(self, market_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class MarketDeleted(_message.Message):
    __slots__ = ("market_id",)
    MARKET_ID_FIELD_NUMBER: _ClassVar[int]
    market_id: str
    def __init__(self, market_id: _Optional[str] = ...) -> None: ...

class BetSettled(_message.Message):
    __slots__ = ("market_id", "bet_id", "payout_cents", "refund_cents", "reason", "wallet_id")
    MARKET_ID_FIELD_NUMBER: _ClassVar[int]
    BET_ID_FIELD_NUMBER: _ClassVar[int]
    PAYOUT_CENTS_FIELD_NUMBER: _ClassVar[int]
    REFUND_CENTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    WALLET_ID_FIELD_NUMBER: _ClassVar[int]
    market_id: str
    bet_id: str
    payout_cents: int
    refund_cents: int
    reason: str
    wallet_id: str
    def __init__(self, market_id: _Optional[str] = ..., bet_id: _Optional[str] = ..., payout_cents: _Optional[int] = ..., refund_cents: _Optional[int] = ..., reason: _Optional[str] = ..., wallet_id: _Optional[str] = ...) -> None: ...

class MarketEvent(_message.Message):
    __slots__ = ("market_created", "prices_updated", "market_suspended", "market_resumed", "market_closed", "bet_accepted", "market_resulted", "market_voided", "market_deleted", "bet_settled")
    MARKET_CREATED_FIELD_NUMBER: _ClassVar[int]
    PRICES_UPDATED_FIELD_NUMBER: _ClassVar[int]
    MARKET_SUSPENDED_FIELD_NUMBER: _ClassVar[int]
    MARKET_RESUMED_FIELD_NUMBER: _ClassVar[int]
    MARKET_CLOSED_FIELD_NUMBER: _ClassVar[int]
    BET_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    MARKET_RESULTED_FIELD_NUMBER: _ClassVar[int]
    MARKET_VOIDED_FIELD_NUMBER: _ClassVar[int]
    MARKET_DELETED_FIELD_NUMBER: _ClassVar[int]
    BET_SETTLED_FIELD_NUMBER: _ClassVar[int]
    market_created: MarketCreated
    prices_updated: PricesUpdated
    market_suspended: MarketSuspended
    market_resumed: MarketResumed
    market_closed: MarketClosed
    bet_accepted: BetAccepted
    market_resulted: MarketResulted
    market_voided: MarketVoided
    market_deleted: MarketDeleted
    bet_settled: BetSettled
    def __init__(self, market_created: _Optional[_Union[MarketCreated, _Mapping]] = ..., prices_updated: _Optional[_Union[PricesUpdated, _Mapping]] = ..., market_suspended: _Optional[_Union[MarketSuspended, _Mapping]] = ..., market_resumed: _Optional[_Union[MarketResumed, _Mapping]] = ..., market_closed: _Optional[_Union[MarketClosed, _Mapping]] = ..., bet_accepted: _Optional[_Union[BetAccepted, _Mapping]] = ..., market_resulted: _Optional[_Union[MarketResulted, _Mapping]] = ..., market_voided: _Optional[_Union[MarketVoided, _Mapping]] = ..., market_deleted: _Optional[_Union[MarketDeleted, _Mapping]] = ..., bet_settled: _Optional[_Union[BetSettled, _Mapping]] = ...) -> None: ...
