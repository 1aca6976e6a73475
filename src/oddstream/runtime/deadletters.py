"""The dead-letter store: one facility, in the log, for every source that must refuse a
message without losing it (the quote ingest; the SQL sinks' dead-letter topics).

A source ``s`` writes to the stream ``deadletter-s``: a ``deadletter.DeadLettered``
event per refused message, then ``deadletter.ReplayFailed`` / ``deadletter.Resolved``
as an operator replays it. Letters survive restarts (they are the log) and are listed
by folding the stream (:func:`oddstream.domain.deadletters.fold`).

A letter's id is derived from its source and the SHA-256 of its payload, and is its
event's id: the same bytes refused twice by one source are one letter (the store's
idempotent append answers the second with the first), so a client retrying a request
does not fill the queue.

Replaying is the source's: :meth:`DeadLetterStore.replay` hands the payload (the
letter's own, or a fixed one) to a :data:`Replayer` and records what it answered. A
replay first claims the letter (``deadletter.ReplayClaimed``, appended against the
stream's version), so two replays of one letter at a time — two operators, two
processes — never both take it in: the second is refused (:class:`LetterBusy`), as is
one whose copy of the letter is stale (:class:`LetterResolved`). A claim a dead process
left lapses after :data:`CLAIM_LAPSES_AFTER` seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec

from ..domain.deadletters import (
    DeadLetter,
    DeadLettered,
    DeadLetterEvent,
    ReplayClaimed,
    ReplayFailed,
    Resolved,
    fold,
    keep,
    restore,
)
from ..eventstore import (
    ANY,
    AppendResult,
    EventStore,
    StreamAppend,
    WrongExpectedVersion,
)
from .codec import registry

STREAM_CATEGORY = "deadletter"
#: the namespace of letter ids (uuid5 of ``<source>\n<payload sha256>``)
LETTER_IDS = uuid.UUID("4d2b7c1e-9a0f-4e55-8b3a-6c1d2e7f9a44")
#: a source names a stream: Kafka's topic characters (a sink's dead-letter topic is a
#: source), at most what a stream id leaves after ``deadletter-``; not ``.`` or ``..``
_SOURCE = re.compile(r"(?!\.\.?\Z)[A-Za-z0-9._-]{1,189}\Z")
_MAX_MESSAGE = 2000
#: events read at a time while folding letters (a letter's event takes up to ~1 MiB)
_PAGE = 16
_MAX_PATH = 500
#: a replay's claim on a letter lapses after this many seconds (its process died)
CLAIM_LAPSES_AFTER = 900
#: tries to claim a letter while other letters' events move its stream on
_CLAIM_TRIES = 20


class DeadLetterError(Exception):
    """Base of the dead-letter store's refusals."""


class UnknownLetter(DeadLetterError, LookupError):
    """No letter has this id (or id prefix)."""


class AmbiguousLetter(DeadLetterError, LookupError):
    """An id prefix that names more than one letter."""


class LetterResolved(DeadLetterError):
    """The letter was resolved already: there is nothing to replay."""


class LetterBusy(DeadLetterError):
    """Another replay of the letter is under way (its claim has not lapsed)."""


class UnknownSource(DeadLetterError, LookupError):
    """No replayer is known for the letter's source."""


def check_source(source: str) -> str:
    """``source`` if it can name a dead-letter stream (a Kafka topic name:
    ``[A-Za-z0-9._-]``, at most 189 characters, not ``.`` or ``..``)."""
    if not _SOURCE.match(source):
        raise ValueError(f"a dead-letter source is [A-Za-z0-9._-], 1 to 189 characters: {source!r}")
    return source


def stream_of(source: str) -> str:
    """The stream of ``source``'s dead letters."""
    return f"{STREAM_CATEGORY}-{check_source(source)}"


def letter_id(source: str, payload_sha256: str) -> uuid.UUID:
    """The id of ``source``'s letter for a payload of this digest."""
    return uuid.uuid5(LETTER_IDS, f"{source}\n{payload_sha256}")


