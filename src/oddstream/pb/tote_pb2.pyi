from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PoolType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POOL_TYPE_UNSPECIFIED: _ClassVar[PoolType]
    POOL_TYPE_WIN: _ClassVar[PoolType]
    POOL_TYPE_PLACE: _ClassVar[PoolType]
    POOL_TYPE_SHOW: _ClassVar[PoolType]
    POOL_TYPE_EXACTA: _ClassVar[PoolType]
    POOL_TYPE_QUINELLA: _ClassVar[PoolType]
    POOL_TYPE_TRIFECTA: _ClassVar[PoolType]
POOL_TYPE_UNSPECIFIED: PoolType
POOL_TYPE_WIN: PoolType
POOL_TYPE_PLACE: PoolType
POOL_TYPE_SHOW: PoolType
POOL_TYPE_EXACTA: PoolType
POOL_TYPE_QUINELLA: PoolType
POOL_TYPE_TRIFECTA: PoolType

class Runner(_message.Message):
    __slots__ = ("number", "name")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    number: int
    name: str
    def __init__(self, number: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...

class PoolConfig(_message.Message):
    __slots__ = ("pool", "takeout_bps", "profile", "min_stake_cents", "increment_cents", "no_winner")
    POOL_FIELD_NUMBER: _ClassVar[int]
    TAKEOUT_BPS_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    MIN_STAKE_CENTS_FIELD_NUMBER: _ClassVar[int]
    INCREMENT_CENTS_FIELD_NUMBER: _ClassVar[int]
    NO_WINNER_FIELD_NUMBER: _ClassVar[int]
    pool: PoolType
    takeout_bps: int
    profile: str
    min_stake_cents: int
    increment_cents: int
    no_winner: str
    def __init__(self, pool: _Optional[_Union[PoolType, str]] = ..., takeout_bps: _Optional[int] = ..., profile: _Optional[str] = ..., min_stake_cents: _Optional[int] = ..., increment_cents: _Optional[int] = ..., no_winner: _Optional[str] = ...) -> None: ...

class RaceScheduled(_message.Message):
    __slots__ = ("race_id", "meeting", "venue", "post_time", "runners", "pools", "contributions_from")
    RACE_ID_FIELD_NUMBER: _ClassVar[int]
    MEETING_FIELD_NUMBER: _ClassVar[int]
    VENUE_FIELD_NUMBER: _ClassVar[int]
    POST_TIME_FIELD_NUMBER: _ClassVar[int]
    RUNNERS_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTIONS_FROM_FIELD_NUMBER: _ClassVar[int]
    race_id: str
    meeting: str
    venue: str
    post_time: str
    runners: _containers.RepeatedCompositeFieldContainer[Runner]
    pools: _containers.RepeatedCompositeFieldContainer[PoolConfig]
    contributions_from: str
    def __init__(self, race_id: _Optional[str] = ..., meeting: _Optional[str] = ..., venue: _Optional[str] = ..., post_time: _Optional[str] = ..., runners: _Optional[_Iterable[_Union[Runner, _Mapping]]] = ..., pools: _Optional[_Iterable[_Union[PoolConfig, _Mapping]]] = ..., contributions_from: _Optional[str] = ...) -> None: ...

class BettingOpened(_message.Message):
    __slots__ = ("race_id",)
    RACE_ID_FIELD_NUMBER: _ClassVar[int]
    race_id: str
    def __init__(self, race_id: _Optional[str] = ...) -> None: ...

class BetPlaced(_message.Message):
    __slots__ = ("race_id", "bet_id", "pool", "selection", "stake_cents", "wallet_id")
    RACE_ID_FIELD_NUMBER: _ClassVar[int]
    BET_ID_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    STAKE_CENTS_FIELD_NUMBER: _ClassVar[int]
    WALLET_ID_FIELD_NUMBER: _ClassVar[int]
    race_id: str
    bet_id: str
    pool: PoolType
    selection: _containers.RepeatedScalarFieldContainer[int]
    stake_cents: int
    wallet_id: str
    def __init__(self, race_id: _Optional[str] = ..., bet_id: _Optional[str] = ..., pool: _Optional[_Union[PoolType, str]] = ..., selection: _Optional[_Iterable[int]] = ..., stake_cents: _Optional[int] = ..., wallet_id: _Optional[str] = ...) -> None: ...

class RejectedContribution(_message.Message):
    __slots__ = ("ref", "code", "message")
    REF_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ref: int
    code: str
    message: str
    def __init__(self, ref: _Optional[int] = ..., code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ContributionsAdded(_message.Message):
    __slots__ = ("race_id", "source", "refs", "runners", "amounts_cents", "rejected")
    RACE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    REFS_FIELD_NUMBER: _ClassVar[int]
    RUNNERS_FIELD_NUMBER: _ClassVar[int]
    AMOUNTS_CENTS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    race_id: str
    source: str
    refs: _containers.RepeatedScalarFieldContainer[int]
    runners: _containers.RepeatedScalarFieldContainer[int]
    amounts_cents: _containers.RepeatedScalarFieldContainer[int]
    rejected: _containers.RepeatedCompositeFieldContainer[RejectedContribution]
    def __init__(self, race_id: _Optional[str] = ..., source: _Optional[str] = ..., refs: _Optional[_Iterable[int]] = ..., runners: _Optional[_Iterable[int]] = ..., amounts_cents: _Optional[_Iterable[int]] = ..., rejected: _Optional[_Iterable[_Union[RejectedContribution, _Mapping]]] = ...) -> None: ...

class BetCancelled(_message.Message):
    __slots__ = ("race_id", "bet_id")
    RACE_ID_FIELD_NUMBER: _ClassVar[int]
    BET_ID_FIELD_NUMBER: _ClassVar[int]
    race_id: str
    bet_id: str
    def __init__(self, race_id: _Optional[str] = ..., bet_id: _Optional[str] = ...) -> None: ...

class RunnerScratched(_message.Message):
    __slots__ = ("race_id", "runner")
    RACE_ID_FIELD_NUMBER: _ClassVar[int]
    RUNNER_FIELD_NUMBER: _ClassVar[int]
    race_id: str
    runner: int
    def __init__(self, race_id: _Optional[str] = ..., runner: _Optional[int] = ...) -> None: ...

class BettingClosed(_message.Message):
    __slots__ = ("race_id",)
    RACE_ID_FIELD_NUMBER: _ClassVar[int]
    race_id: str
    def __init__(self, race_id: _Optional[str] = ...) -> None: ...

class Placing(_message.Message):
    __slots__ = ("runners",)
    RUNNERS_FIELD_NUMBER: _ClassVar[int]
    runners: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, runners: _Optional[_Iterable[int]] = ...) -> None: ...

class ResultDeclared(_message.Message):
    __slots__ = ("race_id", "placings")
    RACE_ID_FIELD_NUMBER: _ClassVar[int]
    PLACINGS_FIELD_NUMBER: _ClassVar[int]
    race_id: str
    placings: _containers.RepeatedCompositeFieldContainer[Placing]
    def __init__(self, race_id: _Optional[str] = ..., placings: _Optional[_Iterable[_Union[Placing, _Mapping]]] = ...) -> None: ...

class ResultAmended(_message.Message):
    __slots__ = ("race_id", "placings")
    RACE_ID_FIELD_NUMBER: _ClassVar[int]
    PLACINGS_FIELD_NUMBER: _ClassVar[int]
    race_id: str
    placings: _containers.RepeatedCompositeFieldContainer[Placing]
    def __init__(self, race_id: _Optional[str] = ..., placings: _Optional[_Iterable[_Union[Placing, _Mapping]]] = ...) -> None: ...

class CarryoverAdded(_message.Message):
    __slots__ = ("race_id", "pool", "amount_cents", "from_race")
    RACE_ID_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_CENTS_FIELD_NUMBER: _ClassVar[int]
    FROM_RACE_FIELD_NUMBER: _ClassVar[int]
    race_id: str
    pool: PoolType
    amount_cents: int
    from_race: str
    def __init__(self, race_id: _Optional[str] = ..., pool: _Optional[_Union[PoolType, str]] = ..., amount_cents: _Optional[int] = ..., from_race: _Optional[str] = ...) -> None: ...

class Dividend(_message.Message):
    __slots__ = ("selection", "dividend_cents")
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    DIVIDEND_CENTS_FIELD_NUMBER: _ClassVar[int]
    selection: _containers.RepeatedScalarFieldContainer[int]
    dividend_cents: int
    def __init__(self, selection: _Optional[_Iterable[int]] = ..., dividend_cents: _Optional[int] = ...) -> None: ...

class PoolDividends(_message.Message):
    __slots__ = ("pool", "gross_cents", "carry_in_cents", "takeout_cents", "net_cents", "price_base_cents", "dividends", "paid_cents", "breakage_cents", "topup_cents", "refunded", "carry_out_cents")
    POOL_FIELD_NUMBER: _ClassVar[int]
    GROSS_CENTS_FIELD_NUMBER: _ClassVar[int]
    CARRY_IN_CENTS_FIELD_NUMBER: _ClassVar[int]
    TAKEOUT_CENTS_FIELD_NUMBER: _ClassVar[int]
    NET_CENTS_FIELD_NUMBER: _ClassVar[int]
    PRICE_BASE_CENTS_FIELD_NUMBER: _ClassVar[int]
    DIVIDENDS_FIELD_NUMBER: _ClassVar[int]
    PAID_CENTS_FIELD_NUMBER: _ClassVar[int]
    BREAKAGE_CENTS_FIELD_NUMBER: _ClassVar[int]
    TOPUP_CENTS_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_FIELD_NUMBER: _ClassVar[int]
    CARRY_OUT_CENTS_FIELD_NUMBER: _ClassVar[int]
    pool: PoolType
    gross_cents: int
    carry_in_cents: int
    takeout_cents: int
    net_cents: int
    price_base_cents: int
    dividends: _containers.RepeatedCompositeFieldContainer[Dividend]
    paid_cents: int
    breakage_cents: int
    topup_cents: int
    refunded: bool
    carry_out_cents: int
    def __init__(self, pool: _Optional[_Union[PoolType, str]] = ..., gross_cents: _Optional[int] = ..., carry_in_cents: _Optional[int] = ..., takeout_cents: _Optional[int] = ..., net_cents: _Optional[int] = ..., price_base_cents: _Optional[int] = ..., dividends: _Optional[_Iterable[_Union[Dividend, _Mapping]]] = ..., paid_cents: _Optional[int] = ..., breakage_cents: _Optional[int] = ..., topup_cents: _Optional[int] = ..., refunded: _Optional[bool] = ..., carry_out_cents: _Optional[int] = ...) -> None: ...

class DividendsDeclared(_message.Message):
    __slots__ = ("race_id", "pools")
    RACE_ID_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    race_id: str
    pools: _containers.RepeatedCompositeFieldContainer[PoolDividends]
    def __init__(self, race_id: _Optional[str] = ..., pools: _Optional[_Iterable[_Union[PoolDividends, _Mapping]]] = ...) -> None: ...

class BetSettled(_message.Message):
    __slots__ = ("race_id", "bet_id", "payout_cents", "refund_cents", "reason", "wallet_id")
    RACE_ID_FIELD_NUMBER: _ClassVar[int]
    BET_ID_FIELD_NUMBER: _ClassVar[int]
    PAYOUT_CENTS_FIELD_NUMBER: _ClassVar[int]
    REFUND_CENTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    WALLET_ID_FIELD_NUMBER: _ClassVar[int]
    race_id: str
    bet_id: str
    payout_cents: int
    refund_cents: int
    reason: str
    wallet_id: str
    def __init__(self, race_id: _Optional[str] = ..., bet_id: _Optional[str] = ..., payout_cents: _Optional[int] = ..., refund_cents: _Optional[int] = ..., reason: _Optional[str] = ..., wallet_id: _Optional[str] = ...) -> None: ...

class RaceAbandoned(_message.Message):
    __slots__ = ("race_id", "reason", "carry_out_cents")
    RACE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CARRY_OUT_CENTS_FIELD_NUMBER: _ClassVar[int]
    race_id: str
    reason: str
    carry_out_cents: int
    def __init__(self, race_id: _Optional[str] = ..., reason: _Optional[str] = ..., carry_out_cents: _Optional[int] = ...) -> None: ...

class RaceEvent(_message.Message):
    __slots__ = ("race_scheduled", "betting_opened", "bet_placed", "contributions_added", "bet_cancelled", "runner_scratched", "betting_closed", "result_declared", "result_amended", "carryover_added", "dividends_declared", "bet_settled", "race_abandoned")
    RACE_SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    BETTING_OPENED_FIELD_NUMBER: _ClassVar[int]
    BET_PLACED_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTIONS_ADDED_FIELD_NUMBER: _ClassVar[int]
    BET_CANCELLED_FIELD_NUMBER: _ClassVar[int]
    RUNNER_SCRATCHED_FIELD_NUMBER: _ClassVar[int]
    BETTING_CLOSED_FIELD_NUMBER: _ClassVar[int]
    RESULT_DECLARED_FIELD_NUMBER: _ClassVar[int]
    RESULT_AMENDED_FIELD_NUMBER: _ClassVar[int]
    CARRYOVER_ADDED_FIELD_NUMBER: _ClassVar[int]
    DIVIDENDS_DECLARED_FIELD_NUMBER: _ClassVar[int]
    BET_SETTLED_FIELD_NUMBER: _ClassVar[int]
    RACE_ABANDONED_FIELD_NUMBER: _ClassVar[int]
    race_scheduled: RaceScheduled
    betting_opened: BettingOpened
    bet_placed: BetPlaced
    contributions_added: ContributionsAdded
    bet_cancelled: BetCancelled
    runner_scratched: RunnerScratched
    betting_closed: BettingClosed
    result_declared: ResultDeclared
    result_amended: ResultAmended
    carryover_added: CarryoverAdded
    dividends_declared: DividendsDeclared
    bet_settled: BetSettled
    race_abandoned: RaceAbandoned
    def __init__(self, race_scheduled: _Optional[_Union[RaceScheduled, _Mapping]] = ..., betting_opened: _Optional[_Union[BettingOpened, _Mapping]] = ..., bet_placed: _Optional[_Union[BetPlaced, _Mapping]] = ..., contributions_added: _Optional[_Union[ContributionsAdded, _Mapping]] = ..., bet_cancelled: _Optional[_Union[BetCancelled, _Mapping]] = ..., runner_scratched: _Optional[_Union[RunnerScratched, _Mapping]] = ..., betting_closed: _Optional[_Union[BettingClosed, _Mapping]] = ..., result_declared: _Optional[_Union[ResultDeclared, _Mapping]] = ..., result_amended: _Optional[_Union[ResultAmended, _Mapping]] = ..., carryover_added: _Optional[_Union[CarryoverAdded, _Mapping]] = ..., dividends_declared: _Optional[_Union[DividendsDeclared, _Mapping]] = ..., bet_settled: _Optional[_Union[BetSettled, _Mapping]] = ..., race_abandoned: _Optional[_Union[RaceAbandoned, _Mapping]] = ...) -> None: ...
