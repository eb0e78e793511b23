"""The paper broker: a simulated venue that fills against the book tops it is given, in process.

Market orders fill at once at the best ask (buy) / best bid (sell), moved against the order
by `slippage_bps`, with the taker fee. A limit order that crosses the book fills at once like a
market order capped at its limit; otherwise it rests and fills at its limit price, with the
maker fee, on the first tick whose ask (buy) or bid (sell) reaches it. The same ticks and
orders always give the same fills (fill ids come from the client order id).

Pure simulation: the bot (through its `Broker` protocol) and the backtest drive the same class.
Its coroutines never wait on anything; they exist so the bot can treat it as any other venue.
Its state lives in the process: resting orders do not survive a restart (`lost_on_restart`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from cryptopipeline.trading.orders import (
    BrokerUpdate,
    Fill,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
)

_BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class BookTop:
    bid: Decimal
    ask: Decimal
    time: str


class PaperBroker:
    """Market and limit orders against the latest book top per product (`on_tick`)."""

    name = "paper"

    def __init__(
        self,
        *,
        slippage_bps: Decimal = Decimal(0),
        maker_fee_bps: Decimal = Decimal(40),
        taker_fee_bps: Decimal = Decimal(60),
    ) -> None:
        self.slippage_bps = slippage_bps
        self.maker_fee_bps = maker_fee_bps
        self.taker_fee_bps = taker_fee_bps
        self.books: dict[str, BookTop] = {}
        self._resting: dict[str, OrderRequest] = {}
        self._known: dict[str, BrokerUpdate] = {}
        self._news: list[BrokerUpdate] = []

    def on_tick(self, product_id: str, bid: Decimal, ask: Decimal, time: str) -> None:
        """A new book top; resting limit orders it reaches fill now (see `poll`)."""
        self.books[product_id] = BookTop(bid, ask, time)
        for coid, order in list(self._resting.items()):
            if order.product_id != product_id or order.limit_price is None:
                continue
            crossed = (
                ask <= order.limit_price if order.side is Side.BUY else (bid >= order.limit_price)
            )
            if crossed:
                del self._resting[coid]
                update = self._filled(order, order.limit_price, maker=True, time=time)
                self._known[coid] = update
                self._news.append(update)

    async def submit(self, order: OrderRequest) -> BrokerUpdate:
        return self.submit_now(order)

    def submit_now(self, order: OrderRequest) -> BrokerUpdate:
        """Place the order: filled, resting (OPEN) or rejected (`broker_no_price`) at once; the
        same client order id again gets the first answer back, never a second order."""
        known = self._known.get(order.client_order_id)
        if known is not None:
            return known
        book = self.books.get(order.product_id)
        if book is None:
            update = BrokerUpdate(
                order.client_order_id, OrderStatus.REJECTED, reason="broker_no_price"
            )
            self._known[order.client_order_id] = update
            return update
        touch = book.ask if order.side is Side.BUY else book.bid
        slip = touch * self.slippage_bps / _BPS
        price = touch + slip if order.side is Side.BUY else touch - slip
        if order.order_type is OrderType.LIMIT and order.limit_price is not None:
            crosses = (
                touch <= order.limit_price
                if order.side is Side.BUY
                else (touch >= order.limit_price)
            )
            if not crosses:
                self._resting[order.client_order_id] = order
                update = BrokerUpdate(
                    order.client_order_id, OrderStatus.OPEN, f"paper-{order.client_order_id}"
                )
                self._known[order.client_order_id] = update
                return update
            price = (
                min(price, order.limit_price)
                if order.side is Side.BUY
                else max(price, order.limit_price)
            )
        update = self._filled(order, price, maker=False, time=book.time)
        self._known[order.client_order_id] = update
        return update

    def _filled(
        self, order: OrderRequest, price: Decimal, *, maker: bool, time: str
    ) -> BrokerUpdate:
        bps = self.maker_fee_bps if maker else self.taker_fee_bps
        fill = Fill(
            fill_id=f"paper-{order.client_order_id}-1",
            client_order_id=order.client_order_id,
            product_id=order.product_id,
            side=order.side,
            price=price,
            size=order.base_size,
            fee=order.base_size * price * bps / _BPS,
            liquidity="MAKER" if maker else "TAKER",
            time=time,
        )
        return BrokerUpdate(
            order.client_order_id,
            OrderStatus.FILLED,
            f"paper-{order.client_order_id}",
            fills=(fill,),
        )

    async def lookup(self, order: OrderRequest) -> BrokerUpdate | None:
        return self._known.get(order.client_order_id)

    async def cancel(self, orders: Sequence[tuple[str, str | None]]) -> list[BrokerUpdate]:
        updates = []
        for coid, exchange_id in orders:
            if self._resting.pop(coid, None) is not None:
                update = BrokerUpdate(coid, OrderStatus.CANCELLED, exchange_id)
                self._known[coid] = update
                updates.append(update)
        return updates

    async def poll(self, orders: Sequence[tuple[str, str | None]]) -> list[BrokerUpdate]:
        """The resting orders filled since the last poll (whatever `orders` says)."""
        news, self._news = self._news, []
        return news

    async def lost_on_restart(self, orders: Sequence[tuple[str, str | None]]) -> list[BrokerUpdate]:
        """Resting orders lived in the process that logged them: after a restart, every open
        order of the log is cancelled (`paper_restart`)."""
        return [
            BrokerUpdate(coid, OrderStatus.CANCELLED, reason="paper_restart")
            for coid, _ in orders
            if coid not in self._resting
        ]

    async def aclose(self) -> None:
        """Nothing to release."""
