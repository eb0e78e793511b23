"""The blotter: order states and the portfolio folded from order events, without a broker.

Folding is idempotent: replaying the order log twice, or any event again, changes nothing;
this is what lets the bot rebuild itself from `btc_usd_orders` after any crash.
"""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from cryptopipeline.trading import (
    Blotter,
    Fill,
    OrderEvent,
    OrderEventType,
    OrderRequest,
    OrderType,
    RiskEngine,
    RiskLimits,
    Side,
)
from cryptopipeline.trading.orders import order_event
from cryptopipeline.trading.planning import replay_log

E = OrderEventType
T0 = "2026-01-01T00:00:00.000000Z"


def _request(coid: str, side: Side = Side.BUY, size: str = "0.5") -> OrderRequest:
    return OrderRequest(coid, f"s-{coid}", "BTC-USD", side, OrderType.LIMIT, D(size), D(100),
                        D(101))  # fmt: skip


def _fill(coid: str, n: int, size: str, side: Side = Side.BUY) -> Fill:
    return Fill(f"{coid}-f{n}", coid, "BTC-USD", side, D(100), D(size), D("0.1"), "MAKER", T0)


def _event(
    request: OrderRequest, kind: OrderEventType, *, fill: Fill | None = None,
    exchange_id: str | None = None, reason: str | None = None, time: str = T0,
) -> OrderEvent:  # fmt: skip
    return order_event(request, kind, time=time, broker="paper", fill=fill,
                       exchange_id=exchange_id, reason=reason)  # fmt: skip


def _log() -> list[OrderEvent]:
    """A small order log: a buy filled in two parts, a sell rejected by risk, a resting
    order, and one submitted without a known outcome (a crash after "submitted")."""
    a, b, c, d = _request("a"), _request("b", Side.SELL), _request("c"), _request("d")
    return [
        _event(a, E.RECEIVED), _event(a, E.SUBMITTED), _event(a, E.ACCEPTED, exchange_id="x-a"),
        _event(a, E.PARTIALLY_FILLED, fill=_fill("a", 1, "0.2"), exchange_id="x-a"),
        _event(a, E.FILLED, fill=_fill("a", 2, "0.3"), exchange_id="x-a",
               time="2026-01-01T00:00:05.000000Z"),
        _event(b, E.RECEIVED), _event(b, E.REJECTED, reason="no_position"),
        _event(c, E.RECEIVED), _event(c, E.SUBMITTED), _event(c, E.ACCEPTED, exchange_id="x-c"),
        _event(d, E.RECEIVED), _event(d, E.SUBMITTED),
    ]  # fmt: skip


def _state(blotter: Blotter) -> tuple[object, ...]:
    return (
        dict(blotter.orders), blotter.portfolio.snapshot(),
        [o.client_order_id for o in blotter.open_orders()],
        [o.client_order_id for o in blotter.unresolved()],
    )  # fmt: skip


def test_an_order_log_folds_into_states_positions_and_open_orders() -> None:
    blotter = Blotter(D(1000))
    for event in _log():
        blotter.apply(event)
    a, b, c, d = (blotter.orders[k] for k in "abcd")
    assert (a.state, a.exchange_order_id, a.terminal, a.open) == (E.FILLED, "x-a", True, False)
    assert a.request() == _request("a")
    assert (b.state, b.reason, b.submitted, b.open) == (E.REJECTED, "no_position", False, False)
    assert (c.state, c.open, c.unresolved) == (E.ACCEPTED, True, False)
    assert (d.state, d.open, d.unresolved) == (E.SUBMITTED, True, True)
    assert [o.client_order_id for o in blotter.open_orders()] == ["c", "d"]
    assert [o.client_order_id for o in blotter.unresolved()] == ["d"]
    portfolio = blotter.portfolio
    assert portfolio.quantity("BTC-USD") == D("0.5")
    assert portfolio.cash == D(1000) - D(50) - D("0.2")
    assert portfolio.fees == D("0.2")


def test_decided_means_past_received() -> None:
    blotter = Blotter(D(0))
    a = _request("a")
    assert not blotter.decided("a")
    blotter.apply(_event(a, E.RECEIVED))
    assert not blotter.decided("a")  # received, then a crash: the signal is decided again
    blotter.apply(_event(a, E.REJECTED, reason="stale_price"))
    assert blotter.decided("a")


def test_a_late_or_replayed_event_never_moves_an_order_back() -> None:
    blotter = Blotter(D(1000))
    a = _request("a")
    blotter.apply(_event(a, E.SUBMITTED))
    blotter.apply(_event(a, E.FILLED, fill=_fill("a", 1, "0.5"), exchange_id="x-a"))
    blotter.apply(_event(a, E.ACCEPTED, exchange_id="x-a"))  # arrived late
    blotter.apply(_event(a, E.CANCELLED))  # a second terminal event: the first one stands
    blotter.apply(_event(a, E.SUBMITTED))
    order = blotter.orders["a"]
    assert (order.state, order.open, order.unresolved) == (E.FILLED, False, False)
    assert blotter.open_orders() == [] and blotter.unresolved() == []


def test_replaying_the_order_log_twice_gives_the_same_state() -> None:
    limits = RiskLimits(cooldown_after_fill_s=60)
    once, once_risk = Blotter(D(1000)), RiskEngine(limits)
    twice, twice_risk = Blotter(D(1000)), RiskEngine(limits)
    seconds = {T0: 1_767_225_600.0, "2026-01-01T00:00:05.000000Z": 1_767_225_605.0}.__getitem__
    replay_log(once, once_risk, _log(), seconds=seconds)
    replay_log(twice, twice_risk, _log(), seconds=seconds)
    replay_log(twice, twice_risk, _log(), seconds=seconds)
    assert _state(twice) == _state(once)
    checks = [
        risk.check(product_id="BTC-USD", side=Side.BUY, notional=D(10), position_notional=D(0),
                   open_orders=0, equity=D(1000), now=1_767_225_630.0,
                   last_tick_at=1_767_225_630.0)
        for risk in (once_risk, twice_risk)
    ]  # fmt: skip
    assert checks[0] == checks[1] and checks[0] is not None
    assert checks[0].detail.startswith("BTC-USD filled 25.0s ago")  # the latest fill's time


kinds = st.sampled_from(list(OrderEventType))
events = st.lists(
    st.tuples(st.sampled_from("abc"), kinds, st.integers(0, 3), st.sampled_from([None, "r"])),
    max_size=30,
).map(
    lambda picks: [
        _event(_request(coid), kind, reason=reason, exchange_id=f"x-{coid}" if n else None,
               fill=_fill(coid, n, "0.1") if kind in (E.FILLED, E.PARTIALLY_FILLED) and n
               else None)
        for coid, kind, n, reason in picks
    ]
)  # fmt: skip


@given(events)
def test_property_folding_any_log_again_changes_nothing(log: list[OrderEvent]) -> None:
    once, again, doubled = Blotter(D(1000)), Blotter(D(1000)), Blotter(D(1000))
    for event in log:
        once.apply(event)
        doubled.apply(event)
        doubled.apply(event)
    for event in [*log, *log]:
        again.apply(event)
    assert _state(again) == _state(once) == _state(doubled)
