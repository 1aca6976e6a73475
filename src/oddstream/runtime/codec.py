"""Stored names and versions of the domain's events (one registry for the process)."""

from __future__ import annotations

import msgspec

from ..domain.tote.events import ALL_EVENTS as TOTE_EVENTS
from ..domain.tote.events import RaceScheduled
from ..domain.wallet.events import ALL_EVENTS as WALLET_EVENTS
from ..eventstore.registry import EventRegistry
from ..integrations.kafka.legacy_events import register_legacy_events

#: events whose stored shape changed, at their current version (upcasters lift the rest)
_VERSIONS: dict[type[msgspec.Struct], int] = {RaceScheduled: 2}

registry = EventRegistry()
# first: old names of events that are now written under the names registered below
register_legacy_events(registry)
for _cls in TOTE_EVENTS:
    registry.register(_cls, name=f"tote.{_cls.__name__}", version=_VERSIONS.get(_cls, 1))
for _cls in WALLET_EVENTS:
    registry.register(_cls, name=f"wallet.{_cls.__name__}", version=1)

__all__ = ["registry"]
