"""What the HTTP layer talks to, assembled once per app at startup."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Settings
from ..eventstore import EventStore
from ..projections.tote_view import ToteView
from ..runtime.race_writer import RaceWriter
from .metrics import Metrics
from .push import BoardHub


@dataclass
class Services:
    settings: Settings
    store: EventStore
    writer: RaceWriter
    view: ToteView
    hub: BoardHub
    metrics: Metrics
    admin_key: str | None
