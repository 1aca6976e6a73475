"""The quote ingest: each valid quote event into its quote's stream in the log, each
invalid message into the dead-letter store, in the order given; nothing dropped.

- **Streams and types.** A quote's events go to ``quote-<quote id>`` as
  ``quotes.QuoteStarted`` / ``quotes.QuoteProductsUpdated`` at the codec's current
  version, the wire data kept as exact JSON text (``domain/quotes/stored.py``).
- **Repeats** are answered ``repeated`` and written nowhere. With a client id (a
  top-level ``eventId``, 1–200 printable characters), a repeat is an event of the quote
  stored under that id (``request_id`` ``event:<id>`` in its metadata, which the store
  indexes); the same id with another event is dead-lettered ``event_id_reused``.
  Without one, the source sends no id, so the content decides (equal: the same SHA-256
  of the decoded event's envelope JSON, so spelling — bare or enveloped, ``12.5`` or
  ``12.50``, key order — does not matter). A ``QuoteStarted`` equal to the quote's start
  is a repeat. A quote's updates are read as a run: a call's run repeats the stream
  where it lines up with it — after the quote's start when the call sent the start
  again, after the event the previous call of this ingest left the quote at (an
  import's chunks), else where the run's first events are the stream's last ones —
  and each update equal to the stream's next event there, to the one it is at, or to
  the latest is a repeat; the rest is stored. So a request or a file sent again
  repeats whole, while a lone update equal to an older event but not to the latest is
  a change back and is stored.
- **Order.** A quote's stream begins with its ``QuoteStarted``; an update for a quote
  with none is dead-lettered ``unknown_quote`` (replay it once the quote has started),
  and a second, different ``QuoteStarted`` ``already_started``.
- **Concurrency.** Each quote's new events are appended with the stream version they
  were decided against; another writer in between makes the append fail and that
  quote's events are decided again (a few times, then :class:`IngestConflict`).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
import orjson

from ...domain.quotes import DEFAULT_CODEC, InvalidQuoteEvent, QuoteEvent, QuoteStarted
from ...domain.quotes.errors import BAD_VALUE, INVALID_JSON, TOO_BIG, WRONG_TYPE
from ...domain.quotes.stored import StoredQuoteEvent, quote_id_of, stream_of, to_stored
from ...eventstore import (
    EventStore,
    EventStoreError,
    InvalidEvent,
    NewEvent,
    RecordedEvent,
    StreamAppend,
    WrongExpectedVersion,
)
from ...eventstore.prepare import MAX_EVENT_BYTES, validate_stream_id
from ...runtime.codec import registry
from ...runtime.deadletters import DeadLetterStore, Refusal, ReplayAnswer, now_iso
from .messages import Message
from .outcomes import (
    ALREADY_STARTED,
    DEAD_LETTERED,
    EVENT_ID_REUSED,
    REPEATED,
    STORE_REFUSED,
    STORED,
    UNKNOWN_QUOTE,
    Outcome,
)

#: the dead-letter source of the quote ingest (stream ``deadletter-quotes``)
SOURCE = "quotes"
#: the most a client's ``eventId`` may be
MAX_EVENT_ID = 200
#: room left for the metadata of a stored event within the log's event limit
_METADATA_ROOM = 1024
#: rounds of deciding a quote's events again after another writer appended first
_ATTEMPTS = 50
#: events read at a time while lining a run up with its stream (only digests are kept)
_PAGE = 64
#: quotes whose place in its stream an ingest remembers from one call to the next
_CURSORS = 100_000
#: calls of at most this many messages are decoded on the event loop (no thread hop)
_INLINE = 16


class IngestConflict(EventStoreError):
    """A quote's stream kept changing under the ingest: other writers won every try."""


class _ClientId(msgspec.Struct):
    event_id: str | None = msgspec.field(default=None, name="eventId")


