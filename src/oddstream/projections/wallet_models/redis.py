"""The wallet read model in Redis (services mode: read by any number of API nodes).

Keys, under a prefix (default ``oddstream:``):

* ``<prefix>wallet:<id>``: a string, the JSON array ``[balance_cents, in_play_cents,
  version, position]`` (a string, not a hash, so that many wallets are one ``MGET``);
* ``<prefix>wallet-tx:<id>``: a sorted set, one member per event scored by its stream
  version; the member is the transaction as a JSON array, so adding the same event
  again changes nothing;
* ``<prefix>wallets:checkpoint``: the global position the content includes.

A batch is one Lua script: it compares the stored checkpoint with the one the projection
expects (missing counts as 0), and only then writes the balances, the transactions and
the new checkpoint. Redis runs a script alone, so a reader sees the batch whole or not
at all.

Balance reads are coalesced: the reads requested during one turn of the event loop go
out as one ``MGET`` (with the checkpoint key), and the next ones wait for its answer, so
64 concurrent callers cost one round trip, not 64.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .base import (
    CheckpointMismatch,
    ReadModelUnavailable,
    TxRow,
    WalletBalance,
    WalletTransaction,
    check_page,
    latest_per_wallet,
)

DEFAULT_PREFIX = "oddstream:"

# KEYS[1] checkpoint; then per wallet KEYS[k] balance, KEYS[k+1] transactions.
# ARGV[1] expected checkpoint, ARGV[2] new checkpoint; then per wallet: the balance
# value, the number n of transactions, n (score, member) pairs.
_APPLY = """
local cp = redis.call('GET', KEYS[1])
if cp == false then
  if ARGV[1] ~= '0' then return {0} end
elseif cp ~= ARGV[1] then
  return {0, cp}
end
local a = 3
local k = 2
while k <= #KEYS do
  redis.call('SET', KEYS[k], ARGV[a])
  local last = a + 1 + 2 * tonumber(ARGV[a + 1])
  local i = a + 2
  while i <= last do
    local j = math.min(i + 999, last)
    redis.call('ZADD', KEYS[k + 1], unpack(ARGV, i, j))
    i = j + 1
  end
  a = last + 1
  k = k + 2
