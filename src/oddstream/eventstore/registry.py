"""Typed events: classes ↔ stored (type, schema version, data), with upcasting.

Event classes are ``msgspec.Struct`` types. We chose msgspec over pydantic and plain
dataclasses because it validates while converting (``msgspec.convert`` checks types,
required fields and constraints the way a decoder does), is several times faster at it
than pydantic v2 on small objects, and its frozen structs give cheap immutable values
for the pure domain. Pydantic stays where it belongs, at the HTTP edge (FastAPI).

    registry = EventRegistry()

    @registry.event("BetPlaced", version=2)
    class BetPlaced(msgspec.Struct, frozen=True):
        bet_id: str
        stake_cents: int

    @registry.upcaster("BetPlaced", from_version=1)
    def _v1_to_v2(data: dict) -> dict:
        return {"bet_id": data["id"], "stake_cents": round(data["stake"] * 100)}

    new_event = registry.to_new_event(BetPlaced("b1", 500))
    typed = registry.decode(recorded)  # any stored version comes back as a v2 BetPlaced
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from uuid import UUID

import msgspec

from .envelope import NewEvent, RecordedEvent
from .errors import EventStoreError, InvalidEvent
from .prepare import validate_type

S = TypeVar("S", bound=type[msgspec.Struct])
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UnknownEventType(EventStoreError):
    """A stored event's type (or a class) is not registered."""


class UpcastError(EventStoreError):
    """A stored version cannot be lifted to the registered one."""


class EventRegistry:
    """Maps event classes to stored names and versions; decodes with upcasting."""

    def __init__(self) -> None:
        self._by_name: dict[str, tuple[type[msgspec.Struct], int]] = {}
        self._by_class: dict[type[msgspec.Struct], tuple[str, int]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def event(self, name: str | None = None, *, version: int = 1) -> Callable[[S], S]:
        """Class decorator: register a ``msgspec.Struct`` as event ``name`` at ``version``."""

        def register(cls: S) -> S:
            self.register(cls, name=name, version=version)
            return cls

        return register

    def register(
        self, cls: type[msgspec.Struct], *, name: str | None = None, version: int = 1
    ) -> None:
        """Register ``cls`` as the current shape of event ``name`` (default: class name)."""
        if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
            raise TypeError(f"{cls!r} is not a msgspec.Struct class")
        if cls.__struct_config__.array_like:
            raise TypeError(f"{cls.__name__} is array_like; stored events are JSON objects")
        name = validate_type(name or cls.__name__)
        if not isinstance(version, int) or version < 1:
            raise ValueError("version must be an int >= 1")
        if name in self._by_name and self._by_name[name][0] is not cls:
            raise ValueError(f"event type {name!r} is already registered")
        self._by_name[name] = (cls, version)
        self._by_class[cls] = (name, version)

    def upcaster(self, name: str, *, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator: a function lifting ``name``'s data from ``from_version`` to the next."""

        def register(fn: Upcaster) -> Upcaster:
            key = (name, from_version)
            if key in self._upcasters:
                raise ValueError(f"an upcaster for {name} v{from_version} exists already")
            self._upcasters[key] = fn
            return fn

        return register

    def name_of(self, cls: type[msgspec.Struct]) -> str:
        try:
            return self._by_class[cls][0]
        except KeyError:
            raise UnknownEventType(f"{cls.__name__} is not a registered event class") from None

    def to_new_event(
        self,
        event: msgspec.Struct,
        *,
        metadata: Mapping[str, Any] | None = None,
        event_id: UUID | None = None,
    ) -> NewEvent:
        """Encode a typed event for :meth:`EventStore.append`."""
        try:
            name, version = self._by_class[type(event)]
        except KeyError:
            raise UnknownEventType(
                f"{type(event).__name__} is not a registered event class"
            ) from None
        data = msgspec.to_builtins(event, str_keys=True)
        return NewEvent(name, data, dict(metadata or {}), event_id, version)

    def decode(self, recorded: RecordedEvent) -> msgspec.Struct:
        """The typed event for a stored one, lifted to the registered version."""
        try:
            cls, current = self._by_name[recorded.type]
        except KeyError:
            raise UnknownEventType(f"no event class is registered for {recorded.type!r}") from None
        version = recorded.schema_version
        if version > current:
            raise UpcastError(
                f"{recorded.type} is stored at v{version}, newer than the registered "
                f"v{current}: this code is older than the data"
            )
        data: dict[str, Any] = dict(recorded.data)
        while version < current:
            step = self._upcasters.get((recorded.type, version))
            if step is None:
                raise UpcastError(f"no upcaster lifts {recorded.type} from v{version}")
            try:
                data = step(data)
            except Exception as exc:
                raise UpcastError(
                    f"upcasting {recorded.type} v{version} at position {recorded.position} "
                    f"failed: {exc!r}"
                ) from exc
            if not isinstance(data, dict):
                raise UpcastError(f"the upcaster of {recorded.type} v{version} returned no dict")
            version += 1
        try:
            return msgspec.convert(data, cls, str_keys=True)
        except msgspec.ValidationError as exc:
            raise InvalidEvent(
                f"stored {recorded.type} at position {recorded.position} does not fit "
                f"{cls.__name__}: {exc}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name
