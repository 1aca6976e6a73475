"""Market lifecycle, every refusal, the acceptance rule, liability and limits, and the
settlement examples documented in docs/fixed-odds.md."""

from __future__ import annotations

import msgspec
import pytest

from oddstream.domain.fixedodds.commands import (
    CloseMarket,
    CreateMarket,
    DeleteMarket,
    PlaceBet,
    ResultMarket,
    ResumeMarket,
    SuspendMarket,
    UpdatePrices,
    VoidMarket,
)
from oddstream.domain.fixedodds.errors import FixedOddsRejection
from oddstream.domain.fixedodds.events import (
    BetAccepted,
    BetSettled,
    MarketCreated,
    MarketLimits,
    MarketResulted,
    MoneyLine,
    Outcome,
    PricesUpdated,
)
from oddstream.domain.fixedodds.market import MarketState, MarketStatus, decide, replay
from oddstream.domain.fixedodds.odds import Odds

from .helpers import PROVIDER, Market, line, odds

HOME, AWAY, DRAW = Outcome.HOME, Outcome.AWAY, Outcome.DRAW


def rejected(market: Market, command) -> str:
    with pytest.raises(FixedOddsRejection) as info:
        decide(market.state, command)
    return info.value.code


def update(provider=PROVIDER, money_line=None):
    return UpdatePrices(market_id="m1", provider=provider, money_line=money_line or line("2.2"))


def bet(outcome=HOME, stake=1000, price="2.10", bet_id="x"):
    return PlaceBet(
        market_id="m1", bet_id=bet_id, outcome=outcome, stake_cents=stake, price=odds(price)
    )


def close(provider=PROVIDER):
    return CloseMarket(market_id="m1", provider=provider)


def result(*winners, provider=PROVIDER):
    return ResultMarket(market_id="m1", provider=provider, winners=winners)


def void(provider=PROVIDER):
    return VoidMarket(market_id="m1", provider=provider, reason="match abandoned")


def delete(provider=PROVIDER):
    return DeleteMarket(market_id="m1", provider=provider)


def suspend(provider=PROVIDER):
    return SuspendMarket(market_id="m1", provider=provider)


def resume(provider=PROVIDER):
    return ResumeMarket(market_id="m1", provider=provider)


# ----------------------------------------------------------------------------- lifecycle


def test_lifecycle_and_replay():
    market = Market()
    assert market.state.status is MarketStatus.OPEN
    market.do(update(money_line=line("2.20", "3.10", "3.30")))
    market.do(suspend())
    assert market.state.status is MarketStatus.SUSPENDED
    market.do(update(money_line=line("2.30", "3.00", "3.30")))  # prices move while suspended
    market.do(resume())
    won = market.bet(HOME, 1000, "2.30")
    lost = market.bet(AWAY, 500)
    market.do(close())
    market.do(result(HOME))
    assert market.state.status is MarketStatus.RESULTED
    settled = {e.bet_id: e for e in market.events if isinstance(e, BetSettled)}
    assert settled[won].payout_cents == 2300
    assert settled[lost].payout_cents == 0
    market.do(delete())
    assert market.state.status is MarketStatus.DELETED
    rebuilt = replay(market.events)
    assert rebuilt == market.state


def test_an_update_to_the_same_prices_records_nothing():
    market = Market()
    assert market.do(update(money_line=line())) == []
    assert [type(e) for e in market.do(update())] == [PricesUpdated]


def test_a_two_way_market_has_no_draw():
    market = Market(money_line=line("1.91", "1.91", None))
    assert rejected(market, bet(DRAW, price="3.00")) == "unknown_outcome"
    assert rejected(market, update(money_line=line())) == "bad_money_line"
    market.do(close())
    assert rejected(market, result(DRAW)) == "bad_result"


def test_a_three_way_market_stays_three_way():
    market = Market()
    assert rejected(market, update(money_line=line("2.2", "3.1", None))) == "bad_money_line"


