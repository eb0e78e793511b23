"""Order planning and outcome folding: the bot's decisions, without its I/O.

`plan_signal` turns one signal and the book it is priced at into the order to send or the
reason there is none (`plan_order`: sizing, then risk, then the order type);
`outcome_events` turns a broker's answer into the order events to log; `fold_event` books a
logged event into the blotter and risk, and `replay_log` rebuilds both from a whole order log.
The live bot and the backtest call these same functions, so a replay decides exactly as the
service does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

from cryptopipeline.records import TradeSignal
from cryptopipeline.trading.blotter import Blotter
from cryptopipeline.trading.orders import (
    BrokerUpdate,
    Fill,
    OrderEvent,
    OrderEventType,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    client_order_id_for,
)
from cryptopipeline.trading.risk import RiskEngine
from cryptopipeline.trading.sizing import ProductIncrements, SizedOrder, Sizing, size_order

_BPS = Decimal(10_000)
_ZERO = Decimal(0)
_TERMINAL_EVENT: Mapping[OrderStatus, OrderEventType] = {
    OrderStatus.FILLED: OrderEventType.FILLED,
    OrderStatus.CANCELLED: OrderEventType.CANCELLED,
    OrderStatus.REJECTED: OrderEventType.REJECTED,
    OrderStatus.FAILED: OrderEventType.FAILED,
}


class OrderPolicy(Protocol):
    """What planning reads from the bot's trading settings (`TradingSettings` is one)."""

    @property
    def sizing(self) -> Sizing: ...

    @property
    def order_type(self) -> Literal["market", "limit"]: ...

    @property
    def limit_offset_bps(self) -> Decimal: ...

    def product_increments(self, product_id: str) -> ProductIncrements: ...


@dataclass(frozen=True, slots=True)
class PlanRejection:
    """Why a signal gets no order: a reason code (risk's or sizing's) and a detail."""

    reason: str
    detail: str


def plan_order(
    policy: OrderPolicy,
    *,
    client_order_id: str,
    signal_id: str,
    product_id: str,
    side: Side,
    price: Decimal,
    blotter: Blotter,
    risk: RiskEngine,
    now: float,
    last_tick_at: float | None,
) -> OrderRequest | PlanRejection:
    """Sizing and risk for one signal at `price`: the order to send, or why there is none."""
    portfolio = blotter.portfolio
    quantity = portfolio.quantity(product_id)
    increments = policy.product_increments(product_id)
    sized = size_order(
        policy.sizing, increments, side=side, price=price, equity=portfolio.equity,
        position=quantity,
    )  # fmt: skip
    if not isinstance(sized, SizedOrder):
        return PlanRejection(sized, f"sizing at {price}: {sized}")
    rejection = risk.check(
        product_id=product_id, side=side, notional=sized.notional,
        position_notional=quantity * price, open_orders=len(blotter.open_orders()),
        equity=portfolio.equity, now=now, last_tick_at=last_tick_at,
    )  # fmt: skip
    if rejection is not None:
        return PlanRejection(rejection.reason.value, rejection.detail)
    if policy.order_type == "limit":
        offset = price * policy.limit_offset_bps / _BPS
        inside = price - offset if side is Side.BUY else price + offset
        limit = increments.round_price(inside, side)
        return OrderRequest(client_order_id, signal_id, product_id, side, OrderType.LIMIT,
                            sized.base_size, limit, price)  # fmt: skip
    return OrderRequest(client_order_id, signal_id, product_id, side, OrderType.MARKET,
                        sized.base_size, None, price)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SignalPlan:
    """What one signal comes to: `received`, the request without a size that its `received`
    and `rejected` events carry, and `decision`, the order to send or why there is none."""

    received: OrderRequest
    decision: OrderRequest | PlanRejection


def plan_signal(
    policy: OrderPolicy,
    signal: TradeSignal,
    *,
    book: tuple[Decimal, Decimal] | None,
    blotter: Blotter,
    risk: RiskEngine,
    now: float,
    last_tick_at: float | None,
) -> SignalPlan:
    """The order for `signal` at the book `(bid, ask)`: a buy is priced at the ask, a sell at
    the bid, and without a book at the candle's close (risk then refuses it: no price).
    `now` and `last_tick_at` are seconds since the epoch, as `RiskEngine.check` takes them."""
    side = signal.action
    touch = None if book is None else (book[1] if side is Side.BUY else book[0])
    price = signal.close_price if touch is None else touch
    coid = client_order_id_for(signal.signal_id)
    product = signal.product_id
    received = OrderRequest(coid, signal.signal_id, product, side, OrderType.MARKET, _ZERO,
                            reference_price=price)  # fmt: skip
    decision = plan_order(
        policy, client_order_id=coid, signal_id=signal.signal_id, product_id=product,
        side=side, price=price, blotter=blotter, risk=risk, now=now, last_tick_at=last_tick_at,
    )  # fmt: skip
    return SignalPlan(received, decision)


@dataclass(frozen=True, slots=True)
class PlannedEvent:
    """One order event a broker answer calls for (logged and folded by the caller)."""

    event: OrderEventType
    exchange_order_id: str | None = None
    fill: Fill | None = None
    reason: str | None = None
    detail: str | None = None


def outcome_events(
    blotter: Blotter, request: OrderRequest, update: BrokerUpdate
) -> list[PlannedEvent]:
    """The events that record `update` for `request`, given what the blotter already holds:
    `accepted` once an exchange id is first known, one `filled` / `partially_filled` per fill
    not booked before, and the terminal event unless a fill already said it."""
    events: list[PlannedEvent] = []
    order = blotter.orders.get(request.client_order_id)
    exchange_id = update.exchange_order_id
    if exchange_id and (order is None or order.exchange_order_id is None):
        events.append(PlannedEvent(OrderEventType.ACCEPTED, exchange_id))
    portfolio = blotter.portfolio
    seen: set[str] = set()
    partial = update.status is OrderStatus.OPEN
    kind = OrderEventType.PARTIALLY_FILLED if partial else OrderEventType.FILLED
    for fill in update.fills:
        if portfolio.has_fill(fill.fill_id) or fill.fill_id in seen:
            continue
        seen.add(fill.fill_id)
        events.append(PlannedEvent(kind, exchange_id, fill=fill))
    terminal = _TERMINAL_EVENT.get(update.status)
    if terminal is not None and not (terminal is OrderEventType.FILLED and update.fills):
        events.append(PlannedEvent(terminal, exchange_id, reason=update.reason,
                                   detail=update.detail))  # fmt: skip
    return events


def fold_event(blotter: Blotter, risk: RiskEngine, event: OrderEvent, *, at: float) -> None:
    """Book one event as it is logged: the order's state and the portfolio (`Blotter.apply`),
    and for a fill the product's cooldown, counted from `at` (seconds since the epoch)."""
    blotter.apply(event)
    if _is_fill(event):
        risk.note_fill(event.product_id, at)


def replay_log(
    blotter: Blotter,
    risk: RiskEngine,
    events: Iterable[OrderEvent],
    *,
    seconds: Callable[[str], float],
) -> None:
    """Rebuild the blotter and risk's fill times from an order log read from its start; a
    fill's cooldown counts from its event's own time (`seconds` reads a record's `time`).
    Folding is idempotent: replaying the log again, or any event twice, changes nothing."""
    for event in events:
        blotter.apply(event)
        if _is_fill(event):
            risk.note_fill(event.product_id, seconds(event.time))


def _is_fill(event: OrderEvent) -> bool:
    return event.fill is not None and event.side is not None  # as `orders.fill_of`
