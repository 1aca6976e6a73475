"""Pool types and the shape of a valid selection in each."""

from __future__ import annotations

import enum


class PoolType(enum.StrEnum):
    WIN = "WIN"
    PLACE = "PLACE"
    SHOW = "SHOW"
    EXACTA = "EXACTA"
    QUINELLA = "QUINELLA"
    TRIFECTA = "TRIFECTA"

    @property
    def runners_per_selection(self) -> int:
        return _SIZES[self]

    @property
    def is_exotic(self) -> bool:
        return self in (PoolType.EXACTA, PoolType.QUINELLA, PoolType.TRIFECTA)

    @property
    def ordered(self) -> bool:
        """Whether the order of runners in a selection matters."""
        return self is not PoolType.QUINELLA


_SIZES = {
    PoolType.WIN: 1,
    PoolType.PLACE: 1,
    PoolType.SHOW: 1,
    PoolType.EXACTA: 2,
    PoolType.QUINELLA: 2,
    PoolType.TRIFECTA: 3,
}

Selection = tuple[int, ...]


def selection_key(pool: PoolType, runners: tuple[int, ...] | list[int]) -> Selection:
    """The canonical key of a selection: sorted for quinella, as given otherwise."""
    key = tuple(runners)
    return tuple(sorted(key)) if not pool.ordered else key