def test_odds_at_or_below_one_never_reach_a_market():
    with pytest.raises(FixedOddsRejection) as info:
        line("1.00")
    assert info.value.code == "odds_too_low"
    body = (
        b'{"market_id":"m1","game_id":"g1","provider":"p","limits":{"max_stake_cents":1,'
        b'"max_liability_cents":1},"money_line":{"home":{"num":1,"den":1},'
        b'"away":{"num":2,"den":1}}}'
    )
    with pytest.raises(msgspec.ValidationError, match="odds_too_low"):
        msgspec.json.decode(body, type=CreateMarket)


# ----------------------------------------------------------------------------- refusals


def _create(**changes):
    fields = {
        "market_id": "m1",
        "game_id": "g1",
        "provider": PROVIDER,
        "money_line": line(),
        "limits": MarketLimits(max_stake_cents=100, max_liability_cents=1000),
    }
    fields.update(changes)
    return CreateMarket(**fields)


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (_create(market_id=""), "bad_market"),
        (_create(game_id="g" * 101), "bad_market"),
        (_create(provider=""), "bad_market"),
        (_create(limits=MarketLimits(max_stake_cents=0, max_liability_cents=1)), "bad_limits"),
        (
            _create(
                limits=MarketLimits(max_stake_cents=10, max_liability_cents=1, min_stake_cents=11)
            ),
            "bad_limits",
        ),
        (_create(limits=MarketLimits(max_stake_cents=10, max_liability_cents=0)), "bad_limits"),
        # limits are whole cents: a float or a bool never reaches MarketCreated
        (
            _create(limits=MarketLimits(max_stake_cents=1000.5, max_liability_cents=10**6)),
            "bad_limits",
        ),
        (_create(limits=MarketLimits(max_stake_cents=1000, max_liability_cents=1e6)), "bad_limits"),
        (
            _create(limits=MarketLimits(max_stake_cents=True, max_liability_cents=True)),
            "bad_limits",
        ),
        (update(), "market_not_found"),
        (bet(), "market_not_found"),
    ],
)
def test_creation_refusals(command, code):
    with pytest.raises(FixedOddsRejection) as info:
        decide(MarketState(), command)
    assert info.value.code == code


def test_a_market_is_created_once():
    assert rejected(Market(), _create()) == "market_exists"
    created = Market().events[0]
    assert isinstance(created, MarketCreated)
    assert created.provider == PROVIDER


@pytest.mark.parametrize(
    "command",
    [update(), suspend(), resume(), close(), result(HOME), void(), delete(), _create(), bet()],
)
def test_a_deleted_market_refuses_everything(command):
    market = Market()
    market.do(delete())
    assert rejected(market, command) == "market_deleted"


@pytest.mark.parametrize(
    "command",
    [
        update(provider="feed-b"),
        suspend(provider="feed-b"),
        resume(provider="feed-b"),
        close(provider="feed-b"),
        result(HOME, provider="feed-b"),
        void(provider="feed-b"),
        delete(provider="feed-b"),
    ],
)
def test_only_the_owning_provider_changes_a_market(command):
    assert rejected(Market(), command) == "not_owner"


@pytest.mark.parametrize(
    ("setup", "command", "code"),
    [
        ((), resume(), "wrong_status"),
        ((suspend(),), suspend(), "wrong_status"),
        ((close(),), update(), "wrong_status"),
        ((close(),), suspend(), "wrong_status"),
        ((close(),), close(), "wrong_status"),
        ((), result(HOME), "wrong_status"),
        ((close(),), result(), "bad_result"),
        ((close(),), result(HOME, HOME), "bad_result"),
        ((close(), result(HOME)), result(AWAY), "wrong_status"),
        ((close(), result(HOME)), void(), "wrong_status"),
        ((void(),), void(), "wrong_status"),
        ((void(),), update(), "wrong_status"),
        ((suspend(),), bet(), "market_suspended"),
        ((close(),), bet(), "market_closed"),
        ((void(),), bet(), "market_closed"),
        ((), bet(stake=0), "bad_amount"),
        ((), bet(stake=-5), "bad_amount"),
        ((), bet(stake=100_001), "stake_limit"),
        ((), bet(bet_id=""), "bad_bet"),
        ((), bet(price="2.11"), "price_worse"),
    ],
)
def test_refusals(setup, command, code):
    market = Market()
    for step in setup:
        market.do(step)
    assert rejected(market, command) == code


