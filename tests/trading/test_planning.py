"""Order planning (signal -> order or rejection), outcome events and their folding, without
a broker; and the event clock's books."""

from __future__ import annotations

from decimal import Decimal as D

from cryptopipeline.records import CandleWindow, TradeSignal
from cryptopipeline.trading import (
    Blotter,
    BrokerUpdate,
    Fill,
    OrderEvent,
    OrderEventType,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    RiskEngine,
    RiskLimits,
    Side,
    TradingSettings,
    client_order_id_for,
)
from cryptopipeline.trading.books import BookHistory
from cryptopipeline.trading.orders import order_event
from cryptopipeline.trading.planning import (
    PlanRejection,
    SignalPlan,
    fold_event,
    outcome_events,
    plan_order,
    plan_signal,
)


def _plan(**overrides: object) -> OrderRequest | PlanRejection:
    values: dict[str, object] = dict(
        client_order_id="c-1", signal_id="s-1", product_id="BTC-USD", side=OrderSide.BUY,
        price=D(100), blotter=Blotter(D(1000)), risk=RiskEngine(RiskLimits()), now=10.0,
        last_tick_at=9.0,
    )  # fmt: skip
    values.update(overrides)
    return plan_order(TradingSettings(), **values)  # type: ignore[arg-type]


def test_plan_sizes_a_market_order() -> None:
    order = _plan()
    assert order == OrderRequest("c-1", "s-1", "BTC-USD", OrderSide.BUY, OrderType.MARKET,
                                 D(1), None, D(100))  # fmt: skip


def test_plan_rejections_name_the_rule() -> None:
    assert _plan(side=OrderSide.SELL) == PlanRejection("no_position", "sizing at 100: no_position")
    stale = _plan(now=100.0)
    assert isinstance(stale, PlanRejection) and stale.reason == "stale_price"
    none = _plan(last_tick_at=None)
    assert isinstance(none, PlanRejection) and none.reason == "no_price"


def test_limit_orders_price_inside_the_touch() -> None:
    settings = TradingSettings(order_type="limit", limit_offset_bps=D(100))
    order = plan_order(
        settings, client_order_id="c", signal_id="s", product_id="BTC-USD", side=OrderSide.BUY,
        price=D(100), blotter=Blotter(D(1000)), risk=RiskEngine(RiskLimits()), now=1.0,
        last_tick_at=1.0,
    )  # fmt: skip
    assert isinstance(order, OrderRequest) and order.limit_price == D(99)


def _fill(fill_id: str) -> Fill:
    return Fill(fill_id, "c", "BTC-USD", OrderSide.BUY, D(100), D(1), D("0.6"))


def test_outcome_events_of_a_fill() -> None:
    request = OrderRequest("c", "s", "BTC-USD", OrderSide.BUY, OrderType.MARKET, D(1))
    update = BrokerUpdate("c", OrderStatus.FILLED, "x-1", fills=(_fill("f1"), _fill("f1")))
    events = outcome_events(Blotter(D(1000)), request, update)
    assert [e.event for e in events] == [OrderEventType.ACCEPTED, OrderEventType.FILLED]
    assert events[1].fill == _fill("f1")


def test_outcome_events_of_a_rejection_and_a_partial() -> None:
    request = OrderRequest("c", "s", "BTC-USD", OrderSide.BUY, OrderType.MARKET, D(1))
    rejected = outcome_events(Blotter(D(0)), request, BrokerUpdate(
        "c", OrderStatus.REJECTED, reason="broker_no_price"))  # fmt: skip
    assert [(e.event, e.reason) for e in rejected] == [(OrderEventType.REJECTED, "broker_no_price")]
    partial = outcome_events(Blotter(D(0)), request, BrokerUpdate(
        "c", OrderStatus.OPEN, None, fills=(_fill("f1"),)))  # fmt: skip
    assert [e.event for e in partial] == [OrderEventType.PARTIALLY_FILLED]


def test_book_as_of_a_candle_close_ignores_late_ticks() -> None:
    books = BookHistory(horizon_s=10)
    books.on_tick("BTC-USD", 1_000_000, D(1), D(2))
    books.on_tick("BTC-USD", 1_900_000, D(3), D(4))
    books.on_tick("BTC-USD", 2_100_000, D(5), D(6))
    books.on_tick("BTC-USD", 1_950_000, D(7), D(8))  # late: not a book
    at = books.as_of("BTC-USD", 2_000_000)
    assert at is not None and (at.bid, at.ask, at.time_us) == (D(3), D(4), 1_900_000)
    assert books.as_of("BTC-USD", 1_000_000) is None
    books.on_heartbeat("BTC-USD", 30_000_000)
    assert books.watermark_us("BTC-USD") == 30_000_000
    books.on_tick("BTC-USD", 31_000_000, D(9), D(10))
    kept = books.as_of("BTC-USD", 3_000_000)  # the newest book beyond the horizon stays
    assert kept is not None and kept.time_us == 2_100_000
    assert books.as_of("BTC-USD", 2_000_000) is None  # older ones are gone