end
redis.call('SET', KEYS[1], ARGV[2])
return {1}
"""


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


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
        ]
    )


def _transaction(member: bytes) -> WalletTransaction:
    v = orjson.loads(member)
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
        self._balance_prefix = f"{prefix}wallet:".encode()
        self._tx_prefix = f"{prefix}wallet-tx:".encode()
        self._script: Any = None
        #: the checkpoint this process last wrote (reads compare it with the stored one)
        self._written = 0
        self._suspect = False
        #: bumped by reset(): a read that spans one cannot judge the checkpoint
        self._epoch = 0
        self._pending: list[tuple[str, asyncio.Future[WalletBalance | None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    @property
    def prefix(self) -> str:
        return self._prefix

    def key_pattern(self) -> str:
        """A SCAN pattern matching every key of this read model (and nothing else of
        the prefix's other read models)."""
        return _glob_escape(self._prefix) + "wallet*"

    async def open(self) -> None:
        if self._client is None:
            self._client = aioredis.Redis.from_url(
                self._url, socket_timeout=10, socket_connect_timeout=5
            )
        if self._script is None:
            self._script = self._client.register_script(_APPLY)
            stored = await self.checkpoint()
            self._written = stored or 0
            self._suspect = False

    async def close(self) -> None:
        flusher, self._flusher = self._flusher, None
        if flusher is not None and not flusher.done():
            flusher.cancel()
        for _, fut in self._pending:
            if not fut.done():
                fut.set_exception(ReadModelUnavailable("the wallet read model is closed"))
        self._pending = []
        client, self._client, self._script = self._client, None, None
        if client is not None and self._own_client:
            await client.aclose()

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise ReadModelUnavailable("the wallet read model is not open")
        return self._client

    def suspect(self) -> bool:
        return self._suspect

    def _saw_checkpoint(self, raw: Any, epoch: int, written: int) -> bool:
        """Whether the stored checkpoint ``raw`` disagrees with ``written``, the last
        one this process had written when it sent the read (in ``epoch``). It can be
        ahead (a script ran meanwhile); missing or behind means the content was wiped
        or replaced."""
        if epoch != self._epoch:
            return False  # read across our own reset: says nothing
        return (raw is None and written > 0) or (raw is not None and int(raw) < written)

    async def checkpoint(self) -> int | None:
        epoch, written = self._epoch, self._written
        try:
            raw = await self._redis().get(self._checkpoint_key)
        except (RedisError, OSError) as exc:
            raise ReadModelUnavailable(f"redis: {exc}") from exc
        if epoch == self._epoch:
            self._suspect = self._saw_checkpoint(raw, epoch, written)
        return None if raw is None else int(raw)

    async def apply(self, rows: Sequence[TxRow], expected: int, new: int) -> None:
        keys: list[bytes] = [self._checkpoint_key]
        args: list[Any] = [str(expected), str(new)]
        by_wallet: dict[str, list[TxRow]] = {}
        for row in rows:
            by_wallet.setdefault(row.wallet_id, []).append(row)
        latest = latest_per_wallet(rows)
        for wallet_id, wallet_rows in by_wallet.items():
            wid = wallet_id.encode()
            keys.append(self._balance_prefix + wid)
            keys.append(self._tx_prefix + wid)
            last = latest[wallet_id]
            args.append(
                orjson.dumps([last.balance_cents, last.in_play_cents, last.version, last.position])
            )
            args.append(len(wallet_rows))
            for row in wallet_rows:
                args.append(row.version)
                args.append(_member(row))
        self._redis()
        try:
            answer = await self._script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise ReadModelUnavailable(f"redis: {exc}") from exc
        if int(answer[0]) != 1:
            found = int(answer[1]) if len(answer) > 1 else None
            raise CheckpointMismatch(expected, found)
        self._written = new

    async def reset(self) -> None:
        client = self._redis()
        self._epoch += 1
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
        future: asyncio.Future[WalletBalance | None] = asyncio.get_running_loop().create_future()
        self._pending.append((wallet_id, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_reads())
        return await future

    async def _flush_reads(self) -> None:
        """Answer the pending balance reads, one MGET per round (the reads that arrive
        during a round go in the next one)."""
        try:
            while self._pending:
                pending, self._pending = self._pending, []
                keys = [self._checkpoint_key]
                prefix = self._balance_prefix
                keys += [prefix + wallet_id.encode() for wallet_id, _ in pending]
                epoch, written = self._epoch, self._written
                try:
                    values = await self._redis().execute_command("MGET", *keys)
                except (RedisError, OSError, ReadModelUnavailable) as exc:
                    error = ReadModelUnavailable(f"redis: {exc}")
                    error.__cause__ = exc
                    for _, fut in pending:
                        if not fut.done():
                            fut.set_exception(error)
                    continue
                if self._saw_checkpoint(values[0], epoch, written):
                    self._suspect = True
                loads = orjson.loads
                for (wallet_id, fut), raw in zip(pending, values[1:], strict=True):
                    if fut.done():
                        continue  # the caller gave up (cancelled)
                    if raw is None:
                        fut.set_result(None)
                    else:
                        fut.set_result(WalletBalance(wallet_id, *loads(raw)))
        finally:
            self._flusher = None

    async def transactions(
        self, wallet_id: str, limit: int, before_version: int | None
    ) -> list[WalletTransaction]:
        check_page(limit, before_version)
        high = "+inf" if before_version is None else f"({before_version}"
        epoch, written = self._epoch, self._written
        try:
            async with self._redis().pipeline(transaction=False) as pipe:
                pipe.get(self._checkpoint_key)
                pipe.zrevrangebyscore(
                    self._tx_prefix + wallet_id.encode(), high, "-inf", start=0, num=limit
                )
                checkpoint, members = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise ReadModelUnavailable(f"redis: {exc}") from exc
        if self._saw_checkpoint(checkpoint, epoch, written):
            self._suspect = True
        return [_transaction(m) for m in members]
