"""What the in-memory read models share to stay bounded and start from a snapshot: which
entities that are over they still hold (:class:`Finished`), how one let go is read back
from its stream (:class:`ReadBack`), and how a snapshot says what shape it holds
(:func:`snapshot_header`).

The tote view (races) and the odds view (markets) use them alike: every entity that is
not over stays in memory, and the last ``keep`` that are over; an older one leaves the
listing and is read from its stream when asked for, the last few reads kept, concurrent
reads of one entity sharing one read of its stream.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

import msgspec

K = TypeVar("K")
V = TypeVar("V")


def snapshot_header(name: str, shape: Any) -> bytes:
    """A snapshot's first bytes: ``name:`` and a fingerprint of the JSON schema of
    ``shape`` (the type of what the snapshot holds), then a newline. A release that
    changes the state's types changes the fingerprint, and its older snapshots are then
    replayed, not misread."""
    schema = msgspec.json.encode(msgspec.json.schema(shape))
    return f"{name}:{hashlib.sha256(schema).hexdigest()[:16]}\n".encode()


class Finished(Generic[K]):
    """The keys of the entities that are over, oldest first; past ``keep`` of them, the
    oldest are to be let go."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._keys: OrderedDict[K, None] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[K]:
        return iter(self._keys)

    def add(self, key: K) -> None:
        """``key`` is over (a key already there keeps its place)."""
        if key not in self._keys:
            self._keys[key] = None

    def discard(self, key: K) -> None:
        self._keys.pop(key, None)

    def clear(self) -> None:
        self._keys.clear()

    def reset(self, keys: Iterable[K]) -> None:
        """Hold ``keys`` (oldest first) instead (a snapshot's)."""
        self._keys = OrderedDict.fromkeys(keys)

    def past_keep(self) -> list[K]:
        """Take out and answer the oldest keys past ``keep`` (the ones to let go)."""
        gone: list[K] = []
        while len(self._keys) > self.keep:
            gone.append(self._keys.popitem(last=False)[0])
        return gone


class _Load(Generic[V]):
    """A read of one entity's stream under way, and the readers waiting for it."""

    __slots__ = ("future", "stale", "waiters")

    def __init__(self, future: asyncio.Future[V | None]) -> None:
        self.future = future
        #: the entity changed (:meth:`ReadBack.drop`) while it was read: the answer may
        #: predate the change, so it is not kept nor given to a reader that comes after
        self.stale = False
        self.waiters = 0


class ReadBack(Generic[K, V]):
    """Entities let go, read back from their streams: the last ``cache`` reads of ones
    that change no more are kept (most recently read last), and concurrent reads of one
    entity share one read — but never one begun before the entity last changed."""

    def __init__(self, cache: int) -> None:
        self._cache = cache
        self._kept: OrderedDict[K, V] = OrderedDict()
        self._loading: dict[K, _Load[V]] = {}

    def drop(self, key: K) -> None:
        """Forget a read of ``key`` (it changed, or is held in memory again), and any
        read of it under way (a reader after this reads afresh; the answer is not kept)."""
        self._kept.pop(key, None)
        load = self._loading.pop(key, None)
        if load is not None:
            load.stale = True

    def clear(self) -> None:
        self._kept.clear()
        for load in self._loading.values():
            load.stale = True
        self._loading.clear()

    def __len__(self) -> int:
        return len(self._kept)

    async def get(
        self,
        key: K,
        read: Callable[[], Awaitable[V | None]],
        keep: Callable[[V], bool],
    ) -> V | None:
        """The entity ``key``: a kept read, else ``read()`` (shared with any read of it
        under way, begun since it last changed); the answer is kept when
        ``keep(answer)`` (an entity that may still change is read afresh each time).
        ``None``: no such entity."""
        value = self._kept.get(key)
        if value is not None:
            self._kept.move_to_end(key)
            return value
        load = self._loading.get(key)
        if load is None:
            load = self._loading[key] = _Load(asyncio.ensure_future(read()))
        load.waiters += 1
        try:
            value = await asyncio.shield(load.future)
        finally:
            # until its last reader has its answer, a change still marks the read stale
            load.waiters -= 1
            if not load.waiters and self._loading.get(key) is load:
                del self._loading[key]
        if value is not None and not load.stale and keep(value):
            self._kept[key] = value
            while len(self._kept) > self._cache:
                self._kept.popitem(last=False)
        return value
