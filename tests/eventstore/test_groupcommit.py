"""The group committer on its own (a fake database): how many appends queued by one
``append_many`` call are grouped, answered and failed."""

from __future__ import annotations

import asyncio

from oddstream.eventstore import AppendResult, NewEvent, StreamAppend, WrongExpectedVersion
from oddstream.eventstore.groupcommit import AppendJob, GroupCommitter, ProjectionJob
from oddstream.eventstore.prepare import PreparedPart, prepare_part


def _part(stream: str, n: int = 1) -> list[PreparedPart]:
    return [prepare_part(StreamAppend(stream, [NewEvent("T", {})] * n))]


class FakeDatabase:
    """Answers each append with its stream and the group it went in; refuses streams
    named ``stale-…`` with a wrong expected version."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []

    async def write_appends(self, group: list[AppendJob]) -> None:
        await asyncio.sleep(0)
        self.groups.append([job.parts[0].stream_id for job in group])
        number = len(self.groups)
        for job in group:
            stream = job.parts[0].stream_id
            if stream.startswith("stale-"):
                job.settle(WrongExpectedVersion(stream, 1, 2))
            else:
                job.settle([AppendResult(stream, number, number, number)])

    async def write_projection(self, job: ProjectionJob) -> None:
        job.settle(None)


async def test_many_appends_span_groups_and_come_back_in_order() -> None:
    db = FakeDatabase()
    committer = GroupCommitter(db.write_appends, db.write_projection, max_group_events=4)
    requests = [_part(f"s-{i}", 2) for i in range(5)]
    requests[2] = _part("stale-2", 2)
    outcomes = await committer.append_many(requests)
    await committer.stop()
    assert db.groups == [["s-0", "s-1"], ["stale-2", "s-3"], ["s-4"]]
    assert [o[0].stream_id if isinstance(o, list) else "error" for o in outcomes] == [
        "s-0",
        "s-1",
        "error",
        "s-3",
        "s-4",
    ]
    assert isinstance(outcomes[2], WrongExpectedVersion)
    assert [o[0].version for o in outcomes if isinstance(o, list)] == [1, 1, 2, 3]


async def test_many_appends_share_a_group_with_single_ones() -> None:
    db = FakeDatabase()
    committer = GroupCommitter(db.write_appends, db.write_projection)
    single = asyncio.ensure_future(committer.append(_part("one")))
    many = asyncio.ensure_future(committer.append_many([_part("m-1"), _part("m-2")]))
    await asyncio.gather(single, many)
    await committer.stop()
    assert db.groups == [["one", "m-1", "m-2"]]
    assert [r.stream_id for r in single.result()] == ["one"]


async def test_a_caller_that_stops_waiting_does_not_stop_the_committer() -> None:
    db = FakeDatabase()
    committer = GroupCommitter(db.write_appends, db.write_projection)
    abandoned = asyncio.ensure_future(committer.append_many([_part("a"), _part("b")]))
    await asyncio.sleep(0)
    abandoned.cancel()
    after = await committer.append_many([_part("c")])
    await committer.stop()
    assert [o[0].stream_id for o in after if isinstance(o, list)] == ["c"]
    # a queued append is not withdrawn when its caller stops waiting: it is committed
    # (with the next one), and its outcome goes nowhere
    assert db.groups == [["a", "b", "c"]]
    assert abandoned.cancelled()


async def test_nothing_to_append() -> None:
    db = FakeDatabase()
    committer = GroupCommitter(db.write_appends, db.write_projection)
    assert await committer.append_many([]) == []
    await committer.stop()
    assert db.groups == []
