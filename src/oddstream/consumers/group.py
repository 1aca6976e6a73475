"""The consumers of one process, started and stopped together, reported together."""

from __future__ import annotations

from collections.abc import Iterator

from .runner import ConsumerRunner, RunnerStatus


class ConsumerGroup:
    """Named runners: :meth:`start` in the order added, :meth:`stop` in reverse."""

    def __init__(self) -> None:
        self._runners: dict[str, ConsumerRunner] = {}

    def add(self, runner: ConsumerRunner) -> ConsumerRunner:
        """Add ``runner``; its consumer's name must be unique in the group."""
        if runner.name in self._runners:
            raise ValueError(f"a consumer named {runner.name!r} is already in the group")
        self._runners[runner.name] = runner
        return runner

    def __iter__(self) -> Iterator[ConsumerRunner]:
        return iter(list(self._runners.values()))

    def __getitem__(self, name: str) -> ConsumerRunner:
        return self._runners[name]

    async def start(self) -> None:
        for runner in self:
            await runner.start()

    async def stop(self) -> None:
        for runner in reversed(list(self)):
            await runner.stop()

    def statuses(self) -> list[RunnerStatus]:
        return [runner.status() for runner in self]
