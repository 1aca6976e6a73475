"""The event store's public API, shared by every adapter.

:class:`EventStore` validates every call, runs the subscriptions and the read-your-writes
wait, and leaves to an adapter only what touches its database: committing a group of
prepared appends, reading pages, and checkpoints.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import operator
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Self, TypeVar

from .envelope import (
    AppendResult,
    Expected,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    StreamAppend,
)
from .errors import EventStoreError, InvalidEvent, StoreClosed, StoreUnavailable
from .notify import Watermark
from .prepare import (
    PreparedPart,
    prepare_append,
    prepare_part,
    validate_limit,
    validate_position,
    validate_stream_id,
    validate_type,
)

log = logging.getLogger(__name__)

DEFAULT_PAGE = 1000
#: The metadata key the store indexes per stream: a command's request id (see
#: :meth:`EventStore.read_requests`).
REQUEST_ID = "request_id"
#: How many request ids one :meth:`EventStore.read_requests` call may ask for.
MAX_REQUEST_IDS = 1000
#: How long a caught-up subscriber waits for a wake-up before it asks the database
#: itself. Wake-ups cover this process (and LISTEN/NOTIFY on PostgreSQL); the re-check
#: covers writers in other processes on SQLite and a lost LISTEN connection.
DEFAULT_IDLE_RECHECK = 2.0
#: A caught-up subscriber reads at most once per this many seconds (see
#: :meth:`EventStore.subscribe_pages`).
DEFAULT_FOLLOW_PACE = 0.01
#: A page of the log holds events of at most this many bytes in all (``data`` and
#: ``metadata``; see :attr:`RecordedEvent.size`), besides its count limit, unless it is a
#: single event (see docs/eventstore.md, *Pages*, for how it was chosen).
DEFAULT_PAGE_MAX_BYTES = 8 << 20


_Row = TypeVar("_Row", bound=Sequence[Any])
_DATA = operator.itemgetter(6)
_METADATA = operator.itemgetter(7)


def check_follow_pace(pace: float) -> float:
    """``pace`` if it is a usable follow pace (0 to 1 s), else ``ValueError``."""
    if not 0.0 <= pace <= 1.0:
        raise ValueError(f"follow_pace must be between 0 and 1 second, not {pace!r}")
    return pace


def check_page_max_bytes(max_bytes: int) -> int:
    """``max_bytes`` if it is a usable page byte budget (a positive int), else
    ``ValueError``."""
    if type(max_bytes) is not int or max_bytes < 1:
        raise ValueError(f"page_max_bytes must be a positive integer, not {max_bytes!r}")
    return max_bytes


def take_rows(rows: Iterable[_Row], limit: int, max_bytes: int) -> tuple[list[_Row], int, bool]:
    """Stored rows (``data`` and ``metadata`` at 6 and 7), at most ``limit`` of them
    (the caller's query or slice says so), drawn one at a time until the next would take
    their sizes past ``max_bytes`` (the first is taken whatever its size): ``(rows,
    bytes, full)``, ``full`` when either limit stopped it. The row that did not fit was
    drawn, and is dropped. A list is first sized whole (no Python loop a row): the hot
    path of every read of small events."""
    if isinstance(rows, list):
        nbytes = sum(map(len, map(_DATA, rows))) + sum(map(len, map(_METADATA, rows)))
        if nbytes <= max_bytes or len(rows) == 1:
            return rows, nbytes, len(rows) == limit
    taken: list[_Row] = []
    append = taken.append
    nbytes = 0
    for row in rows:
        nbytes += len(row[6]) + len(row[7])
        if nbytes > max_bytes and taken:
            return taken, nbytes - len(row[6]) - len(row[7]), True
        append(row)
    return taken, nbytes, len(taken) == limit


class FollowerWake:
    """A targeted wake-up for one subscription of :meth:`EventStore.subscribe_pages`
    (its ``wake``): :meth:`hint` says the log holds a position, and if the follower
    stands below it, that follower's pace ends now (no other follower's: see
    :meth:`EventStore.hurry_followers` for all of them).

    It is only a wake-up: the follower reads the log as ever, so a hint never brings a
    change of its own, and a hint lost (or never given) costs only the pace. Wake-ups
    coalesce: at most one is pending, and a read takes every hint given before it
    began and those given while it ran for positions it reached, so a flood of hints
    costs no more reads than one per page the follower takes (without them it reads
    once per pace). A hint above the log's head (a wrong
    position) is kept through re-checks that find nothing and spent by the next read
    that moves the follower (one read unpaced), then forgotten. A wake serves one
    subscription at a time (a follower that subscribes again, after a rebuild, passes
    the same one: it starts from the new subscription's ``after``).
    """

    __slots__ = ("_at", "_held", "_hinted", "_pending", "_unpace", "hints", "wakes")

    def __init__(self) -> None:
        #: where the follower stands (the store moves it as it reads)
        self._at = 0
        #: a hint came beyond ``_at`` since the follower's last read began
        self._pending = False
        #: the highest position hinted since the follower's last read began
        self._hinted = 0
        #: ``_pending`` and ``_hinted`` as the last read began (a re-check that finds
        #: nothing gives them back)
        self._held = (False, 0)
        #: poked to end the follower's paced wait (a hint, or the store's own reasons)
        self._unpace = Watermark()
        #: hints given, and those that woke the follower (a pending wake-up: the rest
        #: were below its position or coalesced)
        self.hints = 0
        self.wakes = 0

    @property
    def position(self) -> int:
        """Where the follower stands: a hint at or below it wakes nothing."""
        return self._at

    @property
    def pending(self) -> bool:
        """A wake-up is pending: the follower's next read will not wait for its pace."""
        return self._pending

    def hint(self, position: int) -> bool:
        """The log holds ``position`` (someone was told so: the velocity bus): if the
        follower stands below it and no wake-up is pending, end its pace now. Returns
        whether this hint woke it."""
        self.hints += 1
        self._hinted = max(self._hinted, position)
        if position <= self._at or self._pending:
            return False
        self._pending = True
        self.wakes += 1
        self._unpace.poke()
        return True

    def _reading(self) -> None:
        """The follower's read begins: it sees every commit hinted so far."""
        self._held = (self._pending, self._hinted)
        self._pending = False
        self._hinted = 0

    def _read(self, position: int) -> None:
        """The follower stands at ``position`` now. A wake-up hinted during the read
        for a position it reached is spent (kept, it would end the pace of a later read
        for nothing: another process's next commit, of any tier); one beyond it is
        kept for the next read. A read that moved nothing (a re-check: an idle
        timeout, or a wake-up for a commit an earlier read had already found) spends
        none: the hinted commit has not been read yet."""
        if position <= self._at:
            pending, hinted = self._held
            self._pending = self._pending or pending
            self._hinted = max(self._hinted, hinted)
        self._at = max(self._at, position)
        if self._pending and self._hinted <= self._at:
            self._pending = False


class PageRead(NamedTuple):
    """What an adapter's page read found (see :meth:`EventStore._read_page`)."""

    #: the matching events above the read's ``after``, in order
    events: list[RecordedEvent]
    #: how far the read looked: every matching event in ``(after, scanned]`` is in
    #: ``events``; a page that stopped at a limit ends at its last event
    scanned: int
    #: the committed head, read first
    head: int
    #: the events' :attr:`~RecordedEvent.size` in all
    nbytes: int
    #: it stopped at ``limit`` events or at the byte budget: more may follow at once
    full: bool


@dataclass(frozen=True, slots=True)
class SqlStatement:
    """One statement of a projection's write, in the adapter's own SQL dialect.

    With ``many=True``, ``params`` is a sequence of parameter rows (``executemany``).
    """

    sql: str
    params: Sequence[Any] = ()
    many: bool = False


@dataclass(frozen=True, slots=True)
class ReadFilter:
    """Which events ``read_all`` and ``subscribe_all`` return."""

    stream_prefix: str | None = None
    types: frozenset[str] | None = None

    @classmethod
    def build(
        cls,
        stream_prefix: str | None = None,
        category: str | None = None,
        types: Iterable[str] | None = None,
    ) -> ReadFilter:
        if category is not None and stream_prefix is not None:
            raise InvalidEvent("give either a category or a stream prefix, not both")
        if category is not None:
            validate_stream_id(category)
            if "-" in category:
                raise InvalidEvent(f"category {category!r} must not contain '-'")
            stream_prefix = f"{category}-"
        elif stream_prefix is not None:
            validate_stream_id(stream_prefix)
        type_set = None
        if types is not None:
            if isinstance(types, str):
                types = [types]
            type_set = frozenset(validate_type(t) for t in types)
            if not type_set:
                raise InvalidEvent("an empty type filter would match nothing")
        return cls(stream_prefix, type_set)


@dataclass(frozen=True, slots=True)
class ReadPage:
    """A page of the global log and how far it looked.

    ``events`` are the matching events above the read's ``after``, in order; every
    matching event in ``(after, position]`` is among them, so a follower that applied
    them is at ``position`` even when events between did not match its filter. A full
    page (its count limit or its byte budget reached) ends at its last event; a short
    one at the head its read saw (never an event the page did not return). ``nbytes``:
    the events' :attr:`~RecordedEvent.size` in all.
    """

    events: list[RecordedEvent]
    position: int
    nbytes: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A consumer's state as of ``position`` (its own encoding), kept by the store in
    the ``parts`` it was saved in, in order (a snapshot saved as one ``bytes`` value, or
    as no parts, reads back as one part)."""

    position: int
    parts: tuple[bytes, ...]

    @property
    def data(self) -> bytes:
        """The parts joined: one copy of the whole state, for small snapshots (a large
        one is better read part by part)."""
        return self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)

    @property
    def size(self) -> int:
        """Bytes in all parts."""
        return sum(map(len, self.parts))


def _checked_parts(parts: Iterable[bytes]) -> Iterator[bytes]:
    """The parts of a snapshot, each checked to be ``bytes`` as it is drawn."""
    for part in parts:
        if not isinstance(part, bytes):
            raise InvalidEvent("a snapshot's parts must be bytes")
        yield part


class EventStore(abc.ABC):
    """An append-only log of streams with one global order.

    Use as an async context manager, or call :meth:`close` when done. See
    ``docs/eventstore.md`` for the guarantees.
    """

    backend: str = "abstract"

    def __init__(
        self,
        *,
        idle_recheck: float = DEFAULT_IDLE_RECHECK,
        follow_pace: float = DEFAULT_FOLLOW_PACE,
        page_max_bytes: int = DEFAULT_PAGE_MAX_BYTES,
    ) -> None:
        self._notifier = Watermark()
        self._closed = False
        self._closing: asyncio.Future[None] | None = None
        self._idle_recheck = idle_recheck
        self._follow_pace = check_follow_pace(follow_pace)
        self._page_max_bytes = check_page_max_bytes(page_max_bytes)
        #: the last position this process's own appends committed (see subscribe_pages)
        self._local_head = 0
        #: the wake-ups of the subscriptions in a paced wait now: each is poked to end
        #: every paced wait at once (own commits, hurry_followers)
        self._pacing: set[FollowerWake] = set()

    # ----------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Finish pending appends, release connections, end live subscriptions (at
        once: those in a paced wait too, not a pace later)."""
        if self._closing is None:
            self._closed = True
            self._notifier.poke()
            self.hurry_followers()  # paced waits too: they end now, not a pace later
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def page_max_bytes(self) -> int:
        """The byte budget of a page of the log (``ODDSTREAM_PAGE_MAX_BYTES``): pages
        end when their events' sizes reach it, or at their count limit, whichever comes
        first; a single event larger than it comes alone."""
        return self._page_max_bytes

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the event store is closed")

    # ----------------------------------------------------------------- appends
    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected: Expected = ExpectedVersion.ANY,
    ) -> AppendResult:
        """Append ``events`` to one stream atomically.

        Raises :class:`WrongExpectedVersion` if the stream is not at ``expected``,
        :class:`InvalidEvent` for bad input, :class:`DuplicateEventId` when a supplied id
        is stored elsewhere. Appending the same event ids again returns the original
        result (``idempotent_retry=True``) and writes nothing.
        """
        self._check_open()
        part = prepare_part(StreamAppend(stream_id, events, expected))
        (result,) = await self._submit([part])
        return result

    async def append_multi(self, parts: Sequence[StreamAppend]) -> list[AppendResult]:
        """Append to several streams in one transaction, each with its own expectation.

        All parts are written or none; results come back in the order of ``parts``.
        """
        self._check_open()
        return await self._submit(prepare_append(parts))

    async def append_many(
        self, appends: Sequence[StreamAppend]
    ) -> list[AppendResult | EventStoreError]:
        """Several independent appends in one call: each is :meth:`append` of its own.

        Each append is atomic and checked on its own, as if the appends were made one
        after the other in the order given (so two of them may name the same stream);
        they share the group commit. An append that fails does not stop the others: its
        error (:class:`WrongExpectedVersion`, :class:`DuplicateEventId`,
        :class:`InvalidEvent`, :class:`StoreUnavailable`) is returned in its place,
        never raised. Outcomes come back in the order of ``appends``.

        This is how a caller with many streams to write at once (the aggregate writer,
        one batch per aggregate) pays for one call and one wait instead of one per
        stream. Unlike :meth:`append_multi`, nothing ties the appends together.
        """
        self._check_open()
        outcomes: list[AppendResult | EventStoreError | None] = []
        requests: list[list[PreparedPart]] = []
        for append in appends:
            try:
                requests.append([prepare_part(append)])
            except InvalidEvent as exc:  # this append only: the others go ahead
                outcomes.append(exc)
            else:
                outcomes.append(None)
        submitted = iter(await self._submit_many(requests) if requests else ())
        done: list[AppendResult | EventStoreError] = []
        for outcome in outcomes:
            if outcome is None:
                result = next(submitted)
                if isinstance(result, list):
                    outcome = result[0]
                elif isinstance(result, EventStoreError):
                    outcome = result
                else:  # not an error of the store's kind: say what it was
                    outcome = StoreUnavailable(f"the append failed: {result!r}")
            done.append(outcome)
        return done

    # ----------------------------------------------------------------- reads
    async def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        """Events of one stream in version order (or reversed with ``backwards``).

        Forwards, ``from_version`` is the first version returned (default 1); backwards,
        the highest one (default: the stream's last event). An unknown stream reads empty.
        """
        self._check_open()
        validate_stream_id(stream_id)
        if from_version is not None:
            validate_position(from_version, "from_version")
        if limit is not None:
            validate_limit(limit)
        return await self._read_stream(stream_id, from_version, backwards, limit)

    async def read_all(
        self,
        after: int = 0,
        limit: int = DEFAULT_PAGE,
        *,
        stream_prefix: str | None = None,
        category: str | None = None,
        types: Iterable[str] | None = None,
    ) -> list[RecordedEvent]:
        """Up to ``limit`` events of the global log with positions above ``after``
        (fewer when they reach the store's :attr:`page_max_bytes`).

        ``category="race"`` keeps streams named ``race-…``; ``stream_prefix`` any prefix;
        ``types`` a set of event type names. A follower that filters wants
        :meth:`read_page`, which also says how far the read looked.
        """
        page = await self.read_page(
            after, limit, stream_prefix=stream_prefix, category=category, types=types
        )
        return page.events

    async def read_page(
        self,
        after: int = 0,
        limit: int = DEFAULT_PAGE,
        *,
        stream_prefix: str | None = None,
        category: str | None = None,
        types: Iterable[str] | None = None,
        max_bytes: int | None = None,
    ) -> ReadPage:
        """:meth:`read_all`'s events with the position the read covered (see
        :class:`ReadPage`): where a filtered follower stands once it applied them.

        The page ends at ``limit`` events or when their sizes reach ``max_bytes``
        (default: the store's :attr:`page_max_bytes`), whichever comes first; a single
        event larger than that comes alone. Take a follower's next ``after`` from
        ``position``, never from :meth:`head_position`: the head may already include a
        commit this page was served without.
        """
        self._check_open()
        validate_position(after, "after")
        validate_limit(limit)
        budget = self._budget(max_bytes)
        flt = ReadFilter.build(stream_prefix, category, types)
        events: list[RecordedEvent] = []
        nbytes = 0
        start = after
        while True:
            # a filtered read may come back short of the head with room left: read on
            # with what is left of both limits
            page = await self._read_page(after, limit - len(events), flt, max(1, budget - nbytes))
            events += page.events
            nbytes += page.nbytes
            if len(events) > 1 and nbytes > budget:
                # the read's first event, over what was left: it starts the next page
                nbytes -= events.pop().size
                return ReadPage(events, events[-1].position, nbytes)
            if page.full or (events and nbytes >= budget):
                return ReadPage(events, page.scanned, nbytes)
            if page.scanned >= page.head:
                return ReadPage(events, max(start, page.scanned), nbytes)
            after = page.scanned

    def _budget(self, max_bytes: int | None) -> int:
        return self._page_max_bytes if max_bytes is None else check_page_max_bytes(max_bytes)

    async def read_requests(
        self, stream_id: str, request_ids: Sequence[str]
    ) -> list[RecordedEvent]:
        """The events of ``stream_id`` whose metadata ``request_id`` is one of
        ``request_ids``, in version order (empty when none is stored).

        Both adapters index this key per stream, so a writer can recognise a retried
        command however long ago it was first executed, at the cost of one index entry
        per event that carries a request id.
        """
        self._check_open()
        validate_stream_id(stream_id)
        ids = list(dict.fromkeys(request_ids))
        if len(ids) > MAX_REQUEST_IDS:
            raise InvalidEvent(f"at most {MAX_REQUEST_IDS} request ids per call, not {len(ids)}")
        if any(type(r) is not str or not r for r in ids):
            raise InvalidEvent("request ids must be non-empty strings")
        if not ids:
            return []
        return await self._read_requests(stream_id, ids)

    async def read_requests_many(
        self, requests: Mapping[str, Sequence[str]]
    ) -> dict[str, list[RecordedEvent]]:
        """:meth:`read_requests` for several streams in one call: for each stream named,
        its events whose request id is among those given for it (streams with none
        stored are left out). One query on PostgreSQL, one index lookup a stream on
        SQLite (which answers those on the event loop)."""
        self._check_open()
        asked: dict[str, list[str]] = {}
        for stream_id, request_ids in requests.items():
            validate_stream_id(stream_id)
            ids = list(dict.fromkeys(request_ids))
            if len(ids) > MAX_REQUEST_IDS:
                raise InvalidEvent(
                    f"at most {MAX_REQUEST_IDS} request ids per stream, not {len(ids)}"
                )
            if any(type(r) is not str or not r for r in ids):
                raise InvalidEvent("request ids must be non-empty strings")
            if ids:
                asked[stream_id] = ids
        if not asked:
            return {}
        return await self._read_requests_many(asked)

    async def stream_version(self, stream_id: str) -> int:
        """The stream's version: its number of events, 0 if it does not exist."""
        self._check_open()
        validate_stream_id(stream_id)
        return await self._stream_version(stream_id)

    async def head_position(self) -> int:
        """The highest committed global position (0 for an empty store)."""
        self._check_open()
        head = await self._head()
        self._notifier.advance(head)
        return head

    async def wait_for_position(self, position: int, timeout: float) -> bool:
        """Wait until ``position`` is committed; ``False`` if ``timeout`` passed first."""
        validate_position(position)
        deadline = time.monotonic() + timeout
        while True:
            self._check_open()
            if self._notifier.position >= position or await self.head_position() >= position:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await self._notifier.wait_beyond(position - 1, min(left, self._idle_recheck))

    # ----------------------------------------------------------------- subscriptions
    async def scan_stream(
        self, stream_id: str, from_version: int = 1, *, batch_size: int = 5000
    ) -> AsyncIterator[RecordedEvent]:
        """Every event of one stream from ``from_version`` to its end, read in pages of
        ``batch_size`` (a load of an aggregate, a race read back): the history, not live."""
        self._check_open()
        validate_stream_id(stream_id)
        validate_position(from_version, "from_version")
        validate_limit(batch_size)
        version = from_version
        while True:
            page = await self._read_stream(stream_id, version, False, batch_size)
            for event in page:
                yield event
            if len(page) < batch_size:
                return
            version = page[-1].version + 1

    async def scan_all(
        self,
        after: int = 0,
        *,
        stream_prefix: str | None = None,
        category: str | None = None,
        types: Iterable[str] | None = None,
        batch_size: int = 5000,
        max_bytes: int | None = None,
    ) -> AsyncIterator[RecordedEvent]:
        """Every event above ``after`` up to the head as of the call, then stop: the
        replay path (a rebuild reads to where the log stood when it began). Read in
        pages of ``batch_size`` events or ``max_bytes`` (default: the store's
        :attr:`page_max_bytes`), whichever is reached first."""
        self._check_open()
        validate_position(after, "after")
        validate_limit(batch_size)
        budget = self._budget(max_bytes)
        flt = ReadFilter.build(stream_prefix, category, types)
        end = await self.head_position()
        position = after
        while position < end:
            events, scanned, *_ = await self._read_page(position, batch_size, flt, budget)
            for event in events:
                if event.position > end:
                    return
                yield event
            position = scanned  # a full page's is its last event's

    async def subscribe_all(
        self,
        after: int = 0,
        *,
        stream_prefix: str | None = None,
        category: str | None = None,
        types: Iterable[str] | None = None,
        batch_size: int = DEFAULT_PAGE,
    ) -> AsyncIterator[RecordedEvent]:
        """Every event above ``after``: first the history, then live, with no gap.

        Positions strictly increase; no event is skipped or repeated. The iterator ends
        when the store is closed. A follower that filters and keeps a position wants
        :meth:`subscribe_pages`: this says nothing about the events it passed over.
        """
        pages = self.subscribe_pages(
            after,
            stream_prefix=stream_prefix,
            category=category,
            types=types,
            batch_size=batch_size,
        )
        async with contextlib.aclosing(pages):
            async for page in pages:
                for event in page.events:
                    yield event

    async def subscribe_pages(
        self,
        after: int = 0,
        *,
        stream_prefix: str | None = None,
        category: str | None = None,
        types: Iterable[str] | None = None,
        batch_size: int = DEFAULT_PAGE,
        pace: float | None = None,
        max_bytes: int | None = None,
        wake: FollowerWake | None = None,
    ) -> AsyncGenerator[ReadPage, None]:
        """:meth:`subscribe_all` in pages, each with the position it covered.

        A page comes whenever the position moves, with the matching events up to it
        (possibly none: the log moved on with events this filter leaves out), so a
        follower is always at the last page's ``position`` once it applied its events.
        Pages hold at most ``batch_size`` events and at most ``max_bytes`` (default: the
        store's :attr:`page_max_bytes`) of their :attr:`~RecordedEvent.size`, unless a
        single event is larger (it comes alone); the rows are read one by one up to
        those limits, so no more is ever held. The iterator ends when the store is
        closed.

        ``pace``: once caught up and woken by other processes' commits, read at most
        once per this many seconds (default: the store's ``follow_pace``, 10 ms unless
        set otherwise; 0 reads on every wake-up). Under load every commit wakes every
        follower of every process; without a pace each one reads a page per commit, so
        the reads grow with processes × commits. With it, the commits of a pace's time
        come in one page. A follower woken after a quiet spell still reads at once, and
        so does one woken by this process's own appends: a client that reads right
        after its write to this process finds it, as without a pace (across processes
        that takes ``min_position``, pace or not). :meth:`hurry_followers` (for someone
        waiting for a position) cuts every paced wait short; ``wake`` (a
        :class:`FollowerWake` the caller keeps) cuts this subscription's only, when the
        caller learns that the log holds a position beyond it (the velocity bus's high
        tier tells an API process's odds view so: see docs/consumers.md).
        """
        self._check_open()
        validate_position(after, "after")
        validate_limit(batch_size)
        budget = self._budget(max_bytes)
        flt = ReadFilter.build(stream_prefix, category, types)
        position = after
        loop = asyncio.get_running_loop()
        read_at = float("-inf")  # when the last caught-up read that found more began
        if pace is None:
            pace = self._follow_pace
        if wake is None:
            wake = FollowerWake()
        wake._at = after
        while not self._closed:
            if pace > 0.0 and self._notifier.position > self._local_head:  # others' commits
                await self._pace(read_at + pace - loop.time(), wake)
            began = loop.time()
            wake._reading()
            page = await self._read_retrying(position, batch_size, flt, budget)
            if page is None:
                return
            events, scanned, head, nbytes, full = page
            del page
            wake._read(scanned)
            if full:  # by count or by bytes: it ends at its last event
                position = scanned
                read_at = float("-inf")  # catching up: the next page at once
                yield ReadPage(events, position, nbytes)
                del events  # not held while the next page is read
                continue
            # A short page saw everything committed up to ``scanned`` (from the same
            # snapshot or in-memory tail as its events): positions commit in order, so
            # nothing at or below it can still appear.
            if events or scanned > position:
                position = max(position, scanned)
                read_at = began  # a re-check that found nothing does not count
                yield ReadPage(events, position, nbytes)
            del events
            self._notifier.advance(head)
            if position < head or self._closed:
                continue
            await self._notifier.wait_beyond(position, self._idle_recheck)

    def _committed_here(self, position: int) -> None:
        """Adapters call this when this process's own appends committed up to
        ``position``: its followers are woken, and read at once (not paced)."""
        self._local_head = max(self._local_head, position)
        self._notifier.advance(position)
        self.hurry_followers()

    def hurry_followers(self) -> None:
        """End every paced wait of this store's subscriptions now (someone is waiting
        for a position). One subscription's alone: its :class:`FollowerWake`."""
        for wake in self._pacing:
            wake._unpace.poke()

    async def _pace(self, delay: float, wake: FollowerWake) -> None:
        """Wait ``delay`` seconds (none if it is not positive, or if ``wake`` has a
        wake-up pending), or less if this process commits, :meth:`hurry_followers` is
        called or ``wake`` is hinted meanwhile."""
        if delay <= 0.0 or wake.pending:
            return
        self._pacing.add(wake)
        try:
            await wake._unpace.wait_beyond(1 << 62, delay)
        finally:
            self._pacing.discard(wake)

    async def subscribe_stream(
        self, stream_id: str, after_version: int = 0, *, batch_size: int = DEFAULT_PAGE
    ) -> AsyncIterator[RecordedEvent]:
        """Events of one stream with versions above ``after_version``, history then live."""
        self._check_open()
        validate_stream_id(stream_id)
        validate_position(after_version, "after_version")
        validate_limit(batch_size)
        version = after_version
        while not self._closed:
            try:
                head = await self.head_position()
                events = await self._read_stream(stream_id, version + 1, False, batch_size)
            except StoreUnavailable as exc:
                if not await self._back_off(exc):
                    return
                continue
            for event in events:
                yield event
            if events:
                version = events[-1].version
                if len(events) == batch_size:
                    continue
            if self._closed:
                return
            await self._notifier.wait_beyond(
                max(head, events[-1].position if events else 0), self._idle_recheck
            )

    async def _read_retrying(
        self, after: int, limit: int, flt: ReadFilter, max_bytes: int
    ) -> PageRead | None:
        """A page for a subscription; a database outage is waited out, not raised (a
        projection should stall and resume, not die). ``None`` once the store closes."""
        while not self._closed:
            try:
                return await self._read_page(after, limit, flt, max_bytes)
            except StoreUnavailable as exc:
                if not await self._back_off(exc):
                    return None
        return None

    async def _back_off(self, exc: Exception) -> bool:
        if self._closed:
            return False
        log.warning("subscription read failed, retrying in %.1fs: %s", self._idle_recheck, exc)
        await self._notifier.wait_beyond(1 << 62, self._idle_recheck)
        return not self._closed

    # ----------------------------------------------------------------- checkpoints
    async def get_checkpoint(self, name: str) -> int:
        """The last position the subscriber ``name`` recorded (0 if none)."""
        self._check_open()
        validate_stream_id(name)
        return await self._get_checkpoint(name)

    async def save_checkpoint(
        self, name: str, position: int, *, expected: int | None = None
    ) -> None:
        """Record ``position`` for subscriber ``name``.

        With ``expected``, raise :class:`CheckpointConflict` unless the checkpoint is
        currently there (0 meaning "none yet").
        """
        await self.commit_projection(name, position, (), expected=expected)

    async def commit_projection(
        self,
        name: str,
        position: int,
        statements: Sequence[SqlStatement],
        *,
        expected: int | None = None,
    ) -> None:
        """Run a projection's writes and move its checkpoint, in one transaction.

        For read models kept in the store's own database: either all ``statements`` take
        effect and the checkpoint moves to ``position``, or nothing does.
        """
        self._check_open()
        validate_stream_id(name)
        validate_position(position)
        if expected is not None:
            validate_position(expected, "expected")
        for st in statements:
            if not isinstance(st, SqlStatement):
                raise InvalidEvent("projection statements must be SqlStatement values")
        await self._commit_projection(name, position, list(statements), expected)

    async def save_snapshot(
        self,
        name: str,
        position: int,
        data: bytes | Iterable[bytes],
        *,
        expected: int | None = None,
    ) -> None:
        """Keep ``data``, the state of consumer ``name`` as of ``position``, and move its
        checkpoint there, in one transaction (one snapshot per name: the last replaces
        the one before, all its parts). ``expected`` as in :meth:`save_checkpoint`.

        ``data`` is one ``bytes`` value or an iterable of parts (``bytes`` each), kept
        in order as rows of their own. The parts are drawn one at a time, on the event
        loop, while earlier ones are being written, and none is kept once written: a
        consumer that encodes its state part by part (a generator) never holds it
        whole in memory, nor does the database driver (a large single value costs
        several copies of itself, and PostgreSQL's client library keeps a buffer of
        twice its size for as long as the connection lives). The state must not change
        until this returns (the consumer runner holds its lock meanwhile). If drawing a
        part raises, nothing is kept and the error propagates."""
        self._check_open()
        validate_stream_id(name)
        validate_position(position)
        if expected is not None:
            validate_position(expected, "expected")
        if isinstance(data, str | bytearray | memoryview) or not isinstance(data, Iterable):
            raise InvalidEvent("a snapshot's data must be bytes or an iterable of bytes")
        parts: Iterable[bytes] = (data,) if isinstance(data, bytes) else data
        await self._save_snapshot(name, position, _checked_parts(parts), expected)

    async def load_snapshot(self, name: str) -> Snapshot | None:
        """The last snapshot :meth:`save_snapshot` kept for ``name``, or ``None``."""
        self._check_open()
        validate_stream_id(name)
        found = await self._load_snapshot(name)
        if found is None:
            return None
        position, parts = found
        return Snapshot(position, tuple(parts) or (b"",))

    # ----------------------------------------------------------------- adapter hooks
    @abc.abstractmethod
    async def _save_snapshot(
        self, name: str, position: int, parts: Iterator[bytes], expected: int | None
    ) -> None:
        """Store the snapshot's parts (drawn one at a time, on the loop: see
        :meth:`save_snapshot`) in place of the last ones and move the checkpoint, in
        one transaction; nothing is kept if drawing a part raises."""

    @abc.abstractmethod
    async def _load_snapshot(self, name: str) -> tuple[int, list[bytes]] | None:
        """The snapshot's position and parts, in order."""

    @abc.abstractmethod
    async def _submit(self, parts: list[PreparedPart]) -> list[AppendResult]: ...

    @abc.abstractmethod
    async def _submit_many(
        self, requests: list[list[PreparedPart]]
    ) -> list[list[AppendResult] | BaseException]:
        """Commit each request as an append of its own (see :meth:`append_many`): its
        results, or the error it failed with, in order."""

    async def _read_requests_many(
        self, requests: dict[str, list[str]]
    ) -> dict[str, list[RecordedEvent]]:
        """One :meth:`_read_requests` a stream (an adapter may do better)."""
        found: dict[str, list[RecordedEvent]] = {}
        for stream_id, request_ids in requests.items():
            events = await self._read_requests(stream_id, request_ids)
            if events:
                found[stream_id] = events
        return found

    @abc.abstractmethod
    async def _read_stream(
        self, stream_id: str, from_version: int | None, backwards: bool, limit: int | None
    ) -> list[RecordedEvent]: ...

    @abc.abstractmethod
    async def _read_page(
        self, after: int, limit: int, flt: ReadFilter, max_bytes: int | None = None
    ) -> PageRead:
        """Up to ``limit`` events above ``after`` matching ``flt``, and no more than
        ``max_bytes`` (default: :attr:`page_max_bytes`) of their sizes unless the first
        alone is larger: a :class:`PageRead`.

        ``head`` is the committed head read first; ``scanned`` ≤ ``head`` is how far the
        page looked: every matching event in ``(after, scanned]`` was returned (a page
        may stop short of ``head`` and say so through ``scanned``). A page that stopped
        at either limit is ``full`` and its ``scanned`` is its last event's position.
        Rows are taken from the database one by one (or a few at a time), so a page
        never holds much more than its budget, however many events ``limit`` allows.
        """

    @abc.abstractmethod
    async def _read_requests(
        self, stream_id: str, request_ids: list[str]
    ) -> list[RecordedEvent]: ...

    @abc.abstractmethod
    async def _stream_version(self, stream_id: str) -> int: ...

    @abc.abstractmethod
    async def _head(self) -> int: ...

    @abc.abstractmethod
    async def _get_checkpoint(self, name: str) -> int: ...

    @abc.abstractmethod
    async def _commit_projection(
        self, name: str, position: int, statements: list[SqlStatement], expected: int | None
    ) -> None: ...

    @abc.abstractmethod
    async def _close(self) -> None: ...