def test_minimum_stake_and_duplicate_bets():
    market = Market(min_stake=100)
    assert rejected(market, bet(stake=99)) == "below_minimum"
    market.do(bet(stake=100))
    assert rejected(market, bet(stake=100)) == "duplicate_bet"


def test_a_market_with_live_bets_is_voided_before_it_is_deleted():
    market = Market()
    market.bet(HOME, 1000)
    assert rejected(market, delete()) == "live_bets"
    market.do(void())
    market.do(delete())
    assert market.state.status is MarketStatus.DELETED


def test_a_refused_command_changes_nothing():
    market = Market()
    market.bet(HOME, 1000)
    before = replay(market.events)
    for command in (bet(price="9.0"), bet(stake=10**9), update(provider="feed-b"), result(HOME)):
        with pytest.raises(FixedOddsRejection):
            decide(market.state, command)
    assert market.state == before


# ----------------------------------------------------------------------------- acceptance


def test_a_bet_is_taken_at_the_current_price_when_it_is_at_least_the_price_asked():
    market = Market(money_line=line("2.00", "1.91", None))
    better = market.do(bet(price="1.91", bet_id="better"))[0]
    assert isinstance(better, BetAccepted)
    assert better.price == odds("2.00")  # the current price, better than asked
    assert better.requested == odds("1.91")
    same = market.do(bet(price="2.00", bet_id="same"))[0]
    assert same.price == odds("2.00")
    market.do(update(money_line=line("1.95", "1.95", None)))
    with pytest.raises(FixedOddsRejection) as info:
        decide(market.state, bet(price="2.00", bet_id="worse"))
    assert info.value.code == "price_worse"
    assert info.value.message == "home is 1.95 now, below the 2.00 asked"


def test_an_accepted_bet_keeps_its_price_when_the_market_moves():
    market = Market(money_line=line("3.00", "1.50", None))
    market.bet(HOME, 1000)
    market.do(update(money_line=line("1.50", "3.00", None)))
    market.do(close())
    market.do(result(HOME))
    settled = [e for e in market.events if isinstance(e, BetSettled)]
    assert settled[0].payout_cents == 3000


# ----------------------------------------------------------------------------- liability


def test_liability_per_outcome_and_its_limit():
    market = Market(money_line=line("2.50", "1.60", "3.00"), max_liability=10_000)
    market.bet(HOME, 2000)  # pays 5000 if home wins
    market.bet(HOME, 1000, "2.50")  # 2500 more
    market.bet(AWAY, 1000)  # 1600
    assert market.state.liability == {HOME: 7500, AWAY: 1600, DRAW: 0}
    assert market.state.live_stakes == 4000
    assert market.state.book_result_if(HOME) == -3500
    assert market.state.book_result_if(DRAW) == 4000
    assert rejected(market, bet(HOME, stake=1001, price="2.50")) == "liability_limit"
    market.bet(HOME, 1000)  # exactly 10000: at the limit, taken
    assert market.state.liability[HOME] == 10_000
    # the limit is per outcome: away still has room
    market.bet(AWAY, 5000)
    assert market.state.liability[AWAY] == 9600


def test_void_releases_the_liability():
    market = Market()
    market.bet(HOME, 1000)
    market.do(void())
    assert market.state.liability[HOME] == 0
    assert market.state.live_stakes == 0


# ----------------------------------------------------------------------------- settlement


def test_settlement_examples():
    market = Market(money_line=MoneyLine(home=odds("1.91"), away=odds("1.91")))
    a = market.bet(HOME, 1000)  # 19.10 exactly
    b = market.bet(HOME, 333)  # 333 × 1.91 = 636.03
    c = market.bet(HOME, 7)  # 13.37
    d = market.bet(AWAY, 1000)
    market.do(close())
    events = market.do(result(HOME))
    summary = events[0]
    assert isinstance(summary, MarketResulted)
    settled = {e.bet_id: e for e in events[1:]}
    assert (settled[a].payout_cents, settled[a].reason) == (1910, "won")
    assert settled[b].payout_cents == 636
    assert settled[c].payout_cents == 13
    assert (settled[d].payout_cents, settled[d].reason) == (0, "lost")
    assert (summary.stakes_cents, summary.paid_cents, summary.book_cents) == (2340, 2559, -219)


