"""Who owns what: PostgreSQL advisory locks, held by one connection per worker.

Why advisory locks rather than a JetStream key-value lease: the log already lives in
PostgreSQL, and a session-level advisory lock lives exactly as long as the connection
that took it. A worker that dies (SIGKILL, a crash) loses its connection, and
PostgreSQL frees its locks at once — no time-to-live to wait out, no renewals to send
while busy, no clock to trust. Failover then takes one rebalance tick of another worker
(``ODDSTREAM_REBALANCE_SECONDS``), not a lease period. A host that is gone ends no
connection: the lock connection asks PostgreSQL for keepalive probes (:data:`KEEPALIVE`),
so that it frees such a worker's locks within seconds, and a look that gets no answer
(:data:`QUERY_SECONDS`) counts as a lost connection here.

Three kinds of lock, each a pair of 32-bit keys (a namespace derived from the
deployment's schema and the kind, and a number):

- a *member* slot per live worker: counting the granted slots (``pg_locks``) says how
  many workers share the work;
- a *partition* lock per partition a worker owns; a worker aims for
  ``ceil(partitions / members)`` and gives up the excess when others join;
- a *consumer* lock per consumer that must run once in the deployment (the cashier's
  follower, the Redis read model), shared out the same way.

A worker that loses its lock connection (PostgreSQL restarted, the network cut) has lost
everything it held: it stops serving at once (``on_lose``) and takes its share again once
it reconnects. Between PostgreSQL freeing a lock and the old owner noticing, two workers
may briefly both believe they own a partition; neither can commit a decision made on a
stale state, because every append carries the stream version it was decided on (the
store refuses it with ``WrongExpectedVersion``, and the writer decides again on what the
log now holds). That version check is the fence; the locks only keep the common case
free of conflicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

log = logging.getLogger(__name__)

#: workers a deployment may have at once (member slots)
MAX_MEMBERS = 1024
#: TCP keepalive of the lock connection, both ends: idle seconds, seconds between
#: probes, probes. PostgreSQL frees a session's locks only once it knows the session
#: is gone; a host that is gone (power, network) ends no connection, and the kernel's
#: default (7200 s, then 9 probes 75 s apart) would keep its locks for over two hours.
KEEPALIVE = (5, 2, 3)
#: how long one look at the locks may take before the connection counts as lost
QUERY_SECONDS = 10.0
#: how often :meth:`Leases.stop` cancels the rebalancing loop again until it ends
_RECANCEL = 0.5


def _namespace(schema: str, kind: str) -> int:
    """A positive 31-bit key (``pg_locks`` shows it unchanged as ``classid``)."""
    return zlib.crc32(f"oddstream/{schema}/{kind}".encode()) & 0x7FFFFFFF


def consumer_key(name: str) -> int:
    """The lock number of a consumer."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


@dataclass
class Holdings:
    """What this worker holds right now."""

    member: int | None = None
    partitions: set[int] = field(default_factory=set)
    consumers: set[str] = field(default_factory=set)


OnChange = Callable[[str, Any], Awaitable[None]]


@dataclass(frozen=True)
class Ownership:
    """The locks of a deployment granted right now: member slots (one per live worker),
    partitions owned, consumer locks held."""

    members: frozenset[int]
    partitions: frozenset[int]
    consumers: frozenset[int]


async def ownership(conn: psycopg.AsyncConnection[Any], schema: str) -> Ownership:
    """What ``pg_locks`` says of a deployment's locks now (one query)."""
    namespaces = [_namespace(schema, kind) for kind in ("member", "partition", "consumer")]
    cursor = await conn.execute(
        "SELECT classid::bigint, objid::bigint FROM pg_locks "
        "WHERE locktype = 'advisory' AND granted AND objsubid = 2 "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid::bigint = ANY(%s)",
        (namespaces,),
    )
    found: dict[int, set[int]] = {ns: set() for ns in namespaces}
    for ns, number in await cursor.fetchall():
        found[int(ns)].add(int(number))
    members, partitions, consumers = (frozenset(found[ns]) for ns in namespaces)
    return Ownership(members, partitions, consumers)