def _event(kind: OrderEventType, coid: str) -> OrderEvent:
    return OrderEvent(event=kind, client_order_id=coid, signal_id="s-" + coid,
                      product_id="BTC-USD", time="2026-01-01T00:00:00Z", broker="paper",
                      side=OrderSide.BUY, order_type=OrderType.MARKET,
                      base_size=D(1))  # fmt: skip


def test_blotter_keeps_its_open_orders_as_events_arrive() -> None:
    blotter = Blotter(D(1000))
    blotter.apply(_event(OrderEventType.RECEIVED, "a"))
    assert blotter.open_orders() == []
    blotter.apply(_event(OrderEventType.SUBMITTED, "a"))
    blotter.apply(_event(OrderEventType.SUBMITTED, "b"))
    assert [o.client_order_id for o in blotter.open_orders()] == ["a", "b"]
    blotter.apply(_event(OrderEventType.CANCELLED, "a"))
    blotter.apply(_event(OrderEventType.SUBMITTED, "a"))  # a replayed event reopens nothing
    assert [o.client_order_id for o in blotter.open_orders()] == ["b"]


def _signal(action: Side, close: str = "100") -> TradeSignal:
    return TradeSignal(
        signal_id="signal-0001", product_id="BTC-USD", event_time="2026-01-01T00:01:00Z",
        action=action, strategy="test", parameters={}, indicators={},
        window=CandleWindow(start="2026-01-01T00:00:00Z", end="2026-01-01T00:01:00Z",
                            interval_s=60),
        close_price=D(close), last_trade_id=1,
    )  # fmt: skip


def _plan_signal(signal: TradeSignal, book: tuple[D, D] | None, blotter: Blotter) -> SignalPlan:
    return plan_signal(TradingSettings(), signal, book=book, blotter=blotter,
                       risk=RiskEngine(RiskLimits()), now=10.0,
                       last_tick_at=None if book is None else 9.0)  # fmt: skip


def test_a_signal_is_priced_at_the_side_of_the_book_it_takes() -> None:
    coid = client_order_id_for("signal-0001")
    buy = _plan_signal(_signal(Side.BUY), (D(99), D(100)), Blotter(D(1000)))
    assert buy.received == OrderRequest(coid, "signal-0001", "BTC-USD", Side.BUY,
                                        OrderType.MARKET, D(0), None, D(100))  # fmt: skip
    assert buy.decision == OrderRequest(coid, "signal-0001", "BTC-USD", Side.BUY,
                                        OrderType.MARKET, D(1), None, D(100))  # fmt: skip
    holding = Blotter(D(1000))
    holding.portfolio.apply_fill(Fill("f", "c", "BTC-USD", Side.BUY, D(50), D(3), D(0)))
    sell = _plan_signal(_signal(Side.SELL), (D(80), D(100)), holding)
    assert isinstance(sell.decision, OrderRequest)
    assert (sell.decision.reference_price, sell.decision.base_size) == (D(80), D("1.25"))


def test_without_a_book_a_signal_carries_its_close_and_gets_no_order() -> None:
    plan = _plan_signal(_signal(Side.BUY, close="123"), None, Blotter(D(1000)))
    assert plan.received.reference_price == D(123)
    assert plan.decision == PlanRejection("no_price", "no tick seen for BTC-USD")


def test_folding_a_fill_starts_the_products_cooldown() -> None:
    blotter, risk = Blotter(D(1000)), RiskEngine(RiskLimits(cooldown_after_fill_s=30))
    request = OrderRequest("c", "s", "BTC-USD", Side.BUY, OrderType.MARKET, D(1))
    for event in outcome_events(blotter, request, BrokerUpdate(
            "c", OrderStatus.FILLED, "x", fills=(_fill("f1"),))):  # fmt: skip
        fold_event(blotter, risk, order_event(
            request, event.event, time="t", broker="paper", exchange_id=event.exchange_order_id,
            fill=event.fill), at=100.0)  # fmt: skip
    assert blotter.orders["c"].state is OrderEventType.FILLED
    assert blotter.portfolio.quantity("BTC-USD") == D(1)
    refused = risk.check(product_id="BTC-USD", side=Side.BUY, notional=D(1),
                         position_notional=D(0), open_orders=0, equity=D(1000), now=110.0,
                         last_tick_at=110.0)  # fmt: skip
    assert refused is not None and refused.reason.value == "cooldown"
