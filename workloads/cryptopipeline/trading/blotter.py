"""The blotter: every order's latest state and the portfolio, folded from order events.

The same fold serves the live bot and its recovery: replaying `btc_usd_orders` from the start
gives back positions, PnL and open orders, and names the orders that were submitted without a
known outcome (to be asked about, never resent). Replaying an event twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cryptopipeline.trading.orders import (
    OrderEvent,
    OrderEventType,
    OrderRequest,
    OrderType,
    Side,
    fill_of,
)
from cryptopipeline.trading.portfolio import Portfolio


@dataclass(slots=True)
class TrackedOrder:
    """One order as its events tell it: who it is, how far it got, and its terms (the
    `OrderRequest` its events carry) once one of them carried them."""

    client_order_id: str
    signal_id: str
    product_id: str
    state: OrderEventType
    terms: OrderRequest | None = None
    exchange_order_id: str | None = None
    submitted: bool = False
    reason: str | None = None

    @property
    def side(self) -> Side | None:
        return None if self.terms is None else self.terms.side

    @property
    def order_type(self) -> OrderType | None:
        return None if self.terms is None else self.terms.order_type

    @property
    def base_size(self) -> Decimal | None:
        return None if self.terms is None else self.terms.base_size

    @property
    def limit_price(self) -> Decimal | None:
        return None if self.terms is None else self.terms.limit_price

    @property
    def reference_price(self) -> Decimal | None:
        return None if self.terms is None else self.terms.reference_price

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    @property
    def unresolved(self) -> bool:
        """Submitted, and no broker answer was logged."""
        return self.submitted and self.state is OrderEventType.SUBMITTED

    @property
    def open(self) -> bool:
        return self.submitted and not self.terminal

    def request(self) -> OrderRequest:
        assert self.terms is not None, "no event of this order carried its terms"
        return self.terms


def _terms(event: OrderEvent, known: OrderRequest | None) -> OrderRequest | None:
    """The order's terms after `event`: a field the event leaves out keeps its known value."""

    def pick(name: str) -> Any:
        value = getattr(event, name)
        return value if value is not None or known is None else getattr(known, name)

    side, order_type, size = pick("side"), pick("order_type"), pick("base_size")
    if side is None or order_type is None or size is None:
        return known
    return OrderRequest(
        event.client_order_id, event.signal_id, event.product_id, side, order_type, size,
        pick("limit_price"), pick("reference_price"),
    )  # fmt: skip


class Blotter:
    def __init__(self, starting_cash: Decimal) -> None:
        self.portfolio = Portfolio(starting_cash)
        self.orders: dict[str, TrackedOrder] = {}
        self._open: dict[str, TrackedOrder] = {}
        """The open orders, kept as events arrive: risk asks for them before every order, and
        a scan of every order ever seen made a long run (or a backtest) quadratic."""

    def apply(self, event: OrderEvent) -> None:
        order = self.orders.get(event.client_order_id)
        if order is None:
            order = self.orders[event.client_order_id] = TrackedOrder(
                event.client_order_id, event.signal_id, event.product_id, event.event
            )
        order.terms = _terms(event, order.terms)
        if event.exchange_order_id:
            order.exchange_order_id = event.exchange_order_id
        if event.event is OrderEventType.SUBMITTED:
            order.submitted = True
        if event.reason:
            order.reason = event.reason
        fill = fill_of(event)
        if fill is not None:
            self.portfolio.apply_fill(fill)
        if not order.terminal and _RANK[event.event] >= _RANK[order.state]:
            order.state = event.event
        if order.open:
            self._open[order.client_order_id] = order
        else:
            self._open.pop(order.client_order_id, None)

    def decided(self, client_order_id: str) -> bool:
        """The order went past `received`: its signal was decided before (a redelivered or
        replayed signal must not be decided again)."""
        order = self.orders.get(client_order_id)
        return order is not None and order.state is not OrderEventType.RECEIVED

    def open_orders(self) -> list[TrackedOrder]:
        return list(self._open.values())

    def unresolved(self) -> list[TrackedOrder]:
        return [o for o in self.orders.values() if o.unresolved]


_RANK = {
    OrderEventType.RECEIVED: 0,
    OrderEventType.SUBMITTED: 1,
    OrderEventType.ACCEPTED: 2,
    OrderEventType.PARTIALLY_FILLED: 3,
    OrderEventType.REJECTED: 4,
    OrderEventType.FILLED: 4,
    OrderEventType.CANCELLED: 4,
    OrderEventType.FAILED: 4,
}
