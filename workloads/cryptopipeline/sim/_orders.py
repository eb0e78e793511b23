"""The simulator's trading account: Advanced Trade orders, fills and balances (no I/O).

Fill model: a market (IOC) order fills at once, completely, at the current best ask (buy) or
best bid (sell) of the simulated market, as taker. A GTC limit order that crosses the book fills
at once as taker at the book price; otherwise it rests and fills completely at its limit price,
as maker, once the market trades through it (checked whenever the API is called). A
`client_order_id` that was used before returns the existing order: it never creates another.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cryptopipeline.coinbase import (
    CreateOrder,
    OrderFill,
    OrderWireError,
    UnsupportedOrder,
    order_object,
    parse_create_order,
    read_client_order_id,
)
from cryptopipeline.sim._events import Quote
from cryptopipeline.sim._ledger import TradeLedger
from cryptopipeline.sim._products import product_spec

_BPS = Decimal(10_000)
_USER_ID = "sim-user"


class OrderRejected(Exception):
    """A business rejection: Advanced Trade answers 200 with `success: false`."""

    def __init__(self, error: str, message: str, preview: str = "") -> None:
        super().__init__(message)
        self.error = error
        self.message = message
        self.preview = preview


class BadOrderRequest(ValueError):
    """A malformed request body: a 400."""


@dataclass(slots=True)
class SimOrder:
    order_id: str
    request: CreateOrder
    created_time: str
    status: str = "OPEN"
    fills: list[OrderFill] = field(default_factory=list)

    @property
    def client_order_id(self) -> str:
        return self.request.client_order_id

    @property
    def product_id(self) -> str:
        return self.request.product_id

    @property
    def filled_size(self) -> Decimal:
        return sum((f.size for f in self.fills), Decimal(0))

    def as_json(self) -> dict[str, Any]:
        return order_object(
            self.request, order_id=self.order_id, user_id=_USER_ID, status=self.status,
            created_time=self.created_time, fills=self.fills,
        )  # fmt: skip


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SimAccount:
    """One account's balances and orders, priced by the simulated market."""

    def __init__(
        self,
        ledger: TradeLedger,
        *,
        cash: Decimal,
        quote_currency: str = "USD",
        taker_fee_bps: Decimal = Decimal(60),
        maker_fee_bps: Decimal = Decimal(40),
    ) -> None:
        self.ledger = ledger
        self.quote_currency = quote_currency
        self.balances: dict[str, Decimal] = {quote_currency: cash}
        self.taker_fee_bps = taker_fee_bps
        self.maker_fee_bps = maker_fee_bps
        self.orders: dict[str, SimOrder] = {}
        self._by_client_id: dict[str, str] = {}
        self._fill_ids = itertools.count(1)
        self.create_requests = 0

    # -- orders ------------------------------------------------------------------------------

    def find_by_client_id(self, client_order_id: str) -> SimOrder | None:
        order_id = self._by_client_id.get(client_order_id)
        return self.orders[order_id] if order_id else None

    def create(self, body: Mapping[str, Any]) -> tuple[SimOrder, bool]:
        """The order for this request and whether it is new: a `client_order_id` seen before
        returns its order, whatever else the body says. Raises BadOrderRequest (a 400) or
        OrderRejected (a business rejection)."""
        self.create_requests += 1
        try:
            existing = self.find_by_client_id(read_client_order_id(body))
        except OrderWireError as exc:
            raise BadOrderRequest(str(exc)) from None
        if existing is not None:
            return existing, False
        request = self._parse(body)
        quote = self._check_funds(request)
        order = SimOrder(str(uuid.uuid4()), request, created_time=_now())
        self.orders[order.order_id] = order
        self._by_client_id[request.client_order_id] = order.order_id
        self._match(order, quote)
        return order, True

    def _parse(self, body: Mapping[str, Any]) -> CreateOrder:
        """The request, by the wire's rules and then the product's increments."""
        try:
            request = parse_create_order(body)
        except UnsupportedOrder as exc:
            raise OrderRejected("UNSUPPORTED_ORDER_CONFIGURATION", str(exc)) from None
        except OrderWireError as exc:
            if exc.field == "product_id":
                raise OrderRejected("INVALID_PRODUCT_ID", str(exc)) from None
            raise BadOrderRequest(str(exc)) from None
        if not self.ledger.has_product(request.product_id):
            raise OrderRejected("INVALID_PRODUCT_ID", f"unknown product {request.product_id!r}")
        spec = product_spec(request.product_id)
        price = request.limit_price
        if price is not None and (price <= 0 or price % spec.quote_increment != 0):
            raise OrderRejected(
                "INVALID_PRICE_PRECISION",
                f"limit_price must be a positive multiple of {spec.quote_increment}",
                "PREVIEW_INVALID_PRICE_PRECISION",
            )
        if request.base_size <= 0 or request.base_size % spec.base_increment != 0:
            raise OrderRejected(
                "INVALID_SIZE_PRECISION",
                f"base_size must be a positive multiple of {spec.base_increment}",
                "PREVIEW_INVALID_SIZE_PRECISION",
            )
        return request

    def _check_funds(self, request: CreateOrder) -> Quote:
        """The market the order meets, once the account can pay for it (taker fee included)."""
        quote = self.ledger.quote(request.product_id)
        if quote is None:
            raise OrderRejected("INSUFFICIENT_LIQUIDITY", "no market yet", "")
        if request.side == "BUY":
            limit = request.limit_price
            reference = quote.best_ask if limit is None else limit
            need = request.base_size * reference * (1 + self.taker_fee_bps / _BPS)
            have = self.balances.get(self.quote_currency, Decimal(0))
        else:
            need = request.base_size
            have = self.balances.get(request.product_id.split("-")[0], Decimal(0))
        if need > have:
            raise OrderRejected(
                "INSUFFICIENT_FUND",
                "Insufficient balance in source account",
                "PREVIEW_INSUFFICIENT_FUND",
            )
        return quote

    def _match(self, order: SimOrder, quote: Quote) -> None:
        """A market order, or a limit order that crosses the book, fills now as taker at the
        book's price; any other limit order rests."""
        buy = order.request.side == "BUY"
        book = quote.best_ask if buy else quote.best_bid
        price = order.request.limit_price
        if price is None or (price >= book if buy else price <= book):
            self._fill(order, book, "TAKER")

    def cancel(self, order_id: str) -> tuple[bool, str]:
        order = self.orders.get(order_id)
        if order is None:
            return False, "UNKNOWN_CANCEL_ORDER"
        if order.status != "OPEN":
            return False, "COMMANDER_REJECTED_CANCEL_ORDER"
        order.status = "CANCELLED"
        return True, "UNKNOWN_CANCEL_FAILURE_REASON"

    def match_resting(self) -> None:
        """Fill resting limit orders the market has traded through."""
        for order in self.orders.values():
            price = order.request.limit_price
            if order.status != "OPEN" or price is None:
                continue
            quote = self.ledger.quote(order.product_id)
            if quote is None:
                continue
            if quote.best_ask <= price if order.request.side == "BUY" else quote.best_bid >= price:
                self._fill(order, price, "MAKER")

    def _fill(self, order: SimOrder, price: Decimal, liquidity: str) -> None:
        side = order.request.side
        size = order.request.base_size - order.filled_size
        bps = self.taker_fee_bps if liquidity == "TAKER" else self.maker_fee_bps
        commission = size * price * bps / _BPS
        base = order.product_id.split("-")[0]
        quote_delta = size * price
        balances = self.balances
        zero = Decimal(0)
        if side == "BUY":
            balances[self.quote_currency] = balances.get(self.quote_currency, zero) - (
                quote_delta + commission
            )
            balances[base] = balances.get(base, zero) + size
        else:
            balances[self.quote_currency] = balances.get(self.quote_currency, zero) + (
                quote_delta - commission
            )
            balances[base] = balances.get(base, zero) - size
        n = next(self._fill_ids)
        order.fills.append(
            OrderFill(
                entry_id=f"sim-fill-{n}",
                trade_id=f"sim-trade-{n}",
                order_id=order.order_id,
                time=_now(),
                price=price,
                size=size,
                commission=commission,
                product_id=order.product_id,
                side=side,
                liquidity=liquidity,
                user_id=_USER_ID,
            )
        )
        order.status = "FILLED"

    def account(self) -> dict[str, Any]:
        return {
            "balances": {k: str(v) for k, v in self.balances.items()},
            "orders": len(self.orders),
            "create_requests": self.create_requests,
        }
