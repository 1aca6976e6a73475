"""Event velocity tiers: committed events delivered on channels by how often they come
(high, medium, low), in process or on NATS. See ``docs/fixed-odds.md``, "Velocity
tiers"."""

from .bus import (
    DEFAULT_LIMIT,
    BusEvent,
    Gap,
    InProcessVelocityBus,
    Subscription,
    VelocityBus,
)
from .channels import (
    ODDS_DOMAIN,
    OTHER_GAME_TYPE,
    TIERS,
    BadChannel,
    Velocity,
    channel,
    game_type_of,
    matches,
    tier_pattern,
)

__all__ = [
    "DEFAULT_LIMIT",
    "ODDS_DOMAIN",
    "OTHER_GAME_TYPE",
    "TIERS",
    "BadChannel",
    "BusEvent",
    "Gap",
    "InProcessVelocityBus",
    "Subscription",
    "Velocity",
    "VelocityBus",
    "channel",
    "game_type_of",
    "matches",
    "tier_pattern",
]
