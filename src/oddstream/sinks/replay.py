"""The replay worker: the log's market events into the odds tables of a target database
(``oddstream replay --to URL``), from where the target stands up to the head or a bound.

Each page of the log is written with :meth:`~oddstream.sinks.JdbcSink.write`: its rows
and the worker's position (a row of ``oddstream_sink_offsets``, :func:`position_name`)
commit in one transaction of the target. So a replay that stops part-way (killed, the
target gone, an error) leaves the tables as of a page's end, and the next run resumes
from there; a page written twice is recognised by its position and not written again.
Resuming rebuilds the markets' state in memory from the log up to the stored position
first (a read, nothing written), as the rows to come depend on it.

Bounds (:class:`Until`): a position (events after it are left out), or a time (the
replay stops before the first market event recorded after it: the log's times follow
its positions, so that is the last event recorded at or before it). A bound the target's
tables are already past is refused (:class:`ReplayError`): a position below theirs, a
time before one of their market events was recorded. ``from_start``
empties the tables and forgets the position first (one transaction), then replays
from the beginning.

See ``docs/fixed-odds.md`` ("Replay").
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ..eventstore import EventStore
from ..eventstore.factory import is_postgres_url, sqlite_path
from ..eventstore.registry import EventRegistry
from .config import parse_config
from .odds_tables import CATEGORY, TOPICS, OddsTables, sink_settings
from .schema import SinkRecord
from .writer import JdbcSink

#: market events read (and written in one transaction) at a time
DEFAULT_PAGE = 2000
#: the start of the replay worker's position row in the target's offsets table; the
#: unit separator (U+001F) is a control character, which no connector's name holds
POSITION_NAME_PREFIX = "replay\x1f"

_POSITION = re.compile(r"[0-9]{1,19}")
_MYSQL_SCHEMES = ("mysql://", "mariadb://")


class ReplayError(Exception):
    """A replay that cannot be done as asked (the message says why); nothing written."""


@dataclass(frozen=True, slots=True)
class Until:
    """Where a replay stops: after log position ``position``, or before the first event
    recorded after ``time`` (UTC)."""

    position: int | None = None
    time: datetime | None = None

    @classmethod
    def parse(cls, text: str) -> Until:
        """A position (digits) or an ISO 8601 time (``2026-11-29T20:43:00Z``; without an
        offset, UTC); :class:`ReplayError` otherwise."""
        text = text.strip()
        if _POSITION.fullmatch(text):
            return cls(position=int(text))
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            raise ReplayError(
                f"--until takes a log position (digits) or an ISO 8601 time such as "
                f"2026-11-29T20:43:00Z, not {text[:60]!r}"
            ) from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        try:
            return cls(time=at.astimezone(UTC))
        except OverflowError:  # 9999-12-31T23:59:59-01:00 is past year 9999 in UTC
            raise ReplayError(
                f"--until {text[:60]!r} is out of range once in UTC (years 1 to 9999)"
            ) from None

    def describe(self) -> str:
        if self.position is not None:
            return f"position {self.position:,}"
        assert self.time is not None
        return _text(self.time)


def _text(at: datetime) -> str:
    """A UTC time as the API shows times (to the microsecond, ``Z``)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def jdbc_url(to: str) -> str:
    """The JDBC URL of a ``--to`` URL: ``sqlite:///relative.db``,
    ``sqlite:////abs/path.db``, ``postgresql://…`` (or ``postgres://``), ``mysql://…``
    (or ``mariadb://``); a ``jdbc:`` URL passes as it is. :class:`ReplayError` for
    anything else (the URL is not repeated: it may hold a password)."""
    if to.startswith("jdbc:"):
        return to
    if is_postgres_url(to):
        return "jdbc:postgresql:" + to[to.index("//") :]
    if to.startswith(_MYSQL_SCHEMES):
        return "jdbc:mysql:" + to[to.index("//") :]
    if to.startswith("sqlite://"):
        path = sqlite_path(to)
        if path:
            return f"jdbc:sqlite:{path}"
        raise ReplayError("--to sqlite:///PATH names no file")
    scheme = to.split("://", 1)[0] if "://" in to else None
    what = f"scheme {scheme!r}" if scheme else "a URL without a scheme"
    raise ReplayError(
        f"--to: unsupported {what}: sqlite:///path.db, postgresql://host/db, "
        "mysql://host/db (or a jdbc: URL)"
    )


def position_name(table_prefix: str = "") -> str:
    """The name of the row of the target's offsets table that holds where the odds
    tables under ``table_prefix`` stand: ``replay`` and the tables' prefix with a
    control character between, so no SQL sink connector (whose name holds none, see
    :func:`~oddstream.sinks.connectors.check_name`) shares it, whatever the database
    compares names by, and no dead-letter replay's marker (two separators) either."""
    return f"{POSITION_NAME_PREFIX}{table_prefix}odds"


