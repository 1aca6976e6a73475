"""The wallet read model in Redis (shared: any number of processes can read it).

Keys, under a prefix (default ``oddstream:``):

* ``<prefix>wallet:<id>``: a string, the JSON array ``[balance_cents, in_play_cents,
  version, position]`` (a string, not a hash, so that many wallets are one script call);
* ``<prefix>wallet-tx:<id>``: a sorted set, one member per event scored by its stream
  version; the member is the transaction as a JSON array, so adding the same event
  again changes nothing;
* ``<prefix>wallets:index``: a hash, wallet id → the stream version the model holds (the
  wallet's *marker*), plus the *sentinel* field ``"\\0checkpoint:2"`` (no wallet id holds
  a control character), named by the model's version (:data:`~.base.MODEL_VERSION`):
  the index exists whenever the checkpoint does;
* ``<prefix>wallets:checkpoint``: the global position the content includes.

A batch is one Lua script: it compares the stored checkpoint with the one the projection
expects (missing counts as 0, and so does a checkpoint without its index), and only then
writes the balances, the transactions, the markers and the new checkpoint. Redis runs a
script alone, so a reader sees the batch whole or not at all.

Lost keys (evicted under an ``allkeys-*`` ``maxmemory-policy``, or deleted by hand) are
noticed by the reads: a wallet is whole when its marker, its balance and a statement of
exactly ``marker`` members are all there; a wallet with any one of them is *known*, at
the highest version they show. A read of a known wallet that is not whole is answered
from the log (through the loader the projection attaches) and the wallet is repaired in
the background: its stream is read from the log and its keys rewritten by one script,
only if the wallet is still at the version the repair read (a batch that moved it
meanwhile wins; the next read looks again). A wallet with none of the three is
*unknown*: a read of it asks the log for the wallet's events at or before the checkpoint
it read with the keys; if there are some, the model passed them and so has lost the
wallet (all three keys evicted): the read is answered from them and the wallet repaired
the same way, only if the checkpoint is still between that version's event and the
wallet's next one. A lost index (or checkpoint) reads as a missing checkpoint: the
projection rebuilds everything from the log, as after a flush. So does a model of
another version: its index has no sentinel of this version, so its checkpoint reads as
missing, and the projection deletes its keys and rebuilds it (its members are never read).

The log's answer for an unknown wallet it holds nothing of at or before the checkpoint
(no such wallet yet, the common case: a 404, an empty wallet polled) is remembered, in a
bounded LRU of wallet ids, with the position of the wallet's first event if the log had
one: later reads of the wallet whose checkpoint is before that position answer "unknown"
without the log. The entry goes when a batch applies an event of the wallet (only then
can the model pass its first event) and on a reset; concurrent lookups of one wallet
share one log read.

Balance reads are coalesced: the reads requested during one turn of the event loop go
out as one script call (which reads the checkpoint and checks each wallet's keys), and
the next ones wait for its answer, so 64 concurrent callers cost one round trip, not 64.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NamedTuple

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ...domain.wallet import book_market
from ...eventstore import CheckpointConflict
from .base import (
    CONSUMER_NAME,
    MODEL_VERSION,
    ReadModelUnavailable,
    TxRow,
    WalletBalance,
    WalletTransaction,
    check_page,
    latest_per_wallet,
)

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "oddstream:"
#: The most balance reads one script call answers.
_READ_BATCH = 1000
#: The most wallets the model remembers the log holds nothing of (see ``_absent``).
ABSENT_MAX = 10_000
#: The index's field that says the index is whole (a wallet id has no control character),
#: named by the model's version: the index of another version (``\0checkpoint`` before
#: versions) lacks it, which reads as a lost checkpoint and rebuilds the model.
INDEX_SENTINEL = b"\0checkpoint:%d" % MODEL_VERSION
#: the sentinel of the model before versions (version 1), only to say so in a warning
_SENTINEL_V1 = b"\0checkpoint"
#: ``maxmemory-policy`` values under which Redis may evict this model's keys (they have
#: no TTL, so the ``volatile-*`` policies never pick them).
EVICTING_POLICIES = ("allkeys-lru", "allkeys-lfu", "allkeys-random")

# look(index, balance key, statement key, wallet id) → k, b, whole: k is the version the
# model holds of the wallet (0: none), b its balance value (or false), whole whether the
# marker, the balance and a statement of exactly k members are all there.
_LOOK = """
local function look(index, bkey, tkey, wid)
  local m = redis.call('HGET', index, wid)
  local b = redis.call('GET', bkey)
  local n = redis.call('ZCARD', tkey)
  if m then
    local k = tonumber(m)
    return k, b, (b ~= false and n == k)
  end
  local k = 0
  if b then k = cjson.decode(b)[3] end
  if n > 0 then
    local top = redis.call('ZREVRANGE', tkey, 0, 0, 'WITHSCORES')
    k = math.max(k, tonumber(top[2]))
  end
  return k, b, k == 0