def test_a_fractional_price_pays_what_was_quoted():
    # £13 at 8/13 returns exactly £21: no decimal approximation of 1.615384…
    market = Market(money_line=MoneyLine(home=odds("2"), away=Odds.from_fractional("8/13")))
    market.bet(AWAY, 1300)
    market.bet(AWAY, 100)  # 161.538… → 161
    market.do(close())
    events = market.do(result(AWAY))
    assert [e.payout_cents for e in events[1:]] == [2100, 161]


def test_dead_heat_divides_the_stake():
    market = Market(money_line=line("3.00", "3.00", "4.50"))
    a = market.bet(HOME, 1001)  # half of 1001 at 3.00: 1501.5 → 1501
    b = market.bet(AWAY, 1000)  # 1500
    c = market.bet(DRAW, 1000)
    market.do(close())
    events = market.do(result(HOME, AWAY))
    settled = {e.bet_id: e for e in events[1:]}
    assert (settled[a].payout_cents, settled[a].reason) == (1501, "dead_heat")
    assert settled[b].payout_cents == 1500
    assert (settled[c].payout_cents, settled[c].reason) == (0, "lost")
    # stakes 3001, paid 1501 + 1500: the book keeps nothing
    assert (events[0].stakes_cents, events[0].paid_cents, events[0].book_cents) == (3001, 3001, 0)


def test_void_returns_every_stake():
    market = Market()
    market.bet(HOME, 1000, wallet="alice")
    market.bet(DRAW, 250, wallet="bob")
    market.do(suspend())
    events = market.do(void())
    refunds = [
        (e.bet_id, e.refund_cents, e.payout_cents, e.reason, e.wallet_id) for e in events[1:]
    ]
    assert refunds == [("b1", 1000, 0, "void", "alice"), ("b2", 250, 0, "void", "bob")]
    assert market.state.status is MarketStatus.VOIDED


def test_a_price_worse_refusal_never_shows_the_two_prices_alike():
    # 8/13 is decimal 1.615384…, displayed (to the nearest hundredth) as 1.62. A customer
    # who asks for the 1.62 they were shown is rightly refused — 1.62 is better than the
    # price — but the reason must not read "away is 1.62 now, below the 1.62 asked".
    market = Market(money_line=MoneyLine(home=odds("2"), away=Odds.from_fractional("8/13")))
    with pytest.raises(FixedOddsRejection) as info:
        decide(market.state, bet(AWAY, price="1.62"))
    assert info.value.code == "price_worse"
    assert info.value.message == "away is 1.6153… (8/13) now, below the 1.62 asked"


def test_stake_limits_are_inclusive_at_both_ends():
    market = Market(min_stake=100, max_stake=5000)
    assert rejected(market, bet(stake=99)) == "below_minimum"
    assert rejected(market, bet(stake=5001)) == "stake_limit"
    low = market.do(bet(stake=100, bet_id="low"))[0]
    high = market.do(bet(stake=5000, bet_id="high"))[0]
    assert (low.stake_cents, high.stake_cents) == (100, 5000)
    # the liability counted is the payout settlement will make: 5000 × 2.10 and 100 × 2.10
    assert market.state.liability[HOME] == 10_500 + 210


def test_liability_limit_counts_the_rounded_down_payout():
    # 524 at 1.91 returns 1000.84, paid as 1000: it fits a 1000-cent limit exactly
    market = Market(money_line=line("1.91", "1.91", None), max_liability=1000)
    assert rejected(market, bet(stake=525, price="1.91")) == "liability_limit"  # 1002.75
    market.do(bet(stake=524, price="1.91"))
    assert market.state.liability[HOME] == 1000