class Leases:
    """Takes and gives up partitions and consumers for one worker (see the module's
    docstring).

    ``on_gain(kind, what)`` is awaited after a lock is taken (``kind`` is
    ``"partition"`` with a number, or ``"consumer"`` with a name) and before it counts
    as held; if it raises, the lock is released at once (and taken again at a later
    look, by this worker or another), so it must leave nothing half-taken.
    ``on_lose(kind, what)`` is awaited before a lock is given up, or after it was lost
    with the connection; it must not raise.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str,
        partitions: int,
        consumers: Iterable[str] = (),
        every: float = 0.5,
        on_gain: OnChange,
        on_lose: OnChange,
        name: str = "oddstream-worker",
    ) -> None:
        self._dsn = dsn
        self._partitions = partitions
        self._consumers = sorted(consumers)
        self._every = every
        self._on_gain = on_gain
        self._on_lose = on_lose
        self._name = name
        self._schema = schema
        self._ns_member = _namespace(schema, "member")
        self._ns_partition = _namespace(schema, "partition")
        self._ns_consumer = _namespace(schema, "consumer")
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self.held = Holdings()
        #: how many workers the last look counted (this one included)
        self.members = 0
        #: lock connections lost (each deposed this worker from all it held)
        self.losses = 0

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Take a member slot and a first share, then keep rebalancing in the background."""
        await self.tick()
        self._task = asyncio.create_task(self._loop(), name="leases")

    async def stop(self) -> None:
        """Give up everything held (``on_lose`` first, so work in flight finishes).

        The rebalancing loop is cancelled again until it ends: taking a share reads the
        store (a consumer's checkpoint), and a store client may swallow the cancellation
        of a read in flight (psycopg turns it into a query error), which the loop counts
        as a share it could not take and goes on from — cancelled once, it went on
        rebalancing, and this waited for it for ever (a worker stopped while it took a
        share, as when another worker had just stopped)."""
        task, self._task = self._task, None
        if task is not None:
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=_RECANCEL)
            with contextlib.suppress(asyncio.CancelledError):
                task.result()
        with contextlib.suppress(psycopg.Error, OSError):
            for partition in sorted(self.held.partitions):
                await self._give_up("partition", partition)
            for name in sorted(self.held.consumers):
                await self._give_up("consumer", name)
        await self._drop(lost=False)

    @property
    def connected(self) -> bool:
        """Whether the lock connection is open (as of the last look: one that stopped
        answering counts as lost after :data:`QUERY_SECONDS`)."""
        return self._conn is not None and not self._conn.closed

    def kick(self) -> None:
        """Rebalance now rather than at the next tick."""
        self._kick.set()

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._every):
                    await self._kick.wait()
            self._kick.clear()
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must go on: ownership is this worker's duty
                log.exception("rebalancing failed")

    # ----------------------------------------------------------------- one look
    async def tick(self) -> None:
        """Count the members, then take or give up partitions and consumers toward this
        worker's share. A lost connection deposes this worker from everything."""
        try:
            conn = await self._connection()
            taken = await self._ownership(conn)
            self.members = max(1, len(taken.members))
            await self._balance(
                conn,
                "partition",
                range(self._partitions),
                self.held.partitions,
                taken.partitions,
                self._ns_partition,
            )
            await self._balance(
                conn,
                "consumer",
                self._consumers,
                self.held.consumers,
                taken.consumers,
                self._ns_consumer,
            )
        except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
            if self._conn is not None:
                log.warning("lost the lock connection (%s): giving up everything held", exc)
            await self._drop(lost=True)

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        idle, interval, count = KEEPALIVE
        conn = await psycopg.AsyncConnection.connect(
            self._dsn,
            autocommit=True,
            application_name=self._name,
            connect_timeout=3,
            # this end: notice a peer that is gone
            keepalives=1,
            keepalives_idle=idle,
            keepalives_interval=interval,
            keepalives_count=count,
            # PostgreSQL's end: free the locks of a worker whose host is gone
            options=(
                f"-c tcp_keepalives_idle={idle} -c tcp_keepalives_interval={interval} "
                f"-c tcp_keepalives_count={count}"
            ),
        )
        self._conn = conn
        used = (await self._ownership(conn)).members
        for slot in range(MAX_MEMBERS):
            if slot not in used and await self._try(conn, self._ns_member, slot):
                self.held.member = slot
                return conn
        raise psycopg.OperationalError(f"more than {MAX_MEMBERS} workers")

    async def _ownership(self, conn: psycopg.AsyncConnection[Any]) -> Ownership:
        """:func:`ownership`, bounded as :meth:`_query` is."""
        try:
            async with asyncio.timeout(QUERY_SECONDS):
                return await ownership(conn, self._schema)
        except TimeoutError:
            raise psycopg.OperationalError(
                f"the lock connection did not answer within {QUERY_SECONDS:.0f} s"
            ) from None

    async def _query(
        self, conn: psycopg.AsyncConnection[Any], query: str, params: tuple[Any, ...]
    ) -> list[tuple[Any, ...]]:
        """Run ``query`` on the lock connection; one that gets no answer in
        :data:`QUERY_SECONDS` (a host or network gone, no connection ended) counts as a
        lost connection."""
        try:
            async with asyncio.timeout(QUERY_SECONDS):
                cursor = await conn.execute(query, params)
                return await cursor.fetchall() if cursor.description else []
        except TimeoutError:
            raise psycopg.OperationalError(
                f"the lock connection did not answer within {QUERY_SECONDS:.0f} s"
            ) from None

    async def _try(self, conn: psycopg.AsyncConnection[Any], ns: int, number: int) -> bool:
        rows = await self._query(conn, "SELECT pg_try_advisory_lock(%s, %s)", (ns, number))
        return bool(rows and rows[0][0])

    async def _unlock(self, conn: psycopg.AsyncConnection[Any], ns: int, number: int) -> None:
        await self._query(conn, "SELECT pg_advisory_unlock(%s, %s)", (ns, number))

    async def _balance(
        self,
        conn: psycopg.AsyncConnection[Any],
        kind: str,
        every: Iterable[Any],
        held: set[Any],
        taken: frozenset[int],
        ns: int,
    ) -> None:
        items = list(every)
        if not items:
            return
        share = math.ceil(len(items) / self.members)
        if len(held) > share:
            for item in sorted(held, key=str, reverse=True)[: len(held) - share]:
                await self._give_up(kind, item)
            return
        if len(held) == share:
            return
        # start looking at a point of our own, so joiners do not all try the same ones
        start = ((self.held.member or 0) * len(items)) // max(self.members, 1)
        for i in range(len(items)):
            if len(held) >= share:
                break
            item = items[(start + i) % len(items)]
            number = self._number(kind, item)
            if item in held or number in taken:
                continue
            if await self._try(conn, ns, number):
                try:
                    await self._on_gain(kind, item)
                except Exception:
                    # not taken after all: let the lock go, or it would count as held
                    # (by this worker, for every worker) with nobody serving it, for good
                    await self._unlock(conn, ns, number)
                    log.warning("could not take %s %s; trying again later", kind, item)
                    continue
                held.add(item)

    def _number(self, kind: str, item: Any) -> int:
        return int(item) if kind == "partition" else consumer_key(item)

    async def _give_up(self, kind: str, item: Any) -> None:
        held = self.held.partitions if kind == "partition" else self.held.consumers
        await self._on_lose(kind, item)
        held.discard(item)
        ns = self._ns_partition if kind == "partition" else self._ns_consumer
        conn = self._conn
        if conn is not None and not conn.closed:
            await self._unlock(conn, ns, self._number(kind, item))

    async def _drop(self, *, lost: bool) -> None:
        """Close the lock connection; everything still held is lost with it."""
        if lost and (self.held.partitions or self.held.consumers):
            self.losses += 1
        for partition in sorted(self.held.partitions):
            await self._on_lose("partition", partition)
        for name in sorted(self.held.consumers):
            await self._on_lose("consumer", name)
        self.held = Holdings()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()
