"""Dead letters: messages a source could not take in, kept in the log with the reason
and the original bytes, until a replay resolves them. Pure. See ``docs/analytics.md``,
"Dead letters"; the store-backed facility is :mod:`oddstream.runtime.deadletters`."""

from .events import (
    ALL_EVENTS,
    DeadLettered,
    DeadLetterEvent,
    ReplayClaimed,
    ReplayFailed,
    Resolved,
)
from .letters import OPEN, RESOLVED, DeadLetter, fold
from .payload import MAX_KEPT_BYTES, KeptPayload, PayloadError, keep, restore

__all__ = [
    "ALL_EVENTS",
    "MAX_KEPT_BYTES",
    "OPEN",
    "RESOLVED",
    "DeadLetter",
    "DeadLetterEvent",
    "DeadLettered",
    "KeptPayload",
    "PayloadError",
    "ReplayClaimed",
    "ReplayFailed",
    "Resolved",
    "fold",
    "keep",
    "restore",
]
