"""The refusals the use cases raise: a status, a stable code and a message, which
the HTTP layer renders as the JSON error body ``{"error": code, "message": …}``."""

from __future__ import annotations

import logging

from ..domain.fixedodds import FixedOddsRejection
from ..domain.tote.race import ToteRejection
from ..domain.wallet import WalletRejection
from ..eventstore import EventStoreError, InvalidEvent, StoreUnavailable
from ..runtime.writer import RequestIdReused

log = logging.getLogger(__name__)

#: HTTP status for each rejection code: 404 for what does not exist, 422 for a command
#: that can never succeed as sent, 409 for one the race's current state refuses.
REJECTION_STATUS: dict[str, int] = {
    "race_not_found": 404,
    "unknown_bet": 404,
    "bad_race": 422,
    "bad_amount": 422,
    "below_minimum": 422,
    "bad_increment": 422,
    "bad_selection": 422,
    "unknown_runner": 422,
    "bad_result": 422,
    "pool_not_offered": 422,
    "not_compat": 422,
}

#: HTTP status for each wallet rejection code (409: the wallet's state refuses it).
WALLET_REJECTION_STATUS: dict[str, int] = {
    "wallet_not_found": 404,
    "bad_amount": 422,
    "balance_limit": 422,
}


#: HTTP status for each fixed-odds rejection code (409, the default: the market's state
#: refuses it — it exists, is deleted, is two-way, is another game's, has live bets)
MARKET_REJECTION_STATUS: dict[str, int] = {
    "market_not_found": 404,
    "not_owner": 403,
    "bad_odds": 422,
    "odds_too_low": 422,
    "odds_too_high": 422,
    "bad_market": 422,
    "bad_limits": 422,
    # a result naming no winner, one twice, or one the market does not offer
    "bad_result": 422,
    # bets: what can never succeed as sent (the market's state refuses the rest: 409)
    "bad_amount": 422,
    "below_minimum": 422,
    "unknown_outcome": 422,
    "bad_bet": 422,
}


class ApiError(Exception):
    """An answer other than success: ``status``, a stable ``code`` and a message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: object,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra
        super().__init__(message)


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    """The JSON body of a refusal."""
    return {"error": code, "message": message, **extra}


def render(exc: Exception) -> tuple[int, dict[str, object], dict[str, str]]:
    """The answer for a refusal: status, JSON body and extra headers. Anything not a
    known refusal is a 500 that is logged (and a bug)."""
    if isinstance(exc, ApiError):
        return exc.status, error_body(exc.code, exc.message, **exc.extra), exc.headers
    if isinstance(exc, ToteRejection):
        return REJECTION_STATUS.get(exc.code, 409), error_body(exc.code, exc.message), {}
    if isinstance(exc, WalletRejection):
        status = WALLET_REJECTION_STATUS.get(exc.code, 409)
        return status, error_body(exc.code, exc.message), {}
    if isinstance(exc, FixedOddsRejection):
        status = MARKET_REJECTION_STATUS.get(exc.code, 409)
        return status, error_body(exc.code, exc.message), {}
    if isinstance(exc, RequestIdReused):
        return 422, error_body(exc.code, str(exc)), {}
    if isinstance(exc, InvalidEvent):
        return 422, error_body("invalid", str(exc)), {}
    if isinstance(exc, StoreUnavailable):
        log.warning("store unavailable: %s", exc)
        body = error_body("store_unavailable", str(exc), outcome_unknown=exc.outcome_unknown)
        return 503, body, {"Retry-After": "1"}
    if isinstance(exc, EventStoreError):
        return 409, error_body("conflict", str(exc)), {}
    log.error("unhandled error", exc_info=exc)
    return 500, error_body("internal", "an unexpected error; it was logged"), {}
