"""Stored names and versions of the domain's events (one registry for the process)."""

from __future__ import annotations

import msgspec

from ..domain.deadletters import ALL_EVENTS as DEAD_LETTER_EVENTS
from ..domain.fixedodds import ALL_EVENTS as MARKET_EVENTS
from ..domain.quotes import CURRENT_VERSIONS as QUOTE_VERSIONS
from ..domain.quotes.stored import STORED_CLASSES as QUOTE_EVENTS
from ..domain.tote.events import ALL_EVENTS as TOTE_EVENTS
from ..domain.tote.events import RaceScheduled
from ..domain.wallet.events import ALL_EVENTS as WALLET_EVENTS
from ..domain.wallet.events import STAKE_EVENTS, STAKE_EVENTS_VERSION, upcast_v1
from ..eventstore.registry import EventRegistry
from ..integrations.kafka.legacy_events import register_legacy_events

#: events whose stored shape changed, at their current version (upcasters lift the rest)
_VERSIONS: dict[type[msgspec.Struct], int] = {
    RaceScheduled: 2,
    **dict.fromkeys(STAKE_EVENTS, STAKE_EVENTS_VERSION),
}

registry = EventRegistry()
# first: old names of events that are now written under the names registered below
register_legacy_events(registry)
for _cls in TOTE_EVENTS:
    registry.register(_cls, name=f"tote.{_cls.__name__}", version=_VERSIONS.get(_cls, 1))
for _cls in WALLET_EVENTS:
    registry.register(_cls, name=f"wallet.{_cls.__name__}", version=_VERSIONS.get(_cls, 1))
# stake events named a race_id before they named a book (a race's or a market's)
for _cls in STAKE_EVENTS:
    registry.upcaster(f"wallet.{_cls.__name__}", from_version=1)(upcast_v1)
for _cls in MARKET_EVENTS:
    registry.register(_cls, name=f"fixedodds.{_cls.__name__}", version=1)
for _cls in DEAD_LETTER_EVENTS:
    registry.register(_cls, name=f"deadletter.{_cls.__name__}", version=1)
# quote events: data is the exact wire text (domain/quotes/stored.py); the version is
# the quote codec's, whose upcasters lift older ones (read them with ``from_stored``)
for _name, _stored in QUOTE_EVENTS.items():
    registry.register(_stored, name=_name, version=QUOTE_VERSIONS[_name.removeprefix("quotes.")])

__all__ = ["registry"]
