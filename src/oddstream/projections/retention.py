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


class ReadBack(Generic[K, V]):
    """Entities let go, read back from their streams: the last ``cache`` reads of ones
    that change no more are kept (most recently read last), and concurrent reads of one
    entity share one read."""

    def __init__(self, cache: int) -> None:
        self._cache = cache
        self._kept: OrderedDict[K, V] = OrderedDict()
        self._loading: dict[K, asyncio.Future[V | None]] = {}

    def drop(self, key: K) -> None:
        """Forget a read of ``key`` (it changed, or is held in memory again)."""
        self._kept.pop(key, None)

    def clear(self) -> None:
        self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)

    async def get(
        self,
        key: K,
        read: Callable[[], Awaitable[V | None]],
        keep: Callable[[V], bool],
    ) -> V | None:
        """The entity ``key``: a kept read, else ``read()`` (shared with any read of it
        under way); the answer is kept when ``keep(answer)`` (an entity that may still
        change is read afresh each time). ``None``: no such entity."""
        value = self._kept.get(key)
        if value is not None:
            self._kept.move_to_end(key)
            return value
        loading = self._loading.get(key)
        if loading is None:
            loading = self._loading[key] = asyncio.ensure_future(read())
            loading.add_done_callback(lambda _: self._loading.pop(key, None))
        value = await asyncio.shield(loading)
        if value is not None and keep(value):
            self._kept[key] = value
            while len(self._kept) > self._cache:
                self._kept.popitem(last=False)
        return value
