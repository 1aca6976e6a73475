"""A position that moves and the tasks waiting for it to move (no polling).

One primitive serves both sides of the log: the store's committed head (adapters advance
it after a commit: SQLite from the writer, PostgreSQL from LISTEN) and every consumer's
applied position (read-your-writes waits on it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class Watermark:
    """A position and its waiters: :meth:`advance` moves it up and wakes them."""

    def __init__(self, position: int = 0) -> None:
        self._position = position
        self._event = asyncio.Event()

    @property
    def position(self) -> int:
        return self._position

    def advance(self, position: int) -> None:
        """Record that ``position`` is reached (a lower one is ignored); wake waiters."""
        if position > self._position:
            self._position = position
            self.poke()

    def reset(self, position: int = 0) -> None:
        """Move the position anywhere, down included (a consumer starting a rebuild)."""
        self._position = position
        self.poke()

    def poke(self) -> None:
        """Wake all waiters without a new position (used on close and reconnects)."""
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_beyond(self, position: int, timeout: float | None) -> bool:
        """Wait until a position above ``position`` is reached, or ``timeout`` passes
        (or a :meth:`poke`). Returns whether such a position is reached.

        For the store's head a ``False`` only means "check the database": the
        watermark can lag behind writers in other processes.
        """
        while self._position <= position:
            event = self._event
            if timeout is None:
                await event.wait()
                return self._position > position
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that arrives as the event fires, and the cancelled waiter never ends
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await event.wait()
            return self._position > position
        return True

    async def wait_for(
        self, position: int, timeout: float, *, nudge: Callable[[], None] | None = None
    ) -> bool:
        """Wait until ``position`` is reached; False when ``timeout`` passed first.
        ``nudge`` is called before each wait (to hurry a consumer that lingers)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._position < position:
            if nudge is not None:
                nudge()
            left = deadline - loop.time()
            if left <= 0:
                return False
            await self.wait_beyond(self._position, left)
        return True