def open_odds_sink(to: str, *, table_prefix: str = "") -> JdbcSink:
    """The writer of the odds tables in the database ``to`` (not connected yet); its
    position row is named after the tables. :class:`ReplayError` for a URL or table
    prefix that cannot be used."""
    from .config import SinkConfigError, parse_connection_url
    from .errors import InvalidIdentifier

    url = jdbc_url(to)
    try:
        parse_connection_url(url)
        config = parse_config(sink_settings(url, table_prefix=table_prefix))
    except SinkConfigError as exc:
        raise ReplayError(f"--to: {exc}") from None
    except ValueError as exc:
        raise ReplayError(f"--to: {exc}") from None
    sink = JdbcSink(position_name(table_prefix), config)
    try:
        for topic in TOPICS:
            sink.table_for(topic)  # checked before anything is written
    except InvalidIdentifier as exc:
        raise ReplayError(f"--table-prefix: {exc}") from None
    return sink


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay did: from ``start`` (the position it resumed from, 0 from the
    beginning) to ``position``; ``events`` market events applied and written,
    ``rows`` rows written, ``markets`` markets in the tables at the end."""

    start: int
    position: int
    events: int
    rows: int
    markets: int
    last_event: int | None = None


#: ``progress(position, end, events)``: called after each page written
Progress = Callable[[int, int, int], None]


def _topic(record: SinkRecord) -> str:
    return record.topic


class OddsReplay:
    """Replays the log's market events into the odds tables ``sink`` writes."""

    def __init__(
        self,
        store: EventStore,
        sink: JdbcSink,
        *,
        page_size: int = DEFAULT_PAGE,
        registry: EventRegistry | None = None,
    ) -> None:
        self.store = store
        self.sink = sink
        self.page_size = page_size
        self.tables = OddsTables(registry)

    async def stored_position(self) -> int:
        """The log position the target's tables hold (0: none)."""
        return await asyncio.to_thread(self.sink.stored_position) or 0

    async def run(
        self,
        *,
        until: Until | None = None,
        from_start: bool = False,
        progress: Progress | None = None,
    ) -> ReplayResult:
        """Replay from where the target stands (the beginning with ``from_start``) to
        the log's head as of now, or ``until``."""
        head = await self.store.head_position()
        end = head
        if until is not None and until.position is not None:
            end = min(end, until.position)
        if from_start:
            await asyncio.to_thread(self.sink.clear, TOPICS)
        start = await self.stored_position()
        if start > head:
            raise ReplayError(
                f"the target's odds tables hold the log up to position {start:,}, past "
                f"this log's head ({head:,}): another log's? --from-start rebuilds them"
            )
        if until is not None and until.position is not None and start > until.position:
            raise ReplayError(
                f"the target's odds tables hold the log up to position {start:,}, past "
                f"--until {until.position:,}: --from-start rebuilds them"
            )
        stop_after = until.time if until is not None else None
        if start:
            latest = await self._warm(start)
            if stop_after is not None and latest is not None and latest > stop_after:
                assert until is not None
                raise ReplayError(
                    f"the target's odds tables hold the log up to position {start:,}, "
                    f"with market events recorded after --until {until.describe()} "
                    f"(the latest at {_text(latest)}): --from-start rebuilds them"
                )
        after = start
        events = rows = 0
        last_event: int | None = None
        while after < end:
            page = await self.store.read_page(after, self.page_size, category=CATEGORY)
            position = min(page.position, end)
            stopped = False
            records: list[SinkRecord] = []
            for recorded in page.events:
                if recorded.position > end:
                    break
                if stop_after is not None and recorded.recorded_at > stop_after:
                    position = recorded.position - 1
                    stopped = True
                    break
                records += self.tables.map(recorded)
                events += 1
                last_event = recorded.position
            if position <= after:
                break  # stopped by the time at the page's first event
            # a table's rows together (log order kept within each): one run of upserts
            # per table, not one per event (on PostgreSQL each run is a staging table,
            # and thousands in a transaction exhaust the server's lock table)
            records.sort(key=_topic)
            try:
                result = await asyncio.to_thread(
                    self.sink.write, records, after=after, position=position
                )
            except Exception as exc:
                await self._moved_meanwhile(after, exc)
                raise
            rows += result.rows
            after = position
            if progress is not None:
                progress(after, end, events)
            if stopped:
                break
        return ReplayResult(start, after, events, rows, len(self.tables.records), last_event)

    async def _moved_meanwhile(self, after: int, exc: Exception) -> None:
        """After a failed write: :class:`ReplayError` if the target's position is no
        longer ``after``, where this replay stood (another replay into the same tables
        wrote meanwhile: its conflict, or both inserting the first position row, shows
        as the writer's or the driver's error); otherwise the caller re-raises."""
        try:
            stored = await self.stored_position()
        except Exception:
            return  # the target is gone: the write's own error says so
        if stored != after:
            raise ReplayError(
                f"the target's odds tables moved from position {after:,} to {stored:,} "
                "while this replay wrote them: another replay into the same tables? "
                "Nothing of this page was written; run again to resume"
            ) from exc

    async def _warm(self, position: int) -> datetime | None:
        """The markets' state as of ``position`` (where the target stands), from the
        log: the rows past it depend on it. Answers the latest time a market event up
        to there was recorded at (``None``: none), which a time bound must not precede."""
        after = 0
        latest: datetime | None = None
        while after < position:
            page = await self.store.read_page(after, self.page_size, category=CATEGORY)
            for recorded in page.events:
                if recorded.position > position:
                    return latest
                self.tables.records.apply(recorded)
                at = recorded.recorded_at
                if latest is None or at > latest:
                    latest = at
            if page.position <= after:
                return latest
            after = page.position
        return latest


__all__ = [
    "DEFAULT_PAGE",
    "POSITION_NAME_PREFIX",
    "OddsReplay",
    "ReplayError",
    "ReplayResult",
    "Until",
    "jdbc_url",
    "open_odds_sink",
    "position_name",
]
