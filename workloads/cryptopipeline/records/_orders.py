"""`btc_usd_orders` (key = product_id): the lifecycle events of each order, the source of
truth for positions and open orders (`trading.Blotter` folds them)."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from cryptopipeline.records._side import Side

OrderSide = Side
"""An order's side: the one `Side` (the name the order code used first)."""


class OrderType(StrEnum):
    MARKET = "MARKET"  # immediate-or-cancel
    LIMIT = "LIMIT"  # good-till-cancelled


class OrderEventType(StrEnum):
    RECEIVED = "received"  # the signal arrived
    REJECTED = "rejected"  # by risk or sizing (reason) or by the broker (reason=broker_...)
    SUBMITTED = "submitted"  # durable before the broker is called
    ACCEPTED = "accepted"  # the broker holds the order (exchange_order_id)
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset(
    {
        OrderEventType.REJECTED,
        OrderEventType.FILLED,
        OrderEventType.CANCELLED,
        OrderEventType.FAILED,
    }
)


class FillRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    fill_id: str
    price: Decimal
    size: Decimal
    fee: Decimal
    liquidity: Literal["MAKER", "TAKER"] = "TAKER"
    time: str = ""


class OrderEvent(BaseModel):
    """One record of `btc_usd_orders`. Decimals travel as JSON strings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    event: OrderEventType
    client_order_id: str
    signal_id: str
    product_id: str
    time: str
    broker: str
    side: Side | None = None
    order_type: OrderType | None = None
    base_size: Decimal | None = None
    limit_price: Decimal | None = None
    reference_price: Decimal | None = None
    exchange_order_id: str | None = None
    fill: FillRecord | None = None
    reason: str | None = None
    detail: str | None = None
