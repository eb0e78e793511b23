"""Orders: what the bot asks a broker for, what a broker answers, and the lifecycle records of
`btc_usd_orders` (key = product_id), the source of truth for positions and open orders.

`client_order_id` is a UUID5 of the signal id, so a restart, a redelivery or a retry can never
produce a second order for one signal.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

ORDER_NAMESPACE = uuid.UUID("6f1b7c1e-1d1a-5b1e-9c55-0c1e2b0a7a11")
"""The UUID5 namespace of client order ids (fixed forever: changing it would re-id orders)."""


def client_order_id_for(signal_id: str) -> str:
    """The one client order id a signal can ever have."""
    return str(uuid.uuid5(ORDER_NAMESPACE, signal_id))


class Side(StrEnum):
    """BUY or SELL: the one side type of signals, orders, fills and positions.

    `core.records.Action` and `OrderSide` are this same class under the names older code
    imports. The exchange feed's lowercase `buy` / `sell` (`coinbase.Side`) is the wire
    spelling of a public trade's side, not an order's.
    """

    BUY = "BUY"
    SELL = "SELL"


OrderSide = Side


class OrderType(StrEnum):
    MARKET = "MARKET"  # immediate-or-cancel
    LIMIT = "LIMIT"  # good-till-cancelled


class OrderStatus(StrEnum):
    """A broker's view of an order."""

    OPEN = "OPEN"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"  # refused by the broker for a business reason (funds, size)
    FAILED = "FAILED"  # could not be placed (transport, auth, unknown at the broker)

    @property
    def terminal(self) -> bool:
        return self is not OrderStatus.OPEN


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


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order the bot sends: `base_size` in base units; `limit_price` for limit orders."""

    client_order_id: str
    signal_id: str
    product_id: str
    side: Side
    order_type: OrderType
    base_size: Decimal
    limit_price: Decimal | None = None
    reference_price: Decimal | None = None
    """The price risk and sizing used (the latest ask for a buy, bid for a sell)."""


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution. `fill_id` is unique per broker, so replaying fills is idempotent."""

    fill_id: str
    client_order_id: str
    product_id: str
    side: Side
    price: Decimal
    size: Decimal
    fee: Decimal
    liquidity: Literal["MAKER", "TAKER"] = "TAKER"
    time: str = ""


@dataclass(frozen=True, slots=True)
class BrokerUpdate:
    """What a broker says about one order: its status, its exchange id and any new fills."""

    client_order_id: str
    status: OrderStatus
    exchange_order_id: str | None = None
    fills: tuple[Fill, ...] = field(default_factory=tuple)
    reason: str | None = None
    detail: str | None = None


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

    def to_fill(self) -> Fill | None:
        if self.fill is None or self.side is None:
            return None
        f = self.fill
        return Fill(
            fill_id=f.fill_id,
            client_order_id=self.client_order_id,
            product_id=self.product_id,
            side=self.side,
            price=f.price,
            size=f.size,
            fee=f.fee,
            liquidity=f.liquidity,
            time=f.time,
        )


def fill_record(fill: Fill) -> FillRecord:
    return FillRecord(
        fill_id=fill.fill_id,
        price=fill.price,
        size=fill.size,
        fee=fill.fee,
        liquidity=fill.liquidity,
        time=fill.time,
    )


def order_event(
    request: OrderRequest,
    event_type: OrderEventType,
    *,
    time: str,
    broker: str,
    reason: str | None = None,
    detail: str | None = None,
    exchange_id: str | None = None,
    fill: Fill | None = None,
    trusted: bool = False,
) -> OrderEvent:
    """The order-log record of one step of `request`'s life: the one place its fields are
    spelled out, for the bot and the backtest alike. `trusted`: the values are the caller's
    own typed ones, so pydantic's validation is skipped (a third of a backtest signal's cost).
    """
    fields: dict[str, Any] = {
        "event": event_type,
        "client_order_id": request.client_order_id,
        "signal_id": request.signal_id,
        "product_id": request.product_id,
        "time": time,
        "broker": broker,
        "side": request.side,
        "order_type": request.order_type if request.base_size else None,
        "base_size": request.base_size or None,
        "limit_price": request.limit_price,
        "reference_price": request.reference_price,
        "exchange_order_id": exchange_id,
        "fill": fill_record(fill) if fill is not None else None,
        "reason": reason,
        "detail": detail[:500] if detail else None,
    }
    return OrderEvent.model_construct(**fields) if trusted else OrderEvent(**fields)
