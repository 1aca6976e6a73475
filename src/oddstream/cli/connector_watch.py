"""Progress of a connector's sink while it catches up on the log (``oddstream connectors
watch NAME`` and ``create FILE --wait``): a bar of its position against the log's head,
the lag, rows written per second and the time left, read from the connector's status
(``GET /connectors/{name}/status?details=true``) every ``interval`` seconds.

It ends when the sink is live (it has reached the head and follows it), and fails with
the reason when the connector or its task is FAILED, when it is paused, or at the
timeout."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

#: exit codes: caught up; failed, paused or not caught up in time
CAUGHT_UP, NOT_CAUGHT_UP = 0, 1


@dataclass(frozen=True)
class Sample:
    """One reading of a connector's status: Connect's states and the sink's figures
    (``None`` where the status has none: a paused, unassigned or refused connector)."""

    at: float  # seconds, monotonic
    connector: str
    task: str | None
    state: str | None  # the runner's: catching_up, live, retrying, failed…
    position: int | None
    lag: int | None
    rows: int | None
    trace: str | None
    error: str | None = None  # the sink's last error (an unreachable target's, say)

    @classmethod
    def of(cls, status: dict[str, Any], at: float) -> Sample:
        """A sample of ``GET /connectors/{name}/status?details=true``'s answer."""
        tasks = status.get("tasks") or []
        task = tasks[0] if tasks else {}
        details = status.get("details") or {}
        trace = status.get("connector", {}).get("trace") or task.get("trace")
        return cls(
            at=at,
            connector=str(status.get("connector", {}).get("state", "")),
            task=task.get("state"),
            state=details.get("state"),
            position=details.get("position"),
            lag=details.get("lag"),
            rows=details.get("rows_written"),
            trace=trace,
            error=details.get("last_error"),
        )

    @property
    def head(self) -> int | None:
        """The log's head when the status was read (the lag counts up to it)."""
        if self.position is None or self.lag is None:
            return None
        return self.position + self.lag

    @property
    def live(self) -> bool:
        return self.task == "RUNNING" and self.state == "live"

    @property
    def failed(self) -> bool:
        return self.connector == "FAILED" or self.task == "FAILED"

    @property
    def paused(self) -> bool:
        return self.connector == "PAUSED"


class Rate:
    """How fast a count grows, per second, over the last ``window`` seconds of samples
    (kept: only those, so memory stays bounded however long the watch). A count that
    goes back (the sink was restarted, counting from zero) starts the window again."""

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, at: float, value: int) -> float | None:
        """Add a sample; the rate over the window, ``None`` until two samples span time."""
        if self._samples and value < self._samples[-1][1]:
            self._samples.clear()
        self._samples.append((at, value))
        while len(self._samples) > 2 and at - self._samples[1][0] >= self.window:
            self._samples.popleft()
        first_at, first = self._samples[0]
        if at <= first_at:
            return None
        return (value - first) / (at - first_at)


def follow(
    name: str,
    read: Callable[[], dict[str, Any]],
    console: Console,
    *,
    interval: float = 0.5,
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Show connector ``name``'s progress, reading its status with ``read`` every
    ``interval`` seconds, until it is live (:data:`CAUGHT_UP`) or failed, paused or
    past ``timeout`` seconds (:data:`NOT_CAUGHT_UP`, with the reason printed)."""
    start = clock()
    rows_rate = Rate()
    first: Sample | None = None
    sample = Sample.of(read(), start)
    # "caught up" means live and past every event in the log at the first reading with a
    # position (a live runner may not yet have read an event appended just before it)
    target = sample.head
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("position {task.fields[position]} of {task.fields[head]}"),
        TextColumn("lag {task.fields[lag]}"),
        TextColumn("{task.fields[rate]} rows/s"),
        TimeRemainingColumn(),
        console=console,
        get_time=clock,
    ) as progress:
        bar = progress.add_task(escape(name), total=None, position="?", head="?", lag="?", rate="?")
        while True:
            if sample.position is not None and first is None:
                first = sample
            if target is None:
                target = sample.head
            rate = rows_rate.add(sample.at, sample.rows) if sample.rows is not None else None
            _show(progress, bar, name, sample, first, rate)
            if _reached(sample, target) or sample.failed or sample.paused:
                break
            if timeout is not None and sample.at - start >= timeout:
                break
            # never past the timeout, however long the interval
            wait = interval if timeout is None else min(interval, start + timeout - sample.at)
            sleep(wait)
            sample = Sample.of(read(), clock())
    return _outcome(name, sample, first, sample.at - start, timeout, target, console)


def _reached(sample: Sample, target: int | None) -> bool:
    """Live and at or past ``target`` (the head at the first reading, if it had one)."""
    if not sample.live:
        return False
    return target is None or (sample.position is not None and sample.position >= target)


def _show(
    progress: Progress,
    bar: Any,
    name: str,
    sample: Sample,
    first: Sample | None,
    rate: float | None,
) -> None:
    """The bar: the positions the sink has covered since the watch began, out of those
    between where it was then and the head now (which moves as the log grows)."""
    state = (sample.state or sample.task or sample.connector).lower().replace("_", " ")
    fields: dict[str, Any] = {"description": f"{escape(name)} [dim]{state}[/]"}
    if sample.position is not None and sample.head is not None and first is not None:
        base = first.position or 0
        fields |= {
            "completed": sample.position - base,
            "total": max(sample.head - base, 1),
            "position": f"{sample.position:,}",
            "head": f"{sample.head:,}",
            "lag": f"{sample.lag:,}",
        }
    if rate is not None:
        fields["rate"] = f"{rate:,.0f}"
    progress.update(bar, **fields)


def _outcome(
    name: str,
    sample: Sample,
    first: Sample | None,
    elapsed: float,
    timeout: float | None,
    target: int | None,
    console: Console,
) -> int:
    """Say how the watch ended; its exit code."""
    label = f"connector {escape(name)}"
    if _reached(sample, target):
        rows = ""
        if sample.rows is not None:
            rows = f"; {sample.rows:,} rows written since the service started the sink"
            if first is not None and first.rows is not None and sample.rows > first.rows:
                more = sample.rows - first.rows
                rows += f", {more:,} of them in {elapsed:.1f} s ({more / elapsed:,.0f} rows/s)"
        console.print(
            f"{label} caught up: live at position {sample.position:,}, lag {sample.lag:,}{rows}"
        )
        return CAUGHT_UP
    if sample.failed:
        which = "connector" if sample.connector == "FAILED" else "task"
        console.print(f"[red]error:[/] {label} FAILED ({which})")
        if sample.trace:
            console.print(escape(sample.trace))
        return NOT_CAUGHT_UP
    if sample.paused:
        console.print(
            f"[red]error:[/] {label} is PAUSED: it will not catch up until resumed"
            f" (oddstream connectors resume {escape(name)})"
        )
        return NOT_CAUGHT_UP
    where = f"lag {sample.lag:,}" if sample.lag is not None else "no position yet"
    console.print(
        f"[red]error:[/] {label} not caught up after {elapsed:.1f} s (--timeout {timeout}): "
        f"{(sample.state or sample.task or sample.connector).lower()}, {where}"
    )
    if sample.error:
        console.print(f"last error: {escape(sample.error)}")
    return NOT_CAUGHT_UP


__all__ = ["CAUGHT_UP", "NOT_CAUGHT_UP", "Rate", "Sample", "follow"]
