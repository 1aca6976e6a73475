"""Replays of one dead letter by two operators or processes at once, or by one holding a
stale copy of it: the letter is taken in once (its replay claims it first)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from oddstream.application.quotes import QuoteIngest, json_messages
from oddstream.domain.deadletters import DeadLetter
from oddstream.runtime import deadletters as dl
from oddstream.runtime.deadletters import (
    DeadLetterStore,
    LetterBusy,
    LetterResolved,
    ReplayAnswer,
)

from .test_ingest import started, updated


def renamed(quote_id: str, name: str) -> bytes:
    body = json.loads(updated(quote_id))
    body["products"][0]["name"] = name
    return json.dumps(body).encode()


async def letter_for_update(store: Any, quote_id: str) -> DeadLetter:
    """An update dead-lettered as ``unknown_quote``, then its quote started."""
    ingest = QuoteIngest(store)
    (o,) = await ingest.ingest(list(json_messages(updated(quote_id))))
    assert o.reason == "unknown_quote"
    await ingest.ingest(list(json_messages(started(quote_id))))
    return await DeadLetterStore(store).get(o.letter_id)


async def test_a_stale_copy_of_a_resolved_letter_is_not_replayed_again(store_factory: Any):
    """Operators A and B both read the letter; A replays it, a newer update of the quote
    arrives, then B replays: B's copy is stale, and taking the update in again would
    store it a second time (it is no longer the quote's latest event)."""
    a, b = await store_factory(), await store_factory()
    try:
        letter_a = await letter_for_update(a, "stale")
        letter_b = await DeadLetterStore(b).get(letter_a.letter_id)
        done = await DeadLetterStore(a).replay(
            letter_a, {"quotes": QuoteIngest(a, DeadLetterStore(a)).replay}
        )
        assert done.status == "resolved"
        await QuoteIngest(a).ingest(list(json_messages(renamed("stale", "newer"))))
        assert await a.stream_version("quote-stale") == 3
        with pytest.raises(LetterResolved):
            await DeadLetterStore(b).replay(
                letter_b, {"quotes": QuoteIngest(b, DeadLetterStore(b)).replay}
            )
        assert await a.stream_version("quote-stale") == 3
    finally:
        await a.close()
        await b.close()


async def test_two_replays_at_once_take_the_letter_in_once(store_factory: Any):
    a, b = await store_factory(), await store_factory()
    try:
        letter = await letter_for_update(a, "twice")
        calls: list[bytes] = []
        gate = asyncio.Event()

        def replayer(store: Any) -> Any:
            ingest = QuoteIngest(store, DeadLetterStore(store))

            async def replay(raw: bytes) -> ReplayAnswer:
                calls.append(raw)
                await gate.wait()  # both replays are under way before either ends
                return await ingest.replay(raw)

            return replay

        async def replay(store: Any) -> DeadLetter:
            letters = DeadLetterStore(store)
            return await letters.replay(
                await letters.get(letter.letter_id), {"quotes": replayer(store)}
            )

        first = asyncio.create_task(replay(a))
        second = asyncio.create_task(replay(b))
        await asyncio.sleep(0.3)
        gate.set()
        results = await asyncio.gather(first, second, return_exceptions=True)
        assert len(calls) == 1
        assert sorted(type(r).__name__ for r in results) == ["DeadLetter", "LetterBusy"]
        busy = next(r for r in results if isinstance(r, LetterBusy))
        assert "being replayed by another process" in str(busy)
        assert await a.stream_version("quote-twice") == 2
        assert (await DeadLetterStore(a).get(letter.letter_id)).status == "resolved"
    finally:
        await a.close()
        await b.close()


async def test_a_replay_that_raises_ends_its_claim_and_a_lapsed_claim_is_taken_over(
    store: Any, monkeypatch: pytest.MonkeyPatch
):
    letter = await letter_for_update(store, "raises")
    letters = DeadLetterStore(store)

    async def broken(raw: bytes) -> ReplayAnswer:
        raise ConnectionError("target down")

    with pytest.raises(ConnectionError):
        await letters.replay(letter, {"quotes": broken})
    after = await letters.get(letter.letter_id)
    assert (after.status, after.reason, after.claim) == ("open", "replay_error", None)
    assert "target down" in after.message

    # a process that died mid-replay leaves its claim: it holds the letter until it lapses
    await letters._claim(after)
    with pytest.raises(LetterBusy):
        await letters.replay(after, {"quotes": QuoteIngest(store, letters).replay})
    monkeypatch.setattr(dl, "CLAIM_LAPSES_AFTER", 0)
    done = await letters.replay(after, {"quotes": QuoteIngest(store, letters).replay})
    assert done.status == "resolved"


async def test_a_lapsed_replay_ending_late_does_not_end_the_claim_that_took_over(
    store: Any, monkeypatch: pytest.MonkeyPatch
):
    """Review: A's replay outlives its claim (a target slow for 15 minutes), B claims the
    letter and is under way; then A ends (refused). A's ReplayFailed ended *any* claim,
    so B's was gone and a third replay C claimed the letter and took it in while B was
    still at it. An ending event ends its own claim only."""
    letter = await letter_for_update(store, "lapsed")
    letters = DeadLetterStore(store)
    gate_a, gate_b = asyncio.Event(), asyncio.Event()
    calls: list[str] = []
    entered = {who: asyncio.Event() for who in "ABC"}

    def slow(who: str, gate: asyncio.Event, answer: ReplayAnswer) -> Any:
        async def replay(raw: bytes) -> ReplayAnswer:
            calls.append(who)
            entered[who].set()
            await gate.wait()
            return answer

        return replay

    refused = ReplayAnswer("refused", refusal=dl.Refusal("still_bad", "", "A's answer"))
    a = asyncio.create_task(letters.replay(letter, {"quotes": slow("A", gate_a, refused)}))
    await asyncio.wait_for(entered["A"].wait(), 5)
    monkeypatch.setattr(dl, "CLAIM_LAPSES_AFTER", 0)  # A's claim lapses: B takes over
    b = asyncio.create_task(
        letters.replay(letter, {"quotes": slow("B", gate_b, ReplayAnswer("stored"))})
    )
    await asyncio.wait_for(entered["B"].wait(), 5)
    monkeypatch.setattr(dl, "CLAIM_LAPSES_AFTER", 900)
    gate_a.set()
    assert (await a).status == "open"  # A's refusal is recorded...
    now = await letters.get(letter.letter_id)
    assert now.reason == "still_bad"
    assert now.claim is not None  # ...but B's claim stands
    with pytest.raises(LetterBusy):
        await letters.replay(now, {"quotes": slow("C", asyncio.Event(), ReplayAnswer("stored"))})
    assert calls == ["A", "B"]
    gate_b.set()
    assert (await b).status == "resolved"
    assert (await letters.get(letter.letter_id)).claim is None
