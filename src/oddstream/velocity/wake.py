"""The velocity bus as a wake-up: an API process of services mode follows the log with
paced reads (``ODDSTREAM_FOLLOW_PACE_MS``), and a high-velocity event on its bus
(``high.>``) beyond what its odds view has read ends that follower's pace, so a price
change reaches the view (and its GraphQL subscribers) without waiting for it.

The log stays the only source of truth: nothing of the bus's event is applied, the
follower reads the log as ever. A message lost (the bus is at most once: a
:class:`~oddstream.velocity.Gap`) costs only the pace, never a change. Wake-ups
coalesce in the follower's :class:`~oddstream.eventstore.FollowerWake` (one pending at
most), so a flood of high events costs no more reads than one per page the follower
takes. See ``docs/services.md``, "Velocity tiers".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .bus import BusEvent, Subscription, VelocityBus
from .channels import tier_pattern

log = logging.getLogger(__name__)


class VelocityWake:
    """Hints ``hint(position)`` (a follower's :meth:`~oddstream.consumers.ConsumerRunner.hint`)
    with the position of every event of the bus's high tier, from :meth:`start` to
    :meth:`stop`."""

    def __init__(self, bus: VelocityBus, hint: Callable[[int], bool]) -> None:
        self._bus = bus
        self._hint = hint
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        #: high events received, those that woke the follower, and gaps (lost messages:
        #: they cost the pace only)
        self.events = 0
        self.wakes = 0
        self.gaps = 0

    async def start(self) -> None:
        """Subscribe to the high tier and hint from a task of its own."""
        if self._task is not None:
            return
        self._sub = await self._bus.subscribe(tier_pattern("high"))
        self._task = asyncio.create_task(self._run(self._sub), name="velocity-wake")

    async def _run(self, sub: Subscription) -> None:
        async for item in sub:
            if isinstance(item, BusEvent):
                self.events += 1
                if self._hint(item.position):
                    self.wakes += 1
            else:  # a Gap: the follower reads the log anyway, a pace later at most
                self.gaps += 1

    async def stop(self) -> None:
        """Unsubscribe and end the task."""
        if self._sub is not None:
            self._sub.close()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
            if not task.cancelled() and task.exception() is not None:
                log.warning("velocity wake-up ended: %r", task.exception())
