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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from cryptopipeline.sim._ledger import TradeLedger
from cryptopipeline.sim._products import product_spec

_BPS = Decimal(10_000)


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
class SimFill:
    entry_id: str
    trade_id: str
    order_id: str
    time: str
    price: Decimal
    size: Decimal
    commission: Decimal
    product_id: str
    side: str
    liquidity: str

    def as_json(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "trade_id": self.trade_id,
            "order_id": self.order_id,
            "trade_time": self.time,
            "trade_type": "FILL",
            "price": str(self.price),
            "size": str(self.size),
            "commission": str(self.commission),
            "product_id": self.product_id,
            "sequence_timestamp": self.time,
            "liquidity_indicator": self.liquidity,
            "size_in_quote": False,
            "user_id": "sim-user",
            "side": self.side,
        }


@dataclass(slots=True)
class SimOrder:
    order_id: str
    client_order_id: str
    product_id: str
    side: str
    order_type: str  # MARKET | LIMIT
    base_size: Decimal
    limit_price: Decimal | None
    configuration: dict[str, Any]
    created_time: str
    status: str = "OPEN"
    fills: list[SimFill] = field(default_factory=list)

    @property
    def filled_size(self) -> Decimal:
        return sum((f.size for f in self.fills), Decimal(0))

    def as_json(self) -> dict[str, Any]:
        filled = self.filled_size
        value = sum((f.size * f.price for f in self.fills), Decimal(0))
        fees = sum((f.commission for f in self.fills), Decimal(0))
        average = value / filled if filled else Decimal(0)
        return {
            "order_id": self.order_id,
            "product_id": self.product_id,
            "user_id": "sim-user",
            "order_configuration": self.configuration,
            "side": self.side,
            "client_order_id": self.client_order_id,
            "status": self.status,
            "time_in_force": (
                "IMMEDIATE_OR_CANCEL" if self.order_type == "MARKET" else "GOOD_UNTIL_CANCELLED"
            ),
            "created_time": self.created_time,
            "completion_percentage": str(filled / self.base_size * 100 if self.base_size else 0),
            "filled_size": str(filled),
            "average_filled_price": str(average),
            "fee": "",
            "number_of_fills": str(len(self.fills)),
            "filled_value": str(value),
            "pending_cancel": False,
            "size_in_quote": False,
            "total_fees": str(fees),
            "size_inclusive_of_fees": False,
            "total_value_after_fees": str(value + fees if self.side == "BUY" else value - fees),
            "order_type": self.order_type,
            "product_type": "SPOT",
        }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _decimal(value: object, name: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise BadOrderRequest(f"{name} is not a decimal string") from None
    if not number.is_finite():
        raise BadOrderRequest(f"{name} is not a finite number")
    return number


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

    def create(self, body: dict[str, Any]) -> tuple[SimOrder, bool]:
        """The order for this request and whether it is new; raises OrderRejected."""
        self.create_requests += 1
        client_order_id = body.get("client_order_id")
        if not isinstance(client_order_id, str) or not client_order_id:
            raise BadOrderRequest("client_order_id is required")
        existing = self.find_by_client_id(client_order_id)
        if existing is not None:
            return existing, False
        product_id = body.get("product_id")
        side = body.get("side")
        if side not in ("BUY", "SELL"):
            raise BadOrderRequest("side must be BUY or SELL")
        if not isinstance(product_id, str) or not self.ledger.has_product(product_id):
            raise OrderRejected("INVALID_PRODUCT_ID", f"unknown product {product_id!r}")
        configuration = body.get("order_configuration")
        if not isinstance(configuration, dict) or len(configuration) != 1:
            raise BadOrderRequest("order_configuration must hold exactly one order type")
        kind, params = next(iter(configuration.items()))
        if not isinstance(params, dict):
            raise BadOrderRequest("order_configuration is malformed")
        spec = product_spec(product_id)
        limit_price: Decimal | None = None
        if kind == "market_market_ioc":
            if "base_size" not in params:
                raise OrderRejected(
                    "UNSUPPORTED_ORDER_CONFIGURATION", "the simulator takes base_size only"
                )
            order_type = "MARKET"
        elif kind == "limit_limit_gtc":
            order_type = "LIMIT"
            limit_price = _decimal(params.get("limit_price"), "limit_price")
            if limit_price <= 0 or limit_price % spec.quote_increment != 0:
                raise OrderRejected(
                    "INVALID_PRICE_PRECISION",
                    f"limit_price must be a positive multiple of {spec.quote_increment}",
                    "PREVIEW_INVALID_PRICE_PRECISION",
                )
        else:
            raise OrderRejected("UNSUPPORTED_ORDER_CONFIGURATION", f"{kind} is not simulated")
        base_size = _decimal(params.get("base_size"), "base_size")
        if base_size <= 0 or base_size % spec.base_increment != 0:
            raise OrderRejected(
                "INVALID_SIZE_PRECISION",
                f"base_size must be a positive multiple of {spec.base_increment}",
                "PREVIEW_INVALID_SIZE_PRECISION",
            )
        quote = self.ledger.quote(product_id)
        if quote is None:
            raise OrderRejected("INSUFFICIENT_LIQUIDITY", "no market yet", "")
        base = product_id.split("-")[0]
        reference = limit_price if limit_price is not None else quote.best_ask
        if side == "BUY":
            cost = base_size * reference * (1 + self.taker_fee_bps / _BPS)
            if cost > self.balances.get(self.quote_currency, Decimal(0)):
                raise OrderRejected(
                    "INSUFFICIENT_FUND",
                    "Insufficient balance in source account",
                    "PREVIEW_INSUFFICIENT_FUND",
                )
        elif base_size > self.balances.get(base, Decimal(0)):
            raise OrderRejected(
                "INSUFFICIENT_FUND",
                "Insufficient balance in source account",
                "PREVIEW_INSUFFICIENT_FUND",
            )
        order = SimOrder(
            order_id=str(uuid.uuid4()),
            client_order_id=client_order_id,
            product_id=product_id,
            side=side,
            order_type=order_type,
            base_size=base_size,
            limit_price=limit_price,
            configuration=configuration,
            created_time=_now(),
        )
        self.orders[order.order_id] = order
        self._by_client_id[client_order_id] = order.order_id
        book = quote.best_ask if side == "BUY" else quote.best_bid
        if order_type == "MARKET" or (
            limit_price is not None
            and (limit_price >= book if side == "BUY" else limit_price <= book)
        ):
            self._fill(order, book, "TAKER")
        return order, True

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
            if order.status != "OPEN" or order.limit_price is None:
                continue
            quote = self.ledger.quote(order.product_id)
            if quote is None:
                continue
            if (order.side == "BUY" and quote.best_ask <= order.limit_price) or (
                order.side == "SELL" and quote.best_bid >= order.limit_price
            ):
                self._fill(order, order.limit_price, "MAKER")

    def _fill(self, order: SimOrder, price: Decimal, liquidity: str) -> None:
        size = order.base_size - order.filled_size
        bps = self.taker_fee_bps if liquidity == "TAKER" else self.maker_fee_bps
        commission = size * price * bps / _BPS
        base = order.product_id.split("-")[0]
        quote_delta = size * price
        balances = self.balances
        zero = Decimal(0)
        if order.side == "BUY":
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
            SimFill(
                entry_id=f"sim-fill-{n}",
                trade_id=f"sim-trade-{n}",
                order_id=order.order_id,
                time=_now(),
                price=price,
                size=size,
                commission=commission,
                product_id=order.product_id,
                side=order.side,
                liquidity=liquidity,
            )
        )
        order.status = "FILLED"

    def account(self) -> dict[str, Any]:
        return {
            "balances": {k: str(v) for k, v in self.balances.items()},
            "orders": len(self.orders),
            "create_requests": self.create_requests,
        }
