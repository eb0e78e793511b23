"""Sizing: a fixed quote amount or a fraction of equity, rounded down to the product's base
increment; a size that rounds below the product's minimum is a rejection, never an order.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cryptopipeline.trading.orders import Side


@dataclass(frozen=True, slots=True)
class ProductIncrements:
    """What the exchange accepts for one product."""

    product_id: str
    base_increment: Decimal
    quote_increment: Decimal
    base_min_size: Decimal
    min_notional: Decimal = Decimal(0)

    def floor_base(self, size: Decimal) -> Decimal:
        return (size / self.base_increment).to_integral_value(ROUND_FLOOR) * self.base_increment

    def round_price(self, price: Decimal, side: Side) -> Decimal:
        """A limit price on the quote grid, never more aggressive than asked (buy down, sell up)."""
        rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
        steps = (price / self.quote_increment).to_integral_value(rounding)
        return steps * self.quote_increment


class Sizing(BaseModel):
    """How big an order is: `fixed_quote` spends `quote_amount`; `equity_fraction` spends
    `fraction` of equity. A SELL never exceeds the position held (spot)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["fixed_quote", "equity_fraction"] = "fixed_quote"
    quote_amount: Decimal = Field(default=Decimal("100"), gt=0)
    fraction: Decimal = Field(default=Decimal("0.01"), gt=0, le=1)

    @model_validator(mode="after")
    def _finite(self) -> Sizing:
        if not self.quote_amount.is_finite() or not self.fraction.is_finite():
            raise ValueError("sizes must be finite numbers")
        return self


@dataclass(frozen=True, slots=True)
class SizedOrder:
    base_size: Decimal
    notional: Decimal


def size_order(
    sizing: Sizing,
    increments: ProductIncrements,
    *,
    side: Side,
    price: Decimal,
    equity: Decimal,
    position: Decimal,
) -> SizedOrder | str:
    """The order's base size at `price`, or the reason there is none
    (`below_min_size`, `no_position`, `no_price`)."""
    if price <= 0:
        return "no_price"
    quote = sizing.quote_amount if sizing.mode == "fixed_quote" else equity * sizing.fraction
    base = quote / price
    if side is Side.SELL:
        if position <= 0:
            return "no_position"
        base = min(base, position)
    base = increments.floor_base(base)
    notional = base * price
    if base <= 0 or base < increments.base_min_size or notional < increments.min_notional:
        return "below_min_size"
    return SizedOrder(base, notional)
