"""In-process wake-ups for readers waiting on new positions (no polling)."""

from __future__ import annotations

import asyncio
import contextlib


class PositionNotifier:
    """Tracks the highest committed position this process knows of and wakes waiters.

    Adapters call :meth:`advance` after a commit (SQLite: from the writer thread via the
    loop; PostgreSQL: from the LISTEN connection). Waiters call :meth:`wait_beyond`.
    """

    def __init__(self) -> None:
        self._position = 0
        self._event = asyncio.Event()

    @property
    def position(self) -> int:
        return self._position

    def advance(self, position: int) -> None:
        """Record that ``position`` is committed; wake everyone waiting below it."""
        if position > self._position:
            self._position = position
            event, self._event = self._event, asyncio.Event()
            event.set()

    def poke(self) -> None:
        """Wake all waiters without a new position (used on close and reconnects)."""
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_beyond(self, position: int, timeout: float | None) -> bool:
        """Wait until a position above ``position`` is known, or ``timeout`` passes.

        Returns whether such a position is known. A return of ``False`` only means "check
        the database": the notifier can lag behind writers in other processes.
        """
        while self._position <= position:
            event = self._event
            if timeout is None:
                await event.wait()
                return self._position > position
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that arrives as the event fires, and the cancelled subscriber never ends
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await event.wait()
            return self._position > position
        return True
