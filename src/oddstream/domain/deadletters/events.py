"""Events of a dead-letter stream (``deadletter-<source>``): a message that could not be
taken in, kept with why, and what became of it. Pure.

One facility for every source (the quote ingest's ``quotes``; the SQL sinks' dead-letter
topics later): a source names its stream, the reasons are the source's own stable codes.
"""

from __future__ import annotations

import msgspec


class DeadLettered(msgspec.Struct, frozen=True, kw_only=True):
    """A message refused, with the payload exactly as it was received (see
    :mod:`.payload` for how bytes are kept)."""

    letter_id: str
    source: str
    #: the source's stable reason code (``missing_field``, ``unknown_quote`` …)
    reason: str
    message: str
    #: the field at fault (``products[0].total``; ``$`` for the message as a whole)
    path: str
    #: the payload as text (``payload_encoding="utf-8"``) or base64 (``"base64"``)
    payload: str
    payload_encoding: str
    #: the size of the payload as received, and its SHA-256 (hex)
    payload_bytes: int
    payload_sha256: str
    #: only a prefix is kept (a payload over :data:`.payload.MAX_KEPT_BYTES`)
    payload_truncated: bool = False
    #: ISO 8601, UTC: when the source received the message
    received_at: str
    #: free details of the source (the event type, the quote id, how it came in …)
    context: dict[str, str] = msgspec.field(default_factory=dict)


class ReplayFailed(msgspec.Struct, frozen=True, kw_only=True):
    """A replay of the letter (its own payload, or a fixed one) was refused again: the
    letter stays open with this reason."""

    letter_id: str
    reason: str
    message: str
    path: str
    #: whether a fixed payload was tried (then it is kept here, as in ``DeadLettered``)
    fixed: bool = False
    payload: str | None = None
    payload_encoding: str | None = None
    payload_sha256: str | None = None
    replayed_at: str
    #: the replay's claim (:class:`ReplayClaimed`), which this ends; ``None`` in events
    #: written before claims
    claim_id: str | None = None


class ReplayClaimed(msgspec.Struct, frozen=True, kw_only=True):
    """A replay of the letter began (``claim_id`` names it): appended against the
    stream's version, so of two replays of one letter at a time one claims it and the
    other is refused; the claim ends with the replay's ``ReplayFailed`` or
    ``Resolved`` (naming it: a replay that outlived its claim, ending after another
    took the letter over, does not end the other's), or lapses (a process that died
    mid-replay) after a while."""

    letter_id: str
    claim_id: str
    claimed_at: str


class Resolved(msgspec.Struct, frozen=True, kw_only=True):
    """A replay went through: the letter is closed. ``outcome`` is the source's
    (``stored``, ``repeated``); ``fixed`` when a corrected payload was used."""

    letter_id: str
    outcome: str
    fixed: bool = False
    payload_sha256: str
    #: where the source put it (``quote-q1@3``), if anywhere
    target: str | None = None
    resolved_at: str
    #: the replay's claim, which this ends (``None``: written before claims)
    claim_id: str | None = None


DeadLetterEvent = DeadLettered | ReplayFailed | ReplayClaimed | Resolved

ALL_EVENTS: tuple[type[msgspec.Struct], ...] = (DeadLettered, ReplayFailed, Resolved, ReplayClaimed)