@dataclass(slots=True)
class _Candidate:
    """A message that decoded to a quote event, ready to be decided."""

    at: int  # its place in the call
    message: Message
    event: QuoteEvent
    quote_id: str
    stream: str
    digest: str
    client_id: str | None
    stored: StoredQuoteEvent

    @property
    def is_start(self) -> bool:
        return isinstance(self.event, QuoteStarted)

    @property
    def event_type(self) -> str:
        return type(self.event).__name__


@dataclass(slots=True)
class _Quote:
    """What the log holds of a quote, as far as deciding needs it."""

    version: int = 0
    #: digest and position by version, of the versions read or decided in this call
    #: (position 0: stored by this call, not known yet)
    log: dict[int, tuple[str, int]] = field(default_factory=dict)
    #: the version the call's run of this quote is at (``None``: not lined up yet)
    cursor: int | None = None
    ids: dict[str, tuple[str, int]] = field(default_factory=dict)  # client id → same

    def keep(self, events: Sequence[RecordedEvent]) -> None:
        for event in events:
            self.log[event.version] = (str(event.metadata.get("digest")), event.position)


class QuoteIngest:
    """Takes quote messages into the log (see the module's docstring)."""

    def __init__(self, store: EventStore, dead_letters: DeadLetterStore | None = None) -> None:
        self.store = store
        self.dead_letters = dead_letters or DeadLetterStore(store)
        # by stream: the version the last call left each quote's run at (bounded)
        self._cursors: dict[str, int] = {}

    async def ingest(self, messages: Sequence[Message], *, via: str = "http") -> list[Outcome]:
        """Each message's outcome, in order. Raises only what the log raises when it
        is unavailable (:class:`~oddstream.eventstore.StoreUnavailable`), or
        :class:`IngestConflict`; what was written before stays, and a retry of the
        same messages answers it ``repeated``."""
        outcomes: list[Outcome | None] = [None] * len(messages)
        refused: list[tuple[int, Refusal, dict[str, str]]] = []
        candidates: list[_Candidate] = []
        # decoding is CPU work in proportion to the call: a large call's runs in a
        # thread, so the event loop serves other requests meanwhile
        all_checked = (
            await asyncio.to_thread(self._check_all, messages)
            if len(messages) > _INLINE
            else self._check_all(messages)
        )
        for at, checked in enumerate(all_checked):
            if isinstance(checked, _Candidate):
                candidates.append(checked)
            else:
                refused.append((at, *checked))
        received_at = now_iso()
        for candidate, decision in await self._store_all(candidates, via, received_at):
            if isinstance(decision, Refusal):
                context = {"event_type": candidate.event_type, "quote_id": candidate.quote_id}
                refused.append((candidate.at, decision, context))
            else:
                outcomes[candidate.at] = decision
        if refused:
            refused.sort(key=lambda r: r[0])
            appends = [
                self.dead_letters.letter(
                    SOURCE,
                    messages[at].raw,
                    refusal,
                    received_at=received_at,
                    context={**context, "via": via},
                )
                for at, refusal, context in refused
            ]
            results = await self.store.append_many(appends)
            for (at, refusal, context), append, result in zip(
                refused, appends, results, strict=True
            ):
                if isinstance(result, EventStoreError):
                    raise result
                recorded = self.dead_letters.recorded(append, result)
                message = messages[at]
                outcomes[at] = Outcome(
                    message.index,
                    DEAD_LETTERED,
                    line=message.line,
                    event_type=context.get("event_type"),
                    quote_id=context.get("quote_id"),
                    reason=refusal.reason,
                    path=refusal.path,
                    message=refusal.message,
                    letter_id=recorded.letter_id,
                )
        return [o for o in outcomes if o is not None]

    async def replay(self, raw: bytes) -> ReplayAnswer:
        """Take one payload in again for the dead-letter store, which records the
        answer itself (nothing is dead-lettered anew here)."""
        message = Message(0, raw)
        checked = self._check(0, message)
        if not isinstance(checked, _Candidate):
            return ReplayAnswer("refused", refusal=checked[0])
        ((candidate, decision),) = await self._store_all([checked], "replay", now_iso())
        if isinstance(decision, Refusal):
            return ReplayAnswer("refused", refusal=decision)
        target = f"{candidate.stream}@{decision.position}" if decision.position else None
        return ReplayAnswer(decision.status, target=target)

    # -- checking one message

    def _check_all(
        self, messages: Sequence[Message]
    ) -> list[_Candidate | tuple[Refusal, dict[str, str]]]:
        return [self._check(at, message) for at, message in enumerate(messages)]

    def _check(self, at: int, message: Message) -> _Candidate | tuple[Refusal, dict[str, str]]:
        if message.problem is not None:
            return Refusal(message.reason or INVALID_JSON, "$", message.problem), {}
        try:
            event = DEFAULT_CODEC.decode(message.raw)
        except InvalidQuoteEvent as exc:
            context = {"event_type": exc.event_type} if exc.event_type else {}
            if exc.version is not None:
                context["version"] = str(exc.version)
            return Refusal(exc.reason, exc.path, exc.message), context
        quote_id = quote_id_of(event)
        context = {"event_type": type(event).__name__, "quote_id": quote_id}
        id_field = "id" if isinstance(event, QuoteStarted) else "quoteId"
        stream = stream_of(quote_id)
        try:
            validate_stream_id(stream)
        except InvalidEvent as exc:
            return Refusal(BAD_VALUE, id_field, f"cannot name the quote's stream: {exc}"), context
        client_id = _client_id(message.raw)
        if isinstance(client_id, Refusal):
            return client_id, context
        stored = to_stored(event)
        size = len(orjson.dumps(msgspec.to_builtins(stored)))
        if size > MAX_EVENT_BYTES - _METADATA_ROOM:
            return Refusal(
                TOO_BIG, "$", f"stored, the event takes {size} bytes: over the log's limit"
            ), context
        digest = hashlib.sha256(DEFAULT_CODEC.encode(event)).hexdigest()
        return _Candidate(at, message, event, quote_id, stream, digest, client_id, stored)

    # -- deciding and appending

    async def _store_all(
        self, candidates: list[_Candidate], via: str, received_at: str
    ) -> list[tuple[_Candidate, Outcome | Refusal]]:
        decided: list[tuple[_Candidate, Outcome | Refusal]] = []
        pending = candidates
        for attempt in range(_ATTEMPTS):
            if not pending:
                break
            if attempt:  # another writer won: let the contenders spread out
                await asyncio.sleep(random.uniform(0, 0.002 * attempt))
            quotes = await self._load(pending)
            # the versions decided against: what the appends expect
            expected = {stream: quote.version for stream, quote in quotes.items()}
            runs: dict[str, list[str]] = {}  # each quote's updates decided by content
            for c in pending:
                if not c.is_start and c.client_id is None:
                    runs.setdefault(c.stream, []).append(c.digest)
            seen: dict[str, int] = {}
            decisions: list[tuple[_Candidate, str | Outcome | Refusal]] = []
            for c in pending:
                at = seen.get(c.stream, 0)
                if not c.is_start and c.client_id is None:
                    seen[c.stream] = at + 1
                decisions.append((c, _decide(c, quotes[c.stream], runs.get(c.stream, []), at)))
            by_stream: dict[str, list[_Candidate]] = {}
            for candidate, decision in decisions:
                if decision == STORED:
                    by_stream.setdefault(candidate.stream, []).append(candidate)
            appends = [
                StreamAppend(
                    stream,
                    [self._new_event(c, via, received_at) for c in members],
                    expected[stream],
                )
                for stream, members in by_stream.items()
            ]
            results = dict(
                zip(
                    by_stream, await self.store.append_many(appends) if appends else [], strict=True
                )
            )
            retry: set[str] = set()
            for stream, result in results.items():
                if isinstance(result, WrongExpectedVersion):
                    retry.add(stream)
                elif isinstance(result, InvalidEvent):
                    continue  # decided below as refused
                elif isinstance(result, EventStoreError):
                    raise result
            for candidate, decision in decisions:
                if candidate.stream in retry:
                    continue
                if not isinstance(decision, str):
                    decided.append((candidate, decision))
                    continue
                result = results[candidate.stream]
                if isinstance(result, InvalidEvent):
                    decided.append((candidate, Refusal(STORE_REFUSED, "$", str(result))))
                    continue
                assert not isinstance(result, EventStoreError)
                offset = by_stream[candidate.stream].index(candidate)
                decided.append(
                    (
                        candidate,
                        _outcome(candidate, STORED, result.first_position + offset),
                    )
                )
            for stream, quote in quotes.items():
                if stream not in retry and quote.cursor is not None:
                    self._remember(stream, quote.cursor)
            pending = [c for c, _ in decisions if c.stream in retry]
        if pending:
            raise IngestConflict(
                "quote streams kept changing under the ingest: "
                f"{sorted({c.stream for c in pending})}"
            )
        decided.sort(key=lambda d: d[0].at)
        return decided

    def _new_event(self, candidate: _Candidate, via: str, received_at: str) -> NewEvent:
        metadata = {"digest": candidate.digest, "via": via, "received_at": received_at}
        if candidate.client_id is not None:
            metadata["request_id"] = f"event:{candidate.client_id}"
        return registry.to_new_event(candidate.stored, metadata=metadata)

    def _remember(self, stream: str, cursor: int) -> None:
        self._cursors.pop(stream, None)
        self._cursors[stream] = cursor
        if len(self._cursors) > _CURSORS:  # the quote least recently seen goes
            del self._cursors[next(iter(self._cursors))]

    async def _load(self, candidates: list[_Candidate]) -> dict[str, _Quote]:
        """What the log holds of each quote the candidates name: its version, and the
        digests of the versions its run may line up with (the last ``k``, the first
        ``k + 1`` when the start is sent again, ``k + 1`` from the remembered cursor;
        ``k``: the quote's candidates), read a page at a time."""
        by_stream: dict[str, list[_Candidate]] = {}
        for candidate in candidates:
            by_stream.setdefault(candidate.stream, []).append(candidate)
        quotes: dict[str, _Quote] = {}
        for stream, members in by_stream.items():
            quote = quotes[stream] = _Quote()
            k = len(members)
            last = await self.store.read_stream(stream, backwards=True, limit=min(k + 1, _PAGE))
            quote.keep(last)
            if last:
                n = quote.version = last[0].version
                cursor = self._cursors.get(stream)
                if cursor is not None and 1 <= cursor <= n:
                    quote.cursor = cursor
                wanted = [(max(1, n - k), n)]
                if any(m.is_start for m in members):
                    wanted.append((1, min(n, k + 1)))
                if quote.cursor is not None:
                    wanted.append((quote.cursor, min(n, quote.cursor + k)))
                for lo, hi in wanted:
                    await self._read_versions(stream, quote, lo, hi)
            ids = sorted({f"event:{m.client_id}" for m in members if m.client_id})
            for i in range(0, len(ids), 1000):
                for found in await self.store.read_requests(stream, ids[i : i + 1000]):
                    key = str(found.metadata["request_id"]).removeprefix("event:")
                    quote.ids[key] = (str(found.metadata.get("digest")), found.position)
        return quotes

    async def _read_versions(self, stream: str, quote: _Quote, lo: int, hi: int) -> None:
        """Keep the digests of versions ``lo``..``hi`` not read yet."""
        version = lo
        while version <= hi:
            if version in quote.log:
                version += 1
                continue
            page = await self.store.read_stream(
                stream, from_version=version, limit=min(_PAGE, hi - version + 1)
            )
            if not page:
                return
            quote.keep(page)
            version = page[-1].version + 1


