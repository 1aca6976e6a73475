from oddstream.pb import fixedodds_pb2 as _fixedodds_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BusEvent(_message.Message):
    __slots__ = ("position", "stream", "version", "type", "velocity", "game_type", "domain", "channel", "publisher", "seq", "event", "json")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VELOCITY_FIELD_NUMBER: _ClassVar[int]
    GAME_TYPE_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    position: int
    stream: str
    version: int
    type: str
    velocity: str
    game_type: str
    domain: str
    channel: str
    publisher: str
    seq: int
    event: _fixedodds_pb2.MarketEvent
    json: bytes
    def __init__(self, position: _Optional[int] = ..., stream: _Optional[str] = ..., version: _Optional[int] = ..., type: _Optional[str] = ..., velocity: _Optional[str] = ..., game_type: _Optional[str] = ..., domain: _Optional[str] = ..., channel: _Optional[str] = ..., publisher: _Optional[str] = ..., seq: _Optional[int] = ..., event: _Optional[_Union[_fixedodds_pb2.MarketEvent, _Mapping]] = ..., json: _Optional[bytes] = ...) -> None: ...

class BusBatch(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[BusEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[BusEvent, _Mapping]]] = ...) -> None: ...
