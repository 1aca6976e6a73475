"""Settlement as properties (hypothesis): random markets, random bets at moving prices,
a result (one winner or a dead heat) or a void.

- every accepted bet is settled exactly once;
- a winner is paid ``⌊stake × accepted price / tied⌋``, a loser nothing;
- a void returns every stake exactly;
- money is conserved: stakes in = payouts + refunds + the book's result;
- the book's result for one winner is what its liability said before the result;
- a dead-heat payout never exceeds the undivided payout;
- no bet was taken below the price asked, above the stake limit, or past the liability
  limit.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal, localcontext
from fractions import Fraction

from hypothesis import event as note
from hypothesis import given, settings
from hypothesis import strategies as st

from oddstream.domain.fixedodds.commands import (
    CloseMarket,
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
    MarketResulted,
    MoneyLine,
    Outcome,
    PricesUpdated,
)
from oddstream.domain.fixedodds.formats import fractional
from oddstream.domain.fixedodds.odds import Odds
from oddstream.domain.fixedodds.settlement import (
    dead_heat_payout,
    exact_return,
    win_payout,
)

from .helpers import PROVIDER, Market


def floor_return(stake_cents: int, price: Odds, tied: int = 1) -> int:
    """The oracle, not the implementation's arithmetic: the stake's share returned plus
    its profit at the fractional odds, ``(stake + stake × (d − 1)) / tied``, as one
    correctly rounded 60-digit decimal division, floored. (An integer result is exact;
    any other is at least ``1 / (den × tied)`` from an integer, far more than 60 digits
    can blur.)"""
    profit = fractional(price)
    with localcontext() as ctx:
        ctx.prec = 60
        returned = Decimal(stake_cents * profit.denominator)
        won = Decimal(stake_cents * profit.numerator)
        total = (returned + won) / Decimal(profit.denominator * tied)
        return int(total.to_integral_value(rounding=ROUND_FLOOR))


odds = st.integers(1, 100).flatmap(
    lambda den: st.integers(den + 1, 50 * den).map(lambda num: Odds.exact(Fraction(num, den)))
)


@st.composite
def money_lines(draw, three_way: bool):
    return MoneyLine(home=draw(odds), away=draw(odds), draw=draw(odds) if three_way else None)


@st.composite
def markets(draw):
    three_way = draw(st.booleans())
    outcomes = [Outcome.HOME, Outcome.AWAY] + ([Outcome.DRAW] if three_way else [])
    bets = st.tuples(
        st.just("bet"),
        st.sampled_from(outcomes),
        st.integers(1, 200_000),
        # the price asked, as a share of the current one: mostly at or below it
        st.fractions(min_value=Fraction(1, 2), max_value=Fraction(11, 10), max_denominator=100),
    )
    actions = draw(
        st.lists(
            st.one_of(
                bets,
                bets,
                bets,
                bets,
                st.tuples(st.just("price"), money_lines(three_way)),
                st.tuples(st.just("suspend")),
                st.tuples(st.just("resume")),
            ),
            min_size=3,
            max_size=60,
        )
    )
    winners = draw(
        st.lists(st.sampled_from(outcomes), min_size=1, max_size=len(outcomes), unique=True)
    )
    ending = draw(st.sampled_from(["result", "void", "void_after_close"]))
    return draw(money_lines(three_way)), actions, winners, ending


def _try(market: Market, command) -> None:
    try:
        market.do(command)
    except FixedOddsRejection as refusal:
        note(f"refused: {refusal.code}")


@settings(max_examples=400, deadline=None)
@given(markets())
def test_settlement_pays_the_accepted_prices_and_conserves_money(params):
    money_line, actions, winners, ending = params
    market = Market(money_line=money_line, max_stake=150_000, max_liability=2_000_000)
    for number, action in enumerate(actions):
        match action:
            case ("bet", outcome, stake, factor):
                # ask for a price around the current one: some better, some worse
                current = market.state.prices[outcome].value
                asked = max(current * factor, Fraction(101, 100))
                asked = Odds.exact(min(asked, Fraction(10_000)).limit_denominator(1000))
                _try(
                    market,
                    PlaceBet(
                        market_id="m1",
                        bet_id=f"b{number}",
                        outcome=outcome,
                        stake_cents=stake,
                        price=asked,
                    ),
                )
            case ("price", new_line):
                _try(market, UpdatePrices(market_id="m1", provider=PROVIDER, money_line=new_line))
            case ("suspend",):
                _try(market, SuspendMarket(market_id="m1", provider=PROVIDER))
            case ("resume",):
                _try(market, ResumeMarket(market_id="m1", provider=PROVIDER))

    # every acceptance at the current price, at least the price asked, within the limits
    current = dict(money_line.prices())
    liability = dict.fromkeys(current, 0)
    for event in market.events:
        if isinstance(event, PricesUpdated):
            current = dict(event.money_line.prices())
        if isinstance(event, BetAccepted):
            assert event.price == current[event.outcome]
            assert event.price.value >= event.requested.value
            assert 1 <= event.stake_cents <= 150_000
            liability[event.outcome] += floor_return(event.stake_cents, event.price)
            assert liability[event.outcome] <= 2_000_000
    assert market.state.liability == liability

    before = {o: market.state.book_result_if(o) for o in current}
    if ending == "void_after_close":
        _try(market, CloseMarket(market_id="m1", provider=PROVIDER))
    if ending == "result":
        market.do(CloseMarket(market_id="m1", provider=PROVIDER))
        market.do(ResultMarket(market_id="m1", provider=PROVIDER, winners=tuple(winners)))
    else:
        market.do(VoidMarket(market_id="m1", provider=PROVIDER, reason="abandoned"))

    accepted = {e.bet_id: e for e in market.events if isinstance(e, BetAccepted)}
    settled = [e for e in market.events if isinstance(e, BetSettled)]
    assert sorted(e.bet_id for e in settled) == sorted(accepted)  # each exactly once
    note(f"{ending}, {len(winners)} winner(s), bets: {min(len(accepted), 5)}+")
    stakes = sum(e.stake_cents for e in accepted.values())
    payouts = sum(e.payout_cents for e in settled)
    refunds = sum(e.refund_cents for e in settled)
    book = 0
    for event in settled:
        bet = accepted[event.bet_id]
        if ending != "result":
            assert (event.refund_cents, event.payout_cents) == (bet.stake_cents, 0)
            continue
        assert event.refund_cents == 0
        if bet.outcome in winners:
            undivided = floor_return(bet.stake_cents, bet.price)
            expected = floor_return(bet.stake_cents, bet.price, len(winners))
            assert event.payout_cents == expected
            assert event.payout_cents <= undivided
        else:
            assert event.payout_cents == 0
    for event in market.events:
        if isinstance(event, MarketResulted):
            assert (event.stakes_cents, event.paid_cents) == (stakes, payouts)
            book = event.book_cents
            if len(winners) == 1:
                assert book == before[winners[0]]
    assert stakes == payouts + refunds + book
    assert market.state.live_stakes == 0
    assert all(value == 0 for value in market.state.liability.values())


@settings(max_examples=1000)
@given(st.integers(1, 10**10), odds, st.integers(1, 4))
def test_dead_heat_payout_never_exceeds_the_undivided_payout(stake, price, tied):
    divided = dead_heat_payout(stake, price, tied)
    whole = win_payout(stake, price)
    assert divided <= whole
    # one rounding, down: the same cents as dividing the rounded undivided payout
    assert divided == whole // tied
    assert divided == floor_return(stake, price, tied)
    assert exact_return(stake, price, tied) - divided < 1
