"""The wire format's version: processes of two releases that cannot talk (a rolling
upgrade across a format change) say so, in both directions, instead of misreading each
other or failing with a bare decoding error."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import msgspec
import nats
import pytest
from nats.errors import NoRespondersError

from oddstream.cluster import wire
from oddstream.cluster.router import CommandsUnavailable, Router, command_subject
from oddstream.cluster.worker import Worker
from oddstream.config import Settings
from oddstream.eventstore import StoreUnavailable

PARTITIONS = 2


def _raw_request(version: Any, partition: int = 0) -> bytes:
    """A BET_WALLET request as ``version`` would send it (ours but for the version)."""
    req = wire.request(wire.Op.BET_WALLET, partition, 30.0, args=("race-r1", "b1"))
    return wire.encode(msgspec.structs.replace(req, v=version))


def test_messages_carry_the_version_first() -> None:
    req = wire.request(wire.Op.BET_WALLET, 0, 30.0, args=("race-r1", "b1"))
    assert msgspec.msgpack.decode(wire.encode(req))[0] == wire.WIRE_VERSION
    assert msgspec.msgpack.decode(wire.encode(wire.Reply(value="w")))[0] == wire.WIRE_VERSION
    assert wire.decode_request(wire.encode(req)) == req
    assert wire.decode_reply(wire.encode(wire.Reply(value="w"))).value == "w"


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (_raw_request(wire.WIRE_VERSION + 1), f"version {wire.WIRE_VERSION + 1}"),
        # a later release whose request this one cannot even decode
        (
            msgspec.msgpack.encode([wire.WIRE_VERSION + 1, {"op": "race"}]),
            f"version {wire.WIRE_VERSION + 1}",
        ),
        # a release before versions: its first element is the operation
        (msgspec.msgpack.encode(["bet_wallet", 0, 1e12, "", b"", None, [], ["r", "b"]]),
         "version 0 (before versions)"),
    ],
)  # fmt: skip
def test_a_request_of_another_version_is_refused_naming_both(data: bytes, named: str) -> None:
    with pytest.raises(wire.WireVersionError) as info:
        wire.decode_request(data)
    message = str(info.value)
    assert named in message
    assert f"this worker speaks version {wire.WIRE_VERSION}" in message
    refusal = wire.version_refusal(info.value)
    if info.value.theirs == 0:  # in the format of a release before versions: see below
        unknown, message = _as_a_release_before_versions(refusal)
        assert not unknown
        assert named in message
    else:
        with pytest.raises(wire.WireVersionError) as refused:
            wire.decode_reply(refusal)
        assert refused.value.refused
        assert named in str(refused.value)


class _ReplyBeforeVersions(msgspec.Struct, array_like=True, frozen=True):
    """A reply as a release before versions decodes it (its ``wire.Reply``)."""

    outcome: wire.WireOutcome | None = None
    error: wire.WireError | None = None
    value: str | bool | None = None


def _as_a_release_before_versions(data: bytes) -> tuple[bool, str]:
    """What a router of a release before versions makes of reply ``data``: the
    StoreUnavailable it raises (HTTP 503 with Retry-After), as (outcome_unknown,
    message)."""
    reply = msgspec.msgpack.decode(data, type=_ReplyBeforeVersions)
    assert reply.error is not None
    assert reply.outcome is None
    with pytest.raises(StoreUnavailable) as info:
        wire.raise_error(reply.error)
    return info.value.outcome_unknown, str(info.value)


def test_a_release_before_versions_reads_the_refusal_of_its_request() -> None:
    """A worker's refusal of a request of a release before versions (a rolling upgrade,
    workers first) used to be a version-1 reply, which that release cannot decode: its
    router failed the command as an internal error (HTTP 500), not knowing that nothing
    was done. It gets a refusal in its own format, a store that did nothing: HTTP 503
    with Retry-After."""
    old = msgspec.msgpack.encode(["bet_wallet", 0, 1e12, "", b"", None, [], ["r", "b"]])
    with pytest.raises(wire.WireVersionError) as info:
        wire.decode_request(old)
    unknown, message = _as_a_release_before_versions(wire.version_refusal(info.value))
    assert not unknown
    assert f"this worker speaks version {wire.WIRE_VERSION}" in message


def test_a_reply_of_another_version_or_a_refusal_is_a_version_error() -> None:
    later = msgspec.msgpack.encode([wire.WIRE_VERSION + 1, "a shape this release cannot read"])
    with pytest.raises(wire.WireVersionError) as info:
        wire.decode_reply(later)
    assert not info.value.refused  # it may have executed the command
    assert f"version {wire.WIRE_VERSION + 1}" in str(info.value)

    # a reply of a release before versions: [outcome, error, value]
    legacy = msgspec.msgpack.encode([None, ["internal", "bad_request", "not a request"], None])
    with pytest.raises(wire.WireVersionError) as info:
        wire.decode_reply(legacy)
    assert "version 0 (before versions)" in str(info.value)
    # it decodes no request of ours: its bad_request refusal did nothing
    assert info.value.refused
    success = msgspec.msgpack.encode([[[], 1, 1, 1, False], None, None])
    with pytest.raises(wire.WireVersionError) as info:
        wire.decode_reply(success)
    assert not info.value.refused

    same_shape = wire.encode(msgspec.structs.replace(wire.Reply(value="w"), v=7))
    with pytest.raises(wire.WireVersionError) as info:
        wire.decode_reply(same_shape)  # decodes as ours, but nothing of it is trusted
    assert info.value.theirs == 7
    assert not info.value.refused

    # a worker of release 9 refusing our request (the refusal's shape never changes)
    error = wire.WireError("version", wire.WRONG_VERSION, "this worker speaks version 9")
    with pytest.raises(wire.WireVersionError) as info:
        wire.decode_reply(wire.encode(wire.Reply(v=9, error=error)))
    assert info.value.refused  # it did nothing
    assert info.value.theirs == 9
    assert "version 9" in str(info.value)


def _settings(pg_url: str, pg_schema: str, redis_url: str, nats_url: str) -> Settings:
    return Settings(
        store_url=pg_url,
        pg_schema=pg_schema,
        nats_url=nats_url,
        redis_url=redis_url,
        redis_prefix=f"t{uuid.uuid4().hex[:10]}:",
        partitions=PARTITIONS,
        rebalance_seconds=60,
    )


async def _ask(nc: Any, subject: str, data: bytes, *, raw: bool = False) -> Any:
    """``data`` to ``subject``'s owner, once it has one; its reply as it came (its
    bytes if ``raw``)."""
    async with asyncio.timeout(30):
        while True:
            try:
                msg = await nc.request(subject, data, timeout=10)
            except NoRespondersError:
                await asyncio.sleep(0.05)
                continue
            return msg.data if raw else msgspec.msgpack.decode(msg.data, type=wire.Reply)


async def test_a_worker_refuses_a_request_of_another_version_and_keeps_serving(
    pg_url: str, pg_schema: str, redis_url: str, nats_url: str
) -> None:
    worker = Worker(_settings(pg_url, pg_schema, redis_url, nats_url), name="w")
    await worker.start()
    try:
        nc = await nats.connect(nats_url)
        try:
            subject = command_subject(worker.prefix, 0)
            reply = await _ask(nc, subject, _raw_request(wire.WIRE_VERSION + 1))
            assert reply.error is not None
            assert (reply.error.kind, reply.error.code) == ("version", wire.WRONG_VERSION)
            assert f"this worker speaks version {wire.WIRE_VERSION}" in reply.error.message
            # a release before versions gets the refusal in its own format
            before = msgspec.msgpack.encode(["bet_wallet", 0, 1e12, "", b"", None, [], ["r", "b"]])
            raw = await _ask(nc, subject, before, raw=True)
            unknown, message = _as_a_release_before_versions(raw)
            assert not unknown
            assert f"this worker speaks version {wire.WIRE_VERSION}" in message
            # and a request of its own version is served as ever
            reply = await _ask(nc, subject, _raw_request(wire.WIRE_VERSION))
            assert reply.error is None
            assert reply.value is None
        finally:
            await nc.close()
    finally:
        await worker.stop()


@pytest.mark.parametrize("refused", [True, False])
async def test_the_router_answers_an_owner_of_another_version_as_commands_unavailable(
    nats_url: str, refused: bool
) -> None:
    """An owner of another release: its refusal (nothing done) or a reply the router
    cannot read (maybe done) is CommandsUnavailable (HTTP 503), at once."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    theirs = wire.WIRE_VERSION + 1
    owner = await nats.connect(nats_url)
    nc = await nats.connect(nats_url)
    try:

        async def answer(msg: Any) -> None:
            if refused:  # as that release refuses ours
                message = (
                    f"a request of wire format version {wire.WIRE_VERSION}; "
                    f"this worker speaks version {theirs}"
                )
                error = wire.WireError("version", wire.WRONG_VERSION, message)
                await msg.respond(wire.encode(wire.Reply(v=theirs, error=error)))
            else:
                await msg.respond(msgspec.msgpack.encode([theirs, {"a": "new shape"}]))

        await owner.subscribe(command_subject(prefix, 0), cb=answer)
        await owner.flush()
        router = Router(
            nc,
            prefix=prefix,
            partitions=PARTITIONS,
            deadline=5.0,
            store=None,  # type: ignore[arg-type]  # not read: no answer has elided events
            reader=None,  # type: ignore[arg-type]
        )
        started = asyncio.get_running_loop().time()
        with pytest.raises(CommandsUnavailable) as info:
            await router.value(wire.Op.BET_WALLET, 0, "race-r1", "b1")
        assert asyncio.get_running_loop().time() - started < 2.0  # not the deadline
        assert info.value.outcome_unknown is not refused
        assert f"version {theirs}" in str(info.value)
        assert f"version {wire.WIRE_VERSION}" in str(info.value)
    finally:
        await nc.close()
        await owner.close()