end
local function servable(b, k)
  if b and cjson.decode(b)[3] == k then return b end
  return false
end
"""

# KEYS[1] checkpoint, KEYS[2] index; then per wallet KEYS[k] balance, KEYS[k+1]
# transactions. ARGV[1] the index sentinel, ARGV[2] expected checkpoint, ARGV[3] new
# checkpoint; then per wallet: its id, the balance value, the number n of transactions,
# n (score, member) pairs.
_APPLY = """
local cp = redis.call('GET', KEYS[1])
if cp ~= false and redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  cp = false  -- a checkpoint without its index: the content cannot be trusted
end
if cp == false then
  if ARGV[2] ~= '0' then return {0} end
elseif cp ~= ARGV[2] then
  return {0, cp}
end
local a = 4
local k = 3
while k <= #KEYS do
  redis.call('SET', KEYS[k], ARGV[a + 1])
  local last = a + 2 + 2 * tonumber(ARGV[a + 2])
  local i = a + 3
  while i <= last do
    local j = math.min(i + 999, last)
    redis.call('ZADD', KEYS[k + 1], unpack(ARGV, i, j))
    i = j + 1
  end
  redis.call('HSET', KEYS[2], ARGV[a], ARGV[last - 1])
  a = last + 1
  k = k + 2
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('SET', KEYS[1], ARGV[3])
return {1}
"""

# KEYS[1] checkpoint, KEYS[2] index; ARGV[1] the index sentinel, ARGV[2] the balance
# keys' prefix, ARGV[3] the statement keys' prefix, then the wallet ids. Answers the
# checkpoint (nil when missing or without its index), then per wallet: its balance value
# when its balance and marker are there, nil when unknown, {k, balance value or nil} when
# known at k but not whole. A lost statement alone is noticed by statement reads.
# This is the hot path: one bulk MGET and HMGET, and the wallets' key names are built
# here rather than sent (sending them doubled what a read costs the client; a Redis
# Cluster would want them declared, but the batch script spans slots anyway).
_READ_BALANCES = (
    _LOOK
    + """
local n = #ARGV - 3
local out = {false}
local names = {}
for i = 1, n do names[i] = ARGV[2] .. ARGV[i + 3] end
local bs = redis.call('MGET', unpack(names))
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  for i = 1, n do out[i + 1] = bs[i] end
  return out
end
out[1] = redis.call('GET', KEYS[1])
local ms = redis.call('HMGET', KEYS[2], unpack(ARGV, 4, n + 3))
for i = 1, n do
  if bs[i] and ms[i] then
    out[i + 1] = bs[i]
  else
    local k, b, whole = look(KEYS[2], names[i], ARGV[3] .. ARGV[i + 3], ARGV[i + 3])
    if whole then out[i + 1] = b else out[i + 1] = {k, servable(b, k)} end
  end
end
return out
"""
)

# KEYS checkpoint, index, balance, transactions; ARGV the index sentinel, the wallet id,
# the highest score (exclusive or +inf), the page size, the end of a book's members
# ('' for every member) and how many members to look at for them. Answers {checkpoint
# (nil as for balances), k when the wallet is known at k but not whole, -1 when it is
# unknown (none of its keys: the log decides whether it was lost), else 0, the members,
# and for a book the score of the last member looked at when the page is not full and
# more members may follow (else 0)}. A book's members are looked at in steps, from twice
# the page's size up to that many in all.
_READ_PAGE = (
    _LOOK
    + """
local cp = false
local lost = 0
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  cp = redis.call('GET', KEYS[1])
  local k, b, whole = look(KEYS[2], KEYS[3], KEYS[4], ARGV[2])
  if k == 0 then lost = -1 elseif not whole then lost = k end
end
local suffix = ARGV[5]
if suffix == '' then
  local page = redis.call('ZREVRANGEBYSCORE', KEYS[4], ARGV[3], '-inf', 'LIMIT', 0, ARGV[4])
  return {cp, lost, page, 0}
