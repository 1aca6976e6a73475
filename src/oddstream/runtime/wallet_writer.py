"""The single writer of each wallet: wallet commands in, events appended to ``wallet-<id>``.

A :class:`~.writer.AggregateWriter` with snapshots: every ``SNAPSHOT_EVERY`` events the
wallet's state goes to ``snapshot-wallet-<id>``, so a wallet with a long history loads
from its latest snapshot plus at most that many events.
"""

from __future__ import annotations

from collections.abc import Callable

from ..domain.wallet import WalletCommand, WalletRejection, WalletState, decide, evolve
from ..eventstore import EventStore
from ..eventstore.registry import EventRegistry
from .codec import registry as default_registry
from .writer import AggregateSpec, AggregateWriter

WALLET_STREAM_PREFIX = "wallet-"
SNAPSHOT_EVERY = 100


def wallet_stream(wallet_id: str) -> str:
    return f"{WALLET_STREAM_PREFIX}{wallet_id}"


def _initial(wallet_id: str) -> WalletState:
    return WalletState(wallet_id=wallet_id)


def _conflict(wallet_id: str) -> WalletRejection:
    return WalletRejection("conflict", f"wallet {wallet_id} is being written elsewhere")


def wallet_spec(snapshot_every: int = SNAPSHOT_EVERY) -> AggregateSpec[WalletState, WalletCommand]:
    """The wallet aggregate as the writer runs it."""
    return AggregateSpec(
        prefix=WALLET_STREAM_PREFIX,
        key=lambda command: command.wallet_id,
        initial=_initial,
        decide=decide,
        evolve=evolve,
        conflict=_conflict,
        snapshot_every=snapshot_every,
        to_snapshot=WalletState.to_snapshot,
        from_snapshot=WalletState.from_snapshot,
    )


class WalletWriter(AggregateWriter[WalletState, WalletCommand]):
    """Executes wallet commands; one writer per wallet in this process."""

    def __init__(
        self,
        store: EventStore,
        registry: EventRegistry | None = None,
        *,
        snapshot_every: int = SNAPSHOT_EVERY,
        on_append: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(
            store, wallet_spec(snapshot_every), registry or default_registry, on_append=on_append
        )
