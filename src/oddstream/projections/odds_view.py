"""What the odds service's clients read, as a projection of the log: one record per
fixed-odds market, as the odds service they knew persisted it.

A consumer of ``market-*`` streams (``docs/consumers.md``), held in memory and rebuilt
by replaying the log at each start (its position is not saved): every answer is a
function of the log up to the view's position, so a replay answers the same. A record's
``ID`` is the global position of the market's ``MarketCreated`` and its times are the
store's ``recorded_at`` of its first and latest events: both come from the log, not from
the moment of the replay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from ..consumers import Batch, Consumer, ConsumerRunner, MemoryCheckpoint, Subscription
from ..domain.fixedodds import MarketState, MoneyLine, evolve
from ..domain.fixedodds.events import MarketCreated
from ..domain.fixedodds.market import MarketStatus, money_line_of
from ..eventstore import EventStore, RecordedEvent
from ..eventstore.registry import EventRegistry
from ..runtime.codec import registry as default_registry
from ..runtime.market_writer import MARKET_STREAM_PREFIX

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OddsRecord:
    """A market as the odds service shows it, as of the log position ``position``."""

    id: int
    external_id: str
    game_id: str
    provider: str
    money_line: MoneyLine
    deleted: bool
    created_at: datetime
    updated_at: datetime
    #: the market's stream version the record includes
    version: int
    #: the global position of the latest event the record includes
    position: int
    #: the market's lifecycle status (never ``UNCREATED``: a record is made by its
    #: ``MarketCreated``)
    status: MarketStatus


#: called with a market's new record after each of its events is applied, in log order
MarketListener = Callable[[OddsRecord], None]


class OddsRecords:
    """The odds records a run of market events makes, in memory: the one mapping of the
    log to the odds service's records. The live view (:class:`OddsView`) and the replay
    worker's odds tables (``sinks/odds_tables.py``) both apply the log through it, so
    the tables a replay writes hold what the view answers."""

    def __init__(self, registry: EventRegistry | None = None) -> None:
        self._registry = registry or default_registry
        self._states: dict[str, MarketState] = {}
        #: records by external id, and the external ids in the order of their ``ID``
        #: (for pages)
        self._records: dict[str, OddsRecord] = {}
        self._order: list[str] = []

    def clear(self) -> None:
        """Forget every market."""
        self._states.clear()
        self._records.clear()
        self._order.clear()

    def apply(self, recorded: RecordedEvent) -> OddsRecord | None:
        """Apply one stored market event (in log order); answers the record it made or
        changed, ``None`` for an event of a stream that is no market shown (its first
        event is not a ``MarketCreated``)."""
        market_id = recorded.stream_id[len(MARKET_STREAM_PREFIX) :]
        event = self._registry.decode(recorded)
        state = self._states.get(market_id)
        if state is None:
            if not isinstance(event, MarketCreated):
                return None  # not a market this service knows how to show
            state = self._states[market_id] = MarketState(market_id=market_id)
        evolve(state, event)  # type: ignore[arg-type]
        at = recorded.recorded_at
        record = self._records.get(market_id)
        if record is None:
            record = OddsRecord(
                id=recorded.position,
                external_id=market_id,
                game_id=state.game_id,
                provider=state.provider,
                money_line=money_line_of(state),
                deleted=False,
                created_at=at,
                updated_at=at,
                version=recorded.version,
                position=recorded.position,
                status=state.status,
            )
            self._order.append(market_id)
        else:
            record = replace(
                record,
                money_line=money_line_of(state),
                deleted=state.status is MarketStatus.DELETED,
                updated_at=at,
                version=recorded.version,
                position=recorded.position,
                status=state.status,
            )
        self._records[market_id] = record
        return record

    def get(self, external_id: str) -> OddsRecord | None:
        """The market ``external_id``'s record, or ``None``."""
        return self._records.get(external_id)

    def page(self, page_no: int, page_size: int) -> list[OddsRecord]:
        """The records of page ``page_no`` (from 1) of ``page_size``, oldest first."""
        start = (page_no - 1) * page_size
        return [self._records[i] for i in self._order[start : start + page_size]]

    def records(self) -> list[OddsRecord]:
        """Every market's record as it is now, oldest first (a copy: one reference a
        market)."""
        return [self._records[i] for i in self._order]

    def __len__(self) -> int:
        return len(self._order)


class OddsView(Consumer):
    """Follows the markets' streams; answers from memory, never a step behind its
    position."""

    name = "odds-view"
    subscription = Subscription(stream_prefix=MARKET_STREAM_PREFIX)

    def __init__(self, store: EventStore, registry: EventRegistry | None = None) -> None:
        self._store = store
        self._records = OddsRecords(registry)
        self._listeners: list[MarketListener] = []
        self.runner = ConsumerRunner(store, self, MemoryCheckpoint())

    @property
    def position(self) -> int:
        """The global position the view includes."""
        return self.runner.position

    def on_market_changed(self, listener: MarketListener) -> None:
        """Call ``listener(record)`` with a market's new record after each of its events
        is applied (on the replay at start and on a rebuild too: a listener that pushes
        changes skips the positions it has seen). An exception of ``listener`` is logged
        and goes no further."""
        self._listeners.append(listener)

    async def start(self) -> None:
        """Replay the log and follow it."""
        await self.runner.start()

    async def stop(self) -> None:
        await self.runner.stop()

    async def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Forget everything and apply the whole log up to its head again."""
        return await self.runner.rebuild(progress)

    async def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until the view has applied ``position``; False on timeout."""
        return await self.runner.wait_for(position, timeout)

    async def handle(self, batch: Batch) -> None:
        apply = self.apply
        for recorded in batch.events:
            apply(recorded)

    async def reset(self) -> None:
        self._records.clear()

    def apply(self, recorded: RecordedEvent) -> None:
        """Apply one stored market event (in log order)."""
        record = self._records.apply(recorded)
        if record is None:
            return
        for listener in self._listeners:
            try:
                listener(record)
            except Exception:
                # a listener's failure is its own: raised here it would fail the batch,
                # which the runner retries for ever, and every read waits on the view
                log.exception("a listener of market %s's changes failed", record.external_id)

    def get(self, external_id: str) -> OddsRecord | None:
        """The market ``external_id``'s record, or ``None``."""
        return self._records.get(external_id)

    def page(self, page_no: int, page_size: int) -> list[OddsRecord]:
        """The records of page ``page_no`` (from 1) of ``page_size``, oldest first."""
        return self._records.page(page_no, page_size)

    def records(self) -> list[OddsRecord]:
        """Every market's record as it is now, oldest first (a copy: one reference a
        market)."""
        return self._records.records()

    def __len__(self) -> int:
        return len(self._records)
