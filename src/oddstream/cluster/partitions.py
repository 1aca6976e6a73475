"""Which partition a stream belongs to: a stable hash over a fixed number of them.

The hash must be the same in every process and every release (Python's ``hash()`` of a
string is salted per process): BLAKE2b of the stream id, its first 8 bytes as an
unsigned integer, modulo the number of partitions. Changing the number of partitions
moves streams between partitions, so every process of a deployment must agree on it
(``ODDSTREAM_PARTITIONS``): a command hashed with another number would go to the wrong
owner, so a worker refuses a command whose stream is not in the partition its request
names (``wrong_partition``) rather than give the stream a second writer.
"""

from __future__ import annotations

import hashlib

from ..runtime.market_writer import market_stream
from ..runtime.race_writer import race_stream
from ..runtime.wallet_writer import wallet_stream


def partition_of(stream_id: str, partitions: int) -> int:
    """The partition of ``stream_id`` among ``partitions`` (0 … partitions-1)."""
    if partitions < 1:
        raise ValueError("there must be at least one partition")
    digest = hashlib.blake2b(stream_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def race_partition(race_id: str, partitions: int) -> int:
    """The partition of race ``race_id``'s stream."""
    return partition_of(race_stream(race_id), partitions)


def wallet_partition(wallet_id: str, partitions: int) -> int:
    """The partition of wallet ``wallet_id``'s stream."""
    return partition_of(wallet_stream(wallet_id), partitions)


def market_partition(market_id: str, partitions: int) -> int:
    """The partition of fixed-odds market ``market_id``'s stream."""
    return partition_of(market_stream(market_id), partitions)