def _decide(
    candidate: _Candidate, quote: _Quote, run: list[str], at: int
) -> str | Outcome | Refusal:
    """``STORED`` (to be appended), a ``repeated`` outcome or a refusal; ``quote`` is
    updated as if the candidate were stored, for the candidates after it. ``run`` is
    the digests of the quote's updates in this call decided by content, and ``at`` the
    candidate's place in it."""
    d = candidate.digest
    if candidate.client_id is not None and candidate.client_id in quote.ids:
        seen, position = quote.ids[candidate.client_id]
        if seen == d:
            return _outcome(candidate, REPEATED, position or None)
        return Refusal(
            EVENT_ID_REUSED,
            "eventId",
            f"event id {candidate.client_id!r} is stored for this quote with another event",
        )
    if candidate.is_start:
        start = quote.log.get(1) if quote.version else None
        if quote.version == 0:
            pass
        elif start is not None and start[0] == d and candidate.client_id is None:
            quote.cursor = 1
            return _outcome(candidate, REPEATED, start[1] or None)
        else:
            return Refusal(
                ALREADY_STARTED,
                "id",
                f"quote {candidate.quote_id!r} started already with another QuoteStarted",
            )
    else:
        if quote.version == 0:
            return Refusal(
                UNKNOWN_QUOTE,
                "quoteId",
                f"no QuoteStarted for quote {candidate.quote_id!r}: "
                "replay this once it has started",
            )
        if candidate.client_id is None:
            if quote.cursor is None:
                quote.cursor = _line_up(quote, run, at)
            for version in (quote.cursor + 1, quote.cursor, quote.version):
                found = quote.log.get(version)
                if found is not None and found[0] == d:
                    quote.cursor = version
                    return _outcome(candidate, REPEATED, found[1] or None)
    # stored: later candidates of this call see it (position 0: not known yet)
    quote.version += 1
    quote.log[quote.version] = (d, 0)
    quote.cursor = quote.version
    if candidate.client_id is not None:
        quote.ids[candidate.client_id] = (d, 0)
    return STORED


