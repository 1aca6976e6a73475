import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from oddstream.pb import fixedodds_pb2 as _fixedodds_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Command(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMMAND_UNSPECIFIED: _ClassVar[Command]
    COMMAND_NEW_ODDS: _ClassVar[Command]
    COMMAND_UPDATE_ODDS: _ClassVar[Command]
    COMMAND_DELETE_ODDS: _ClassVar[Command]
    COMMAND_SUSPEND_ODDS: _ClassVar[Command]
    COMMAND_RESUME_ODDS: _ClassVar[Command]
    COMMAND_CLOSE_ODDS: _ClassVar[Command]
    COMMAND_RESULT_ODDS: _ClassVar[Command]
    COMMAND_VOID_ODDS: _ClassVar[Command]

class Domain(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOMAIN_UNSPECIFIED: _ClassVar[Domain]
    DOMAIN_ODDS: _ClassVar[Domain]

class EventVelocity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_VELOCITY_UNSPECIFIED: _ClassVar[EventVelocity]
    EVENT_VELOCITY_HIGH: _ClassVar[EventVelocity]
    EVENT_VELOCITY_MEDIUM: _ClassVar[EventVelocity]
    EVENT_VELOCITY_LOW: _ClassVar[EventVelocity]

class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_UNSPECIFIED: _ClassVar[Status]
    STATUS_SUCCESS: _ClassVar[Status]
    STATUS_FAIL: _ClassVar[Status]

class MarketStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MARKET_STATUS_UNSPECIFIED: _ClassVar[MarketStatus]
    MARKET_STATUS_OPEN: _ClassVar[MarketStatus]
    MARKET_STATUS_SUSPENDED: _ClassVar[MarketStatus]
    MARKET_STATUS_CLOSED: _ClassVar[MarketStatus]
    MARKET_STATUS_RESULTED: _ClassVar[MarketStatus]
    MARKET_STATUS_VOIDED: _ClassVar[MarketStatus]
    MARKET_STATUS_DELETED: _ClassVar[MarketStatus]
COMMAND_UNSPECIFIED: Command
COMMAND_NEW_ODDS: Command
COMMAND_UPDATE_ODDS: Command
COMMAND_DELETE_ODDS: Command
COMMAND_SUSPEND_ODDS: Command
COMMAND_RESUME_ODDS: Command
COMMAND_CLOSE_ODDS: Command
COMMAND_RESULT_ODDS: Command
COMMAND_VOID_ODDS: Command
DOMAIN_UNSPECIFIED: Domain
DOMAIN_ODDS: Domain
EVENT_VELOCITY_UNSPECIFIED: EventVelocity
EVENT_VELOCITY_HIGH: EventVelocity
EVENT_VELOCITY_MEDIUM: EventVelocity
EVENT_VELOCITY_LOW: EventVelocity
STATUS_UNSPECIFIED: Status
STATUS_SUCCESS: Status
STATUS_FAIL: Status
MARKET_STATUS_UNSPECIFIED: MarketStatus
MARKET_STATUS_OPEN: MarketStatus
MARKET_STATUS_SUSPENDED: MarketStatus
MARKET_STATUS_CLOSED: MarketStatus
MARKET_STATUS_RESULTED: MarketStatus
MARKET_STATUS_VOIDED: MarketStatus
MARKET_STATUS_DELETED: MarketStatus

class MoneyLine(_message.Message):
    __slots__ = ("home", "away", "draw")
    HOME_FIELD_NUMBER: _ClassVar[int]
    AWAY_FIELD_NUMBER: _ClassVar[int]
    DRAW_FIELD_NUMBER: _ClassVar[int]
    home: _fixedodds_pb2.Odds
    away: _fixedodds_pb2.Odds
    draw: _fixedodds_pb2.Odds
    def __init__(self, home: _Optional[_Union[_fixedodds_pb2.Odds, _Mapping]] = ..., away: _Optional[_Union[_fixedodds_pb2.Odds, _Mapping]] = ..., draw: _Optional[_Union[_fixedodds_pb2.Odds, _Mapping]] = ...) -> None: ...

class Payload(_message.Message):
    __slots__ = ("game_id", "money_line", "winners", "reason")
    GAME_ID_FIELD_NUMBER: _ClassVar[int]
    MONEY_LINE_FIELD_NUMBER: _ClassVar[int]
    WINNERS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    game_id: str
    money_line: MoneyLine
    winners: _containers.RepeatedScalarFieldContainer[_fixedodds_pb2.Outcome]
    reason: str
    def __init__(self, game_id: _Optional[str] = ..., money_line: _Optional[_Union[MoneyLine, _Mapping]] = ..., winners: _Optional[_Iterable[_Union[_fixedodds_pb2.Outcome, str]]] = ..., reason: _Optional[str] = ...) -> None: ...

class CommandRequest(_message.Message):
    __slots__ = ("request_id", "provider", "command", "domain", "event_velocity", "payload")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    EVENT_VELOCITY_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    provider: str
    command: Command
    domain: Domain
    event_velocity: EventVelocity
    payload: Payload
    def __init__(self, request_id: _Optional[str] = ..., provider: _Optional[str] = ..., command: _Optional[_Union[Command, str]] = ..., domain: _Optional[_Union[Domain, str]] = ..., event_velocity: _Optional[_Union[EventVelocity, str]] = ..., payload: _Optional[_Union[Payload, _Mapping]] = ...) -> None: ...

class CommandResponse(_message.Message):
    __slots__ = ("request_id", "status", "msg", "external_id", "position", "repeated", "error")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MSG_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    REPEATED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    status: Status
    msg: str
    external_id: str
    position: int
    repeated: bool
    error: str
    def __init__(self, request_id: _Optional[str] = ..., status: _Optional[_Union[Status, str]] = ..., msg: _Optional[str] = ..., external_id: _Optional[str] = ..., position: _Optional[int] = ..., repeated: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class OddsRecord(_message.Message):
    __slots__ = ("id", "external_id", "game_id", "money_line", "deleted", "created_at", "updated_at", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    GAME_ID_FIELD_NUMBER: _ClassVar[int]
    MONEY_LINE_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: int
    external_id: str
    game_id: str
    money_line: MoneyLine
    deleted: bool
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    status: MarketStatus
    def __init__(self, id: _Optional[int] = ..., external_id: _Optional[str] = ..., game_id: _Optional[str] = ..., money_line: _Optional[_Union[MoneyLine, _Mapping]] = ..., deleted: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[MarketStatus, str]] = ...) -> None: ...

class OddsEvent(_message.Message):
    __slots__ = ("id", "odds_id", "event_id", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    ODDS_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    odds_id: int
    event_id: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., odds_id: _Optional[int] = ..., event_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OddsRecords(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[OddsRecord]
    def __init__(self, items: _Optional[_Iterable[_Union[OddsRecord, _Mapping]]] = ...) -> None: ...

class OddsEvents(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[OddsEvent]
    def __init__(self, items: _Optional[_Iterable[_Union[OddsEvent, _Mapping]]] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("request_id", "status", "msg", "record", "records", "events", "error")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MSG_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    status: Status
    msg: str
    record: OddsRecord
    records: OddsRecords
    events: OddsEvents
    error: str
    def __init__(self, request_id: _Optional[str] = ..., status: _Optional[_Union[Status, str]] = ..., msg: _Optional[str] = ..., record: _Optional[_Union[OddsRecord, _Mapping]] = ..., records: _Optional[_Union[OddsRecords, _Mapping]] = ..., events: _Optional[_Union[OddsEvents, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...