end
local want = tonumber(ARGV[4])
local budget = tonumber(ARGV[6])
local step = math.min(budget, math.max(2 * want, 64))
local high = ARGV[3]
local page = {}
local n = #suffix
local find = string.find
local looked = 0
while true do
  -- a few more than the page needs first, more each time (few lines of a book: more)
  local seen = redis.call('ZREVRANGEBYSCORE', KEYS[4], high, '-inf', 'LIMIT', 0, step)
  for i = 1, #seen do
    local m = seen[i]
    if find(m, suffix, #m - n + 1, true) then
      page[#page + 1] = m
      if #page == want then return {cp, lost, page, 0} end
    end
  end
  looked = looked + #seen
  if #seen < step then return {cp, lost, page, 0} end
  -- the last member's score is its version, the member's first element: [version, ...
  local low = string.match(seen[#seen], '^%[(%d+),')
  if looked >= budget then return {cp, lost, page, tonumber(low)} end
  high = '(' .. low
  step = math.min(2 * step, budget - looked)
end
"""
)
#: The most statement members one filtered read's script call looks at (a filtered page
#: takes as many calls as it needs, each a short time in Redis).
FILTER_CHUNK = 1000

# KEYS checkpoint, index, balance, transactions; ARGV the index sentinel, the wallet id,
# the version v the repair read, the balance value, the position of v's event, the
# position of the wallet's next event ('' if none), then (score, member) pairs of the
# versions 1..v. Rewrites the wallet's keys only if the model (checkpoint and index
# there) holds it at v and not whole, or does not know it while its checkpoint has
# passed v's event but not the next one (the model lost all three of its keys). Answers
# {1, v} repaired, {2, v} it was whole, {0, k} not written (k: the version the model
# holds, 0 when none or wiped).
_REPAIR = (
    _LOOK
    + """
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  return {0, 0}
end
local k, b, whole = look(KEYS[2], KEYS[3], KEYS[4], ARGV[2])
local v = tonumber(ARGV[3])
if k == 0 then
  local cp = tonumber(redis.call('GET', KEYS[1]))
  if cp < tonumber(ARGV[5]) or (ARGV[6] ~= '' and cp >= tonumber(ARGV[6])) then
    return {0, 0}
  end
elseif k ~= v then
  return {0, k}
elseif whole then
  return {2, k}
end
redis.call('SET', KEYS[3], ARGV[4])
redis.call('DEL', KEYS[4])
local i = 7
while i <= #ARGV do
  local j = math.min(i + 999, #ARGV)
  redis.call('ZADD', KEYS[4], unpack(ARGV, i, j))
  i = j + 1
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return {1, v}
"""
)

# KEYS checkpoint, index; ARGV the index sentinel: the checkpoint, nil without its index.
_CHECKPOINT = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return false end
return redis.call('GET', KEYS[1])
"""

#: Loads one wallet's rows from the log, in version order (the projection attaches it).
RowLoader = Callable[[str], Awaitable[Sequence[TxRow]]]


class _Lost(NamedTuple):
    """A balance read's answer for a wallet the model holds at ``version`` but whose
    balance key is missing: the read is answered from the log."""

    version: int


class _Unknown(NamedTuple):
    """A balance read's answer for a wallet the model does not know (none of its keys),
    read with the checkpoint ``checkpoint``: the log says whether the model lost it."""

    checkpoint: int


class _Lookup:
    """A log read of an unknown wallet's stream in flight, shared by the reads that find
    the wallet unknown meanwhile. ``stale``: a batch applied an event of the wallet since
    it started (its answer may predate that event: not remembered, not joined)."""

    __slots__ = ("checkpoint", "epoch", "stale", "task")

    def __init__(self, task: asyncio.Future[Sequence[TxRow]], checkpoint: int, epoch: int) -> None:
        self.task = task
        self.checkpoint = checkpoint
        self.epoch = epoch
        self.stale = False


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


#: the elements of a statement member (:func:`_member`) of this model's version
_MEMBER_FIELDS = 14


def _member(row: TxRow) -> bytes:
    return orjson.dumps(
        [
            row.version,
            row.position,
            row.type,
            row.amount_cents,
            row.balance_cents,
            row.in_play_cents,
            row.bet_id,
            row.race_id,
            row.reason,
            row.reference,
            row.recorded_at,
            row.stake_cents,
            row.book,
            row.market_id,
        ]
    )


def _transaction(member: bytes) -> WalletTransaction:
    v = orjson.loads(member)
    if len(v) != _MEMBER_FIELDS:  # another version's (the projection rebuilds them)
        raise ReadModelUnavailable("the wallet read model holds another version's statement")
    return WalletTransaction(
        version=v[0],
        position=v[1],
        type=v[2],
        amount_cents=v[3],
        balance_cents=v[4],
        in_play_cents=v[5],
        bet_id=v[6],
        race_id=v[7],
        reason=v[8],
        reference=v[9],
        recorded_at=v[10],
        stake_cents=v[11],
        book=v[12],
        market_id=v[13],
    )


class RedisWalletStorage:
    """Wallet balances and transactions in Redis (redis-py asyncio, hiredis parser)."""

    kind = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        client: aioredis.Redis | None = None,
    ) -> None:
        self._url = url
        self._prefix = prefix
        self._client = client
        self._own_client = client is None
        self._checkpoint_key = f"{prefix}wallets:checkpoint".encode()
        self._index_key = f"{prefix}wallets:index".encode()
        self._balance_prefix = f"{prefix}wallet:".encode()
        self._tx_prefix = f"{prefix}wallet-tx:".encode()
        self._scripts: dict[str, Any] = {}
        #: the checkpoint this process last wrote (reads compare it with the stored one)
        self._written = 0
        self._suspect = False
        #: bumped by reset(): a read that spans one cannot judge the checkpoint
        self._epoch = 0
        self._pending: list[tuple[str, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._load: RowLoader | None = None
        #: wallets found not whole, waiting for their repair: id → version held
        self._lost: dict[str, int] = {}
        #: unknown wallets the log held nothing of at or before the checkpoint of the
        #: read that looked (LRU, at most ABSENT_MAX): id → the position of the wallet's
        #: first event as the log had it then, None if it had none. Valid for reads with
        #: a checkpoint before that position, until a batch applies an event of the
        #: wallet (only a batch moves the checkpoint past its first event) or a reset.
        self._absent: OrderedDict[str, int | None] = OrderedDict()
        #: log reads of unknown wallets in flight (one per wallet, shared)
        self._looking: dict[str, _Lookup] = {}
        self._repairer: asyncio.Task[None] | None = None
        #: the server's ``maxmemory-policy`` as read at open (None: could not be read)
        self.eviction_policy: str | None = None
        #: wallets whose keys were rewritten from the log (for tests and metrics)
        self.repairs = 0
        #: reads answered from the log because the wallet's keys were missing
        self.log_reads = 0

    @property
    def prefix(self) -> str:
        return self._prefix

    def key_pattern(self) -> str:
        """A SCAN pattern matching every key of this read model (and nothing else of
        the prefix's other read models)."""
        return _glob_escape(self._prefix) + "wallet*"

    def attach_log(self, load: RowLoader) -> None:
        """Answer and repair wallets whose keys are missing with ``load(wallet_id)``
        (the wallet's rows from the log, in version order). Without it, such a wallet's
        balance reads as ``None`` and its statement as whatever is left, and a wallet
        the model does not know is not looked up in the log."""
        self._load = load

    async def open(self) -> None:
        if self._client is None:
            self._client = aioredis.Redis.from_url(
                self._url, socket_timeout=10, socket_connect_timeout=5
            )
        if not self._scripts:
            client = self._client
            self._scripts = {
                name: client.register_script(text)
                for name, text in (
                    ("apply", _APPLY),
                    ("balances", _READ_BALANCES),
                    ("page", _READ_PAGE),
                    ("repair", _REPAIR),
                    ("checkpoint", _CHECKPOINT),
                )
            }
            await self._check_eviction_policy()
            stored = await self.checkpoint()
            self._written = stored or 0
            self._suspect = False
            if stored is None:
                await self._note_other_version()

    async def _note_other_version(self) -> None:
        """Log why a model with an index but no checkpoint of this version is about to
        be rebuilt: a model of the release before versions (its index's sentinel is
        ``\\0checkpoint``), or one that lost its checkpoint. Two O(1) commands."""
        client = self._redis()
        try:
            has_index = await client.exists(self._index_key)
            old = has_index and await client.hexists(self._index_key, _SENTINEL_V1)
        except (RedisError, OSError):
            return  # the projection's load reports the failure
        if has_index:
            log.warning(
                "wallet read model under prefix %r: %s; rebuilding it from the log "
                "(model version %d)",
                self._prefix,
                "it is of version 1 (no book on its lines)" if old else "its checkpoint is gone",
                MODEL_VERSION,
            )

    async def _check_eviction_policy(self) -> None:
        """Warn when the server may evict this model's keys (``allkeys-*``).

        A warning, not a refusal: lost keys are detected and repaired from the log, so
        eviction costs log reads and repairs (a full rebuild if the index goes), never
        a wrong answer; and the policy of a shared or managed Redis is often not ours to
        change. ``CONFIG`` may be disabled (managed services): that is a warning too."""
        try:
            answer = await self._redis().config_get("maxmemory-policy")
        except (RedisError, OSError) as exc:
            log.warning(
                "wallet read model: cannot read Redis maxmemory-policy (%s); make sure it "
                "is noeviction or volatile-*: an allkeys-* policy evicts read model keys, "
                "which are then rebuilt from the log",
                exc,
            )
            self.eviction_policy = None
            return
        policy = answer.get("maxmemory-policy")
        self.eviction_policy = policy
        if policy in EVICTING_POLICIES:
            log.warning(
                "wallet read model: Redis maxmemory-policy is %s, so Redis may EVICT the "
                "wallet read model's keys under memory pressure. Lost keys are detected "
                "and rebuilt from the log, at the cost of log reads and repairs (and a full "
                "rebuild if the index key goes). Set maxmemory-policy to noeviction (or a "
                "volatile-* policy: these keys have no TTL) or give this prefix (%s) a "
                "Redis of its own.",
                policy,
                self._prefix,
            )

    async def close(self) -> None:
        flusher, self._flusher = self._flusher, None
        if flusher is not None and not flusher.done():
            flusher.cancel()
        repairer, self._repairer = self._repairer, None
        if repairer is not None and not repairer.done():
            repairer.cancel()
        self._lost.clear()
        self._forget_all_absent()
        for _, fut in self._pending:
            if not fut.done():
                fut.set_exception(ReadModelUnavailable("the wallet read model is closed"))
        self._pending = []
        client, self._client, self._scripts = self._client, None, {}
        if client is not None and self._own_client:
            await client.aclose()

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise ReadModelUnavailable("the wallet read model is not open")
        return self._client

    def _script(self, name: str) -> Any:
        self._redis()
        return self._scripts[name]

    def suspect(self) -> bool:
        return self._suspect

    def resume_at(self, checkpoint: int) -> None:
        """Another writer of this model stored ``checkpoint``: the reads compare the
        stored one with it from now on (one behind it is a wipe). Its batches may have
        applied events of wallets this process remembers the log held nothing of (an
        entry forgotten only when a batch of this process applies one): forget them all,
        and the lookups in flight."""
        self._written = checkpoint
        self._forget_all_absent()

    def _saw_checkpoint(self, raw: Any, epoch: int, written: int) -> bool:
        """Whether the stored checkpoint ``raw`` disagrees with ``written``, the last
        one this process had written when it sent the read (in ``epoch``). It can be
        ahead (a script ran meanwhile); missing or behind means the content was wiped
        or replaced."""
        if epoch != self._epoch:
            return False  # read across our own reset: says nothing
        return (raw is None and written > 0) or (raw is not None and int(raw) < written)

    async def checkpoint(self) -> int | None:
        """The stored checkpoint; ``None`` also when the index is missing (an evicted
        or deleted index makes the content untrustworthy, as a flush does)."""
        epoch, written = self._epoch, self._written
        script = self._script("checkpoint")
        try:
            raw = await script(keys=[self._checkpoint_key, self._index_key], args=[INDEX_SENTINEL])
        except (RedisError, OSError) as exc:
            raise ReadModelUnavailable(f"redis: {exc}") from exc
        if epoch == self._epoch:
            self._suspect = self._saw_checkpoint(raw, epoch, written)
        return None if raw is None else int(raw)

    async def apply(self, rows: Sequence[TxRow], expected: int, new: int) -> None:
        keys: list[bytes] = [self._checkpoint_key, self._index_key]
        args: list[Any] = [INDEX_SENTINEL, str(expected), str(new)]
        by_wallet: dict[str, list[TxRow]] = {}
        for row in rows:
            by_wallet.setdefault(row.wallet_id, []).append(row)
        latest = latest_per_wallet(rows)
        # before the write: once it lands, the model may hold (and then lose) a wallet
        # the log had nothing of when a lookup read it
        self._forget_absent(by_wallet)
        for wallet_id, wallet_rows in by_wallet.items():
            wid = wallet_id.encode()
            keys.append(self._balance_prefix + wid)
            keys.append(self._tx_prefix + wid)
            args.append(wid)
            args.append(_balance_value(latest[wallet_id]))
            args.append(len(wallet_rows))
            for row in wallet_rows:
                args.append(row.version)
                args.append(_member(row))
        script = self._script("apply")
        try:
            answer = await script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise ReadModelUnavailable(f"redis: {exc}") from exc
        if int(answer[0]) != 1:
            found = int(answer[1]) if len(answer) > 1 else None
            raise CheckpointConflict(CONSUMER_NAME, expected, found)
        self._written = new

    async def reset(self) -> None:
        client = self._redis()
        self._epoch += 1
        self._lost.clear()
        self._forget_all_absent()
        try:
            await client.delete(self._checkpoint_key)
            batch: list[bytes] = []
            async for key in client.scan_iter(match=self.key_pattern(), count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    await client.unlink(*batch)
                    batch = []
            if batch:
                await client.unlink(*batch)
        except (RedisError, OSError) as exc:
            raise ReadModelUnavailable(f"redis: {exc}") from exc
        self._written = 0
        self._suspect = False
        self._epoch += 1

    # ----------------------------------------------------------------- reads
    async def balance(self, wallet_id: str) -> WalletBalance | None:
        self._redis()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((wallet_id, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_reads())
        found = await future
        if type(found) is _Lost:
            self.log_reads += 1
            row = (await self._rows_from_log(wallet_id, found.version))[-1]
            return WalletBalance(
                wallet_id, row.balance_cents, row.in_play_cents, row.version, row.position
            )
        if type(found) is _Unknown:
            rows = await self._rows_passed(wallet_id, found.checkpoint)
            if not rows:
                return None
            row = rows[-1]
            return WalletBalance(
                wallet_id, row.balance_cents, row.in_play_cents, row.version, row.position
            )
        return found

    async def _flush_reads(self) -> None:
        """Answer the pending balance reads, one script call per round (the reads that
        arrive during a round go in the next one)."""
        try:
            while self._pending:
                # at most _READ_BATCH per call (Lua's unpack has a stack limit)
                pending = self._pending[:_READ_BATCH]
                del self._pending[:_READ_BATCH]
                wallets = list(dict.fromkeys(wallet_id for wallet_id, _ in pending))
                keys = [self._checkpoint_key, self._index_key]
                args: list[Any] = [INDEX_SENTINEL, self._balance_prefix, self._tx_prefix]
                args += [wallet_id.encode() for wallet_id in wallets]
                epoch, written = self._epoch, self._written
                try:
                    values = await self._script("balances")(keys=keys, args=args)
                except (RedisError, OSError, ReadModelUnavailable) as exc:
                    error = ReadModelUnavailable(f"redis: {exc}")
                    error.__cause__ = exc
                    for _, fut in pending:
                        if not fut.done():
                            fut.set_exception(error)
                    continue
                if self._saw_checkpoint(values[0], epoch, written):
                    self._suspect = True
                # a wallet the model does not know, read with a checkpoint: the log
                # decides whether it was lost (nil checkpoint: wiped, rebuilt anyway)
                unknown = (
                    _Unknown(int(values[0]))
                    if self._load is not None and values[0] is not None
                    else None
                )
                loads = orjson.loads
                answers: dict[str, Any] = {}
                for wallet_id, raw in zip(wallets, values[1:], strict=True):
                    if type(raw) is list:  # known but not whole
                        version, raw = int(raw[0]), raw[1]
                        self._report_lost(wallet_id, version)
                        if raw is None:
                            answers[wallet_id] = _Lost(version) if self._load else None
                            continue
                    answers[wallet_id] = (
                        unknown if raw is None else WalletBalance(wallet_id, *loads(raw))
                    )
                for wallet_id, fut in pending:
                    if not fut.done():  # else the caller gave up (cancelled)
                        fut.set_result(answers[wallet_id])
        finally:
            self._flusher = None

    async def transactions(
        self, wallet_id: str, limit: int, before_version: int | None, book: str | None = None
    ) -> list[WalletTransaction]:
        """A statement page. With ``book``, the wallet's members are looked at newest
        first, in steps growing from twice the page's size, at most :data:`FILTER_CHUNK`
        a script call, until the page is full or none are left: a book's line is a
        member ending with its book and market (as :func:`_member` writes them), so
        nothing is decoded to find it. Its cost grows with the lines it passes over;
        memory is one step. Without a checkpoint of this version (being rebuilt, or
        another version's keys) the page comes from the log."""
        check_page(limit, before_version, book)
        high = "+inf" if before_version is None else f"({before_version}"
        suffix = b"" if book is None else b"," + orjson.dumps([book, book_market(book)])[1:]
        wid = wallet_id.encode()
        keys = [self._checkpoint_key, self._index_key, self._balance_prefix + wid]
        keys.append(self._tx_prefix + wid)
        script = self._script("page")
        members: list[bytes] = []
        first: int | None = None
        while True:
            epoch, written = self._epoch, self._written
            args = [INDEX_SENTINEL, wid, high, limit - len(members), suffix, FILTER_CHUNK]
            try:
                checkpoint, lost, found, low = await script(keys=keys, args=args)
            except (RedisError, OSError) as exc:
                raise ReadModelUnavailable(f"redis: {exc}") from exc
            if self._saw_checkpoint(checkpoint, epoch, written):
                self._suspect = True
            if checkpoint is None and self._load is not None:
                # no checkpoint of this version: the keys are being rebuilt (after a
                # flush), or are another version's, whose members this one cannot read
                self.log_reads += 1
                return _page(await self._log_rows(wallet_id), limit, before_version, book)
            lost = int(lost)
            if lost < 0 and self._load is not None and checkpoint is not None:
                rows = await self._rows_passed(wallet_id, int(checkpoint))
                return _page(rows, limit, before_version, book)
            if lost > 0 and self._load is not None:
                self._report_lost(wallet_id, lost)
                self.log_reads += 1
                rows = await self._rows_from_log(wallet_id, lost)
                return _page(rows, limit, before_version, book)
            at = -1 if checkpoint is None else int(checkpoint)
            if first is None:
                first = at
            elif at < first:
                # wiped (or replaced) between two calls: the rest is not this statement's
                raise ReadModelUnavailable("the wallet read model was wiped during the read")
            members += found
            if not low or len(members) >= limit:
                return [_transaction(m) for m in members]
            high = f"({int(low)}"

    # ----------------------------------------------------------------- repairs
    async def _log_rows(self, wallet_id: str) -> Sequence[TxRow]:
        """The wallet's whole stream from the log, as rows (one lookup);
        :class:`ReadModelUnavailable` if the log cannot be read."""
        if self._load is None:
            raise ReadModelUnavailable(f"wallet {wallet_id}'s keys are missing")
        try:
            return await self._load(wallet_id)
        except Exception as exc:
            raise ReadModelUnavailable(f"reading wallet {wallet_id} from the log: {exc}") from exc

    async def _rows_from_log(self, wallet_id: str, version: int) -> list[TxRow]:
        """The wallet's rows up to ``version`` (what the model holds of it), from the log;
        :class:`ReadModelUnavailable` if the log cannot be read or lacks them."""
        return _up_to(wallet_id, await self._log_rows(wallet_id), version)

    async def _rows_passed(self, wallet_id: str, checkpoint: int) -> list[TxRow]:
        """For a wallet the model does not know, read with ``checkpoint``: its rows from
        the log at or before it. None: the model has not reached the wallet, or there is
        no such wallet (remembered: the next reads of it do not ask the log). Some: the
        model passed them, so it lost the wallet (all its keys went): its repair is
        queued and the rows are what the model would have shown."""
        absent = self._absent
        if wallet_id in absent:
            first = absent[wallet_id]
            if first is None or checkpoint < first:
                absent.move_to_end(wallet_id)
                return []
            del absent[wallet_id]  # the model passed its first event since
        stream = await self._look_up(wallet_id, checkpoint)
        rows = [row for row in stream if row.position <= checkpoint]
        if rows:
            self.log_reads += 1
            self._report_lost(wallet_id, rows[-1].version)
        return rows

    async def _look_up(self, wallet_id: str, checkpoint: int) -> Sequence[TxRow]:
        """The stream of an unknown wallet, read with ``checkpoint``, from the log: one
        read shared by the concurrent reads of the wallet, whose answer is remembered in
        ``_absent`` if the log had nothing of the wallet at or before ``checkpoint``."""
        lookup = self._looking.get(wallet_id)
        if lookup is None:
            task = asyncio.ensure_future(self._log_rows(wallet_id))
            lookup = _Lookup(task, checkpoint, self._epoch)
            self._looking[wallet_id] = lookup
            task.add_done_callback(lambda _: self._looked(wallet_id, lookup))
        # shielded: a caller that gives up does not cancel the others' read
        return await asyncio.shield(lookup.task)

    def _looked(self, wallet_id: str, lookup: _Lookup) -> None:
        """A lookup ended: remember a wallet the log had nothing of at or before the
        checkpoint of the read that started it (unless a batch applied an event of the
        wallet, or a reset ran, meanwhile)."""
        if self._looking.get(wallet_id) is lookup:
            del self._looking[wallet_id]
        task = lookup.task
        if task.cancelled() or task.exception() is not None:
            return  # (exception() also marks it retrieved when every reader gave up)
        if lookup.stale or lookup.epoch != self._epoch:
            return
        stream = task.result()
        first = stream[0].position if stream else None
        if first is not None and first <= lookup.checkpoint:
            return  # lost, not absent: being repaired
        absent = self._absent
        absent[wallet_id] = first
        absent.move_to_end(wallet_id)
        while len(absent) > ABSENT_MAX:
            absent.popitem(last=False)

    def _forget_absent(self, wallet_ids: Iterable[str]) -> None:
        """A batch applies events of ``wallet_ids``: what the log said of them no longer
        holds (lookups in flight included)."""
        absent, looking = self._absent, self._looking
        if not absent and not looking:
            return
        for wallet_id in wallet_ids:
            absent.pop(wallet_id, None)
            lookup = looking.pop(wallet_id, None)
            if lookup is not None:
                lookup.stale = True

    def _forget_all_absent(self) -> None:
        self._absent.clear()
        for lookup in self._looking.values():
            lookup.stale = True
        self._looking.clear()

    def _report_lost(self, wallet_id: str, version: int) -> None:
        """Queue a repair of ``wallet_id``, found not whole at ``version``."""
        if self._load is None or version < 1:
            return
        self._lost[wallet_id] = version
        if self._repairer is None:
            self._repairer = asyncio.create_task(self._repair_lost())

    async def _repair_lost(self) -> None:
        """Repair the queued wallets one by one (a failed repair is dropped: the next
        read that finds the wallet not whole queues it again)."""
        try:
            while self._lost:
                wallet_id = next(iter(self._lost))
                version = self._lost.pop(wallet_id)
                try:
                    await self._repair(wallet_id, version)
                except Exception as exc:
                    log.warning("wallet read model: repair of %s failed: %s", wallet_id, exc)
        finally:
            self._repairer = None

    async def _repair(self, wallet_id: str, version: int) -> None:
        """Rewrite a wallet's keys from the log, if the model still holds it at
        ``version`` (else at the version it holds now, a few times at most)."""
        wid = wallet_id.encode()
        keys = [self._checkpoint_key, self._index_key, self._balance_prefix + wid]
        keys.append(self._tx_prefix + wid)
        for _ in range(3):
            stream = await self._log_rows(wallet_id)
            rows = _up_to(wallet_id, stream, version)
            after = stream[version].position if len(stream) > version else ""
            args: list[Any] = [INDEX_SENTINEL, wid, version, _balance_value(rows[-1])]
            args += [rows[-1].position, after]
            for row in rows:
                args.append(row.version)
                args.append(_member(row))
            try:
                done, held = await self._script("repair")(keys=keys, args=args)
            except (RedisError, OSError) as exc:
                raise ReadModelUnavailable(f"redis: {exc}") from exc
            if int(done) == 1:
                self.repairs += 1
                log.warning(
                    "wallet read model: wallet %s had lost keys (evicted or deleted; "
                    "maxmemory-policy %s); rewrote them from the log up to version %d",
                    wallet_id,
                    self.eviction_policy or "unknown",
                    version,
                )
            if int(done) != 0 or int(held) == 0:
                return  # repaired, whole already, or wiped (the rebuild restores it)
            version = int(held)  # a batch moved it meanwhile: repair that version


def _up_to(wallet_id: str, stream: Sequence[TxRow], version: int) -> list[TxRow]:
    """The rows of versions 1..``version`` of a wallet's ``stream`` (what the model holds
    of it); :class:`ReadModelUnavailable` if the log lacks them."""
    rows = [row for row in stream if row.version <= version]
    if len(rows) != version or rows[-1].version != version:
        raise ReadModelUnavailable(
            f"the log holds {len(rows)} events of wallet {wallet_id}, the read model {version}"
        )
    return rows


def _page(
    rows: Sequence[TxRow], limit: int, before_version: int | None, book: str | None
) -> list[WalletTransaction]:
    """A statement page, newest first, of a wallet's ``rows`` from the log (``book``: only
    that book's lines)."""
    page = [
        row
        for row in reversed(rows)
        if (before_version is None or row.version < before_version)
        and (book is None or row.book == book)
    ]
    return [row.transaction() for row in page[:limit]]


def _balance_value(row: TxRow) -> bytes:
    return orjson.dumps([row.balance_cents, row.in_play_cents, row.version, row.position])