def _line_up(quote: _Quote, run: list[str], at: int) -> int:
    """Where a run of updates (``run[at:]``) meets a stream that no start or earlier
    call placed it in: just before the longest start of the run that is the end of the
    stream (sent again), else at the stream's end."""
    n = quote.version
    best = 0
    for j in range(1, min(len(run) - at, n - 1) + 1):
        first = quote.log.get(n - j + 1)
        if first is None or first[0] != run[at]:
            continue
        if all(
            (found := quote.log.get(n - j + 1 + t)) is not None and found[0] == run[at + t]
            for t in range(j)
        ):
            best = j
    return n - best


def _outcome(candidate: _Candidate, status: str, position: int | None) -> Outcome:
    return Outcome(
        candidate.message.index,
        status,
        line=candidate.message.line,
        event_type=candidate.event_type,
        quote_id=candidate.quote_id,
        stream=candidate.stream,
        position=position,
    )


def _client_id(raw: bytes) -> str | Refusal | None:
    """The message's top-level ``eventId``, if it has one."""
    if b'"eventId"' not in raw:
        return None
    try:
        found = msgspec.json.decode(raw, type=_ClientId).event_id
    except msgspec.ValidationError:
        return Refusal(WRONG_TYPE, "eventId", "expected a string")
    except msgspec.DecodeError:  # the codec read it: a number msgspec cannot hold
        return None
    if found is None:
        return None
    if not 1 <= len(found) <= MAX_EVENT_ID or not found.isprintable():
        return Refusal(BAD_VALUE, "eventId", f"must be 1 to {MAX_EVENT_ID} printable characters")
    return found
