"""Order planning and outcome folding: the bot's decisions, without its I/O.

`plan_order` turns one signal into the order to send (sizing, then risk, then the order type)
or the reason there is none; `outcome_events` turns a broker's answer into the order events to
log. The live bot and the backtest call these same two functions, so a replay decides exactly
as the service does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

from cryptopipeline.trading.blotter import Blotter
from cryptopipeline.trading.orders import (
    BrokerUpdate,
    Fill,
    OrderEventType,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
)
from cryptopipeline.trading.risk import RiskEngine
from cryptopipeline.trading.sizing import ProductIncrements, SizedOrder, Sizing, size_order

_BPS = Decimal(10_000)
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
