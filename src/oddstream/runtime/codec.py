"""Stored names and versions of the domain's events (one registry for the process)."""

from __future__ import annotations

from ..domain.tote.events import ALL_EVENTS as TOTE_EVENTS
from ..domain.wallet.events import ALL_EVENTS as WALLET_EVENTS
from ..eventstore.registry import EventRegistry

registry = EventRegistry()
for _cls in TOTE_EVENTS:
    registry.register(_cls, name=f"tote.{_cls.__name__}", version=1)
for _cls in WALLET_EVENTS:
    registry.register(_cls, name=f"wallet.{_cls.__name__}", version=1)

__all__ = ["registry"]
