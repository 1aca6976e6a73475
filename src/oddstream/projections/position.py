"""The log position a read model includes, and waiting until it includes another
(read-your-writes: a command answers with its position, a read may wait for it)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class AppliedPosition:
    """Every event up to :attr:`value` is applied, none after."""

    def __init__(self) -> None:
        self.value = 0
        self._advanced = asyncio.Event()

    def advance(self, position: int) -> None:
        """Record that everything up to ``position`` is applied; wake the waiters."""
        self.value = position
        signal, self._advanced = self._advanced, asyncio.Event()
        signal.set()

    async def wait_for(
        self, position: int, timeout: float, *, nudge: Callable[[], None] | None = None
    ) -> bool:
        """Wait until ``position`` is applied; False on timeout. ``nudge`` is called
        before each wait (to hurry a projection that pauses between passes)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.value < position:
            if nudge is not None:
                nudge()
            left = deadline - loop.time()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):  # not wait_for: see eventstore/notify.py
                    await self._advanced.wait()
        return True
