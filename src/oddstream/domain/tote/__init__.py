"""The tote: races, parimutuel pools, dividends, the live odds board. Pure.

See ``docs/tote.md``.
"""

from .board import OddsBoard, odds_board
from .dividends import PoolOutcome, pool_outcome
from .pools import PoolType
from .profiles import PROFILES, RulesProfile
from .race import RaceState, RaceStatus, ToteRejection, decide, evolve, replay

__all__ = [
    "PROFILES",
    "OddsBoard",
    "PoolOutcome",
    "PoolType",
    "RaceState",
    "RaceStatus",
    "RulesProfile",
    "ToteRejection",
    "decide",
    "evolve",
    "odds_board",
    "pool_outcome",
    "replay",
]