def _text(text: str, limit: int) -> str:
    """``text`` as a log event can hold it, at most ``limit`` characters: a source's
    message, path or context may quote what it was sent, and the log refuses a NUL and
    a lone surrogate (refusing the letter would lose the message), so they are escaped
    (``\\x00``, ``\\ud800``). The payload is kept exactly, by :func:`keep`."""
    if text.isascii() and "\x00" not in text:
        return text[:limit]
    escaped = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return escaped.replace("\x00", "\\x00")[:limit]


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a source refused a message: a stable reason code, the field, a message."""

    reason: str
    path: str
    message: str


@dataclass(frozen=True, slots=True)
class ReplayAnswer:
    """What a source answered a replayed payload: taken in (``outcome`` such as
    ``stored`` or ``repeated``, and where) or refused again (``refusal``)."""

    outcome: str
    target: str | None = None
    refusal: Refusal | None = None


#: A source's way to take a payload in again, without dead-lettering it itself.
Replayer = Callable[[bytes], Awaitable[ReplayAnswer]]


@dataclass(frozen=True, slots=True)
class Recorded:
    """A letter as written: its id and whether it was there already (same bytes)."""

    letter_id: str
    repeated: bool


class DeadLetterStore:
    """Dead letters of every source, in ``store``."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    # -- writing

    def letter(
        self,
        source: str,
        payload: bytes,
        refusal: Refusal,
        *,
        received_at: str | None = None,
        context: Mapping[str, str] | None = None,
    ) -> StreamAppend:
        """The append that dead-letters ``payload`` (for a caller batching it with its
        own appends in :meth:`EventStore.append_many`); :meth:`recorded` reads its
        result."""
        kept = keep(payload)
        lid = letter_id(source, kept.sha256)
        event = DeadLettered(
            letter_id=str(lid),
            source=source,
            reason=_text(refusal.reason, _MAX_PATH),
            message=_text(refusal.message, _MAX_MESSAGE),
            path=_text(refusal.path, _MAX_PATH),
            payload=kept.text,
            payload_encoding=kept.encoding,
            payload_bytes=kept.size,
            payload_sha256=kept.sha256,
            payload_truncated=kept.truncated,
            received_at=received_at or now_iso(),
            context={_text(k, _MAX_PATH): _text(v, _MAX_PATH) for k, v in (context or {}).items()},
        )
        return StreamAppend(stream_of(source), [registry.to_new_event(event, event_id=lid)], ANY)

    @staticmethod
    def recorded(append: StreamAppend, result: AppendResult) -> Recorded:
        """What :meth:`letter`'s append wrote."""
        event_id = append.events[0].event_id
        return Recorded(str(event_id), result.idempotent_retry)

    async def record(
        self,
        source: str,
        payload: bytes,
        refusal: Refusal,
        *,
        received_at: str | None = None,
        context: Mapping[str, str] | None = None,
    ) -> Recorded:
        """Dead-letter one payload."""
        append = self.letter(source, payload, refusal, received_at=received_at, context=context)
        result = await self.store.append(append.stream_id, append.events, ANY)
        return self.recorded(append, result)

    # -- reading

    async def letters(
        self, source: str | None = None, *, payloads: bool = True, only: str | None = None
    ) -> list[DeadLetter]:
        """Every letter (of ``source``, or of all sources), oldest first, read a page
        at a time. Without ``payloads`` the letters' payloads (and fixed ones tried)
        are left out, so that listing many big letters holds only their details;
        ``only``: the letter of that id alone."""
        events: list[tuple[int, DeadLetterEvent]] = []
        if source is None:
            found = self.store.scan_all(category=STREAM_CATEGORY, batch_size=_PAGE)
        else:
            found = self.store.scan_stream(stream_of(source), batch_size=_PAGE)
        async for recorded in found:
            if recorded.type not in registry:
                continue
            typed = registry.decode(recorded)
            if not isinstance(typed, DeadLettered | ReplayFailed | Resolved | ReplayClaimed):
                continue
            if only is not None and typed.letter_id != only:
                continue
            if not payloads and isinstance(typed, DeadLettered):
                typed = msgspec.structs.replace(typed, payload="")
            elif not payloads and isinstance(typed, ReplayFailed) and typed.payload:
                typed = msgspec.structs.replace(typed, payload=None)
            events.append((recorded.position, typed))
        return sorted(fold(events).values(), key=lambda letter: letter.position)

    async def get(self, letter_id: str, source: str | None = None) -> DeadLetter:
        """The letter of this id, or of the one id starting with it (at least 6
        characters), with its payload; :class:`UnknownLetter` /
        :class:`AmbiguousLetter` otherwise."""
        wanted = letter_id.strip().lower()
        letters = await self.letters(source, payloads=False)
        found = [x for x in letters if x.letter_id == wanted]
        if not found:
            found = [x for x in letters if len(wanted) >= 6 and x.letter_id.startswith(wanted)]
        if not found:
            raise UnknownLetter(f"no dead letter {letter_id!r}")
        if len(found) > 1:
            raise AmbiguousLetter(f"{letter_id!r} names {len(found)} dead letters: give more of it")
        (letter,) = await self.letters(found[0].source, only=found[0].letter_id)
        return letter

    # -- replaying

    async def replay(
        self,
        letter: DeadLetter,
        replayers: Mapping[str, Replayer],
        payload: bytes | None = None,
    ) -> DeadLetter:
        """Take ``letter``'s payload (or the fixed ``payload``) in again through its
        source's replayer: a success resolves the letter, a refusal keeps it open with
        the new reason. Returns the letter as it now stands. The letter is claimed
        first (:class:`LetterResolved` if it is resolved now, :class:`LetterBusy` if
        another replay holds it); a replayer that raises ends the claim with a
        ``ReplayFailed`` (``replay_error``) and the error goes on to the caller."""
        if letter.status != "open":
            raise LetterResolved(f"dead letter {letter.letter_id} is resolved already")
        replayer = replayers.get(letter.source)
        if replayer is None:
            raise UnknownSource(f"no replay is known for source {letter.source!r}")
        letter = dataclasses.replace(await self._claim(letter), letter=letter.letter)
        assert letter.claim is not None
        claim_id = letter.claim.claim_id
        fixed = payload is not None
        raw = (
            payload
            if payload is not None
            else restore(letter.letter.payload, letter.letter.payload_encoding)
        )
        if not fixed and letter.letter.payload_truncated:
            answer = ReplayAnswer(
                "refused",
                refusal=Refusal(
                    letter.reason,
                    letter.path,
                    "only a prefix of this payload was kept: replay it with a fixed payload",
                ),
            )
        else:
            try:
                answer = await replayer(raw)
            except Exception as exc:
                error = Refusal("replay_error", "", f"{type(exc).__name__}: {exc}")
                with contextlib.suppress(Exception):  # the claim lapses anyway
                    await self._failed(letter, error, raw, fixed=fixed, claim_id=claim_id)
                raise
        digest = hashlib.sha256(raw).hexdigest()
        event: ReplayFailed | Resolved
        if answer.refusal is None:
            event = Resolved(
                letter_id=letter.letter_id,
                outcome=answer.outcome,
                fixed=fixed,
                payload_sha256=digest,
                target=answer.target,
                resolved_at=now_iso(),
                claim_id=claim_id,
            )
        else:
            kept = keep(raw) if fixed else None
            event = ReplayFailed(
                letter_id=letter.letter_id,
                reason=_text(answer.refusal.reason, _MAX_PATH),
                message=_text(answer.refusal.message, _MAX_MESSAGE),
                path=_text(answer.refusal.path, _MAX_PATH),
                fixed=fixed,
                payload=kept.text if kept else None,
                payload_encoding=kept.encoding if kept else None,
                payload_sha256=digest,
                replayed_at=now_iso(),
                claim_id=claim_id,
            )
        await self.store.append(stream_of(letter.source), [registry.to_new_event(event)], ANY)
        return letter.evolve(event)

    async def _failed(
        self, letter: DeadLetter, refusal: Refusal, raw: bytes, *, fixed: bool, claim_id: str
    ) -> None:
        kept = keep(raw) if fixed else None
        event = ReplayFailed(
            letter_id=letter.letter_id,
            reason=refusal.reason,
            message=_text(refusal.message, _MAX_MESSAGE),
            path=refusal.path,
            fixed=fixed,
            payload=kept.text if kept else None,
            payload_encoding=kept.encoding if kept else None,
            payload_sha256=hashlib.sha256(raw).hexdigest(),
            replayed_at=now_iso(),
            claim_id=claim_id,
        )
        await self.store.append(stream_of(letter.source), [registry.to_new_event(event)], ANY)

    async def _claim(self, letter: DeadLetter) -> DeadLetter:
        """Claim ``letter`` for a replay, as it stands now in the log."""
        stream = stream_of(letter.source)
        for _ in range(_CLAIM_TRIES):
            version = await self.store.stream_version(stream)
            found = await self.letters(letter.source, payloads=False, only=letter.letter_id)
            if not found:
                raise UnknownLetter(f"no dead letter {letter.letter_id!r}")
            (now,) = found
            if now.status != "open":
                raise LetterResolved(f"dead letter {letter.letter_id} is resolved already")
            if now.claim is not None and not _lapsed(now.claim):
                raise LetterBusy(
                    f"dead letter {letter.letter_id} is being replayed by another process "
                    f"(since {now.claim.claimed_at}); try again later"
                )
            claim = ReplayClaimed(
                letter_id=letter.letter_id, claim_id=str(uuid.uuid4()), claimed_at=now_iso()
            )
            try:
                await self.store.append(stream, [registry.to_new_event(claim)], version)
            except WrongExpectedVersion:
                continue  # another event of the stream came first: look again
            return now.evolve(claim)
        raise LetterBusy(f"dead letter {letter.letter_id}: its stream kept changing; try again")


def _lapsed(claim: ReplayClaimed) -> bool:
    try:
        at = datetime.fromisoformat(claim.claimed_at)
    except ValueError:
        return True
    return datetime.now(UTC) - at > timedelta(seconds=CLAIM_LAPSES_AFTER)


__all__ = [
    "CLAIM_LAPSES_AFTER",
    "LETTER_IDS",
    "STREAM_CATEGORY",
    "AmbiguousLetter",
    "DeadLetterError",
    "DeadLetterStore",
    "LetterBusy",
    "LetterResolved",
    "Recorded",
    "Refusal",
    "ReplayAnswer",
    "Replayer",
    "UnknownLetter",
    "UnknownSource",
    "check_source",
    "letter_id",
    "stream_of",
]
