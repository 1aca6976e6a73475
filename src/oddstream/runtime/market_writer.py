"""The single writer of each fixed-odds market: market commands in, events appended to
``market-<id>``.

A :class:`~.writer.AggregateWriter` for the market aggregate (``domain/fixedodds``; see
``writer.py`` for batching, idempotent request ids and conflict handling). What it runs
is a :class:`MarketRequest`: the domain's command with what the odds service's clients
send besides — the game they mean (a command naming another game than the market's is
refused, ``game_mismatch``) and the event velocity — so that a request id's fingerprint
covers the whole request. Every update is recorded, the prices the market has included
(:func:`decide_request`), so that every request id is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from ..domain.fixedodds import (
    FixedOddsRejection,
    MarketCommand,
    MarketState,
    UpdatePrices,
    decide,
    evolve,
)
from ..domain.fixedodds.events import MarketEvent, PricesUpdated
from ..domain.fixedodds.market import MarketStatus
from ..eventstore import AppendResult, EventStore, NewEvent
from ..eventstore.registry import EventRegistry
from ..velocity.bus import BusEvent, VelocityBus
from ..velocity.channels import ODDS_DOMAIN, Velocity, game_type_of
from .codec import registry as default_registry
from .writer import AggregateSpec, AggregateWriter, CommandOutcome

MARKET_STREAM_PREFIX = "market-"
_json = msgspec.json.Encoder()


def market_stream(market_id: str) -> str:
    return f"{MARKET_STREAM_PREFIX}{market_id}"


class MarketRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A market command as a client asked for it: ``game_id`` (when the client named the
    game) must be the market's; ``velocity`` is how often the client says such events
    come (recorded with the events, for the velocity tiers to come)."""

    #: what the client asked for (``NewOdds``, ``UpdateOdds``, ``DeleteOdds``): part of
    #: the fingerprint, as two commands' fields may be alike
    action: str
    command: MarketCommand
    game_id: str | None = None
    velocity: Velocity = "medium"


def bus_events(
    state: MarketState,
    velocities: Sequence[tuple[Velocity, int]],
    events: Sequence[NewEvent],
    result: AppendResult,
) -> list[BusEvent]:
    """A stored batch's events as the velocity bus carries them: ``velocities`` says,
    command by command, the velocity of its events and how many it decided."""
    game_type = game_type_of(state.game_id)
    first_version = result.version - len(events) + 1
    out: list[BusEvent] = []
    i = 0
    for velocity, count in velocities:
        for _ in range(count):
            new = events[i]
            out.append(
                BusEvent(
                    position=result.first_position + i,
                    stream=result.stream_id,
                    version=first_version + i,
                    type=new.type,
                    data=_json.encode(new.data),
                    velocity=velocity,
                    game_type=game_type,
                    domain=ODDS_DOMAIN,
                )
            )
            i += 1
    return out


def decide_request(state: MarketState, request: MarketRequest) -> list[MarketEvent]:
    """The domain's decision, after checking the game the request names; an update to
    the prices the market has is recorded all the same."""
    command = request.command
    if (
        request.game_id is not None
        and state.status not in (MarketStatus.UNCREATED, MarketStatus.DELETED)
        and request.game_id != state.game_id
    ):
        raise FixedOddsRejection(
            "game_mismatch",
            f"market {state.market_id} is game {state.game_id!r}, not {request.game_id!r}",
        )
    events = decide(state, command)
    if not events and isinstance(command, UpdatePrices):
        # The domain records nothing for the prices a market has; the service records
        # them all the same. A request id is remembered only in the events it stored: an
        # update stored as nothing would leave its retry, after a later update, free to
        # put the old prices back (and its id free to be reused for another body).
        return [PricesUpdated(market_id=state.market_id, money_line=command.money_line)]
    return events


def _initial(market_id: str) -> MarketState:
    return MarketState(market_id=market_id)


def _conflict(market_id: str) -> FixedOddsRejection:
    return FixedOddsRejection("conflict", f"market {market_id} is being written elsewhere")


MARKETS: AggregateSpec[MarketState, MarketRequest] = AggregateSpec(
    prefix=MARKET_STREAM_PREFIX,
    key=lambda request: request.command.market_id,
    initial=_initial,
    decide=decide_request,
    evolve=evolve,
    conflict=_conflict,
)


class MarketWriter(AggregateWriter[MarketState, MarketRequest]):
    """Executes market requests; one writer per market in this process (in services
    mode, in the worker owning the market's partition). With a ``bus``, every event it
    stores is published there once committed, on the channel of its request's velocity
    and its market's game type (``docs/fixed-odds.md``, "Velocity tiers"); the
    velocity is recorded in the events' metadata too."""

    def __init__(
        self,
        store: EventStore,
        registry: EventRegistry | None = None,
        *,
        on_append: Callable[[float], None] | None = None,
        bus: VelocityBus | None = None,
    ) -> None:
        super().__init__(store, MARKETS, registry or default_registry, on_append=on_append)
        self.bus = bus

    async def execute(
        self,
        command: MarketRequest,
        *,
        request_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        legacy_ids: Sequence[str] = (),
    ) -> CommandOutcome:
        """:meth:`AggregateWriter.execute`, the request's velocity recorded with its
        events (the metadata the odds service's commands have always carried)."""
        meta = {"velocity": command.velocity, **(metadata or {})}
        return await super().execute(
            command, request_id=request_id, metadata=meta, legacy_ids=legacy_ids
        )

    async def bet_wallet(self, market_id: str, bet_id: str) -> str | None:
        """The wallet the market holds bet ``bet_id`` for (``""`` for none named), or
        ``None`` if it holds no such bet — once the market's commands taken so far are
        decided and stored (the sweep captures or releases a stake on this answer; a
        "no such bet" is the log's, never a stale copy's: :meth:`holding`)."""
        state = await self.holding(market_id, lambda market: bet_id in market.bets)
        bet = state.bets.get(bet_id)
        if bet is None:
            return None
        return bet.wallet_id or ""

    def _committed(
        self,
        state: MarketState | None,
        accepted: Sequence[tuple[Any, Sequence[msgspec.Struct]]],
        events: Sequence[NewEvent],
        result: AppendResult,
    ) -> None:
        bus = self.bus
        if bus is None or state is None:
            return
        velocities = [(p.command.velocity, len(decided)) for p, decided in accepted]
        for event in bus_events(state, velocities, events, result):
            bus.publish(event)
