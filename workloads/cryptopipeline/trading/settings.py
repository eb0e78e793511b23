"""The trading policy as configuration: products, starting cash, order type, sizing, the event
or wall clock, and each product's increments (CRYPTOPIPELINE_TRADING__*, or a backtest's file).

A typed object built once at the edge (the bot's settings, a backtest's config) and read by
planning (`planning.OrderPolicy`); it reads no environment itself.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

from cryptopipeline.trading.sizing import ProductIncrements, Sizing


class IncrementSettings(BaseModel):
    base_increment: Decimal = Field(default=Decimal("0.00000001"), gt=0)
    quote_increment: Decimal = Field(default=Decimal("0.01"), gt=0)
    base_min_size: Decimal = Field(default=Decimal("0.00001"), ge=0)
    min_notional: Decimal = Field(default=Decimal("1"), ge=0)


class TradingSettings(BaseModel):
    products: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["BTC-USD"])
    starting_cash: Decimal = Field(default=Decimal("10000"), ge=0)
    order_type: Literal["market", "limit"] = "market"
    limit_offset_bps: Decimal = Field(
        default=Decimal("0"), ge=0, description="limit orders: price this far inside the touch"
    )
    sizing: Sizing = Field(default_factory=Sizing)
    clock: Literal["wall", "event"] = Field(
        default="wall",
        description="event: decide at the signal's candle close and price at the book as of "
        "that close (trading.books), as a backtest does; for replays of recorded data",
    )
    increments: dict[str, IncrementSettings] = Field(default_factory=dict)

    @field_validator("products", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return orjson.loads(text)
            return [p.strip() for p in text.split(",") if p.strip()]
        return value

    def product_increments(self, product_id: str) -> ProductIncrements:
        spec = self.increments.get(product_id, IncrementSettings())
        return ProductIncrements(
            product_id, spec.base_increment, spec.quote_increment, spec.base_min_size,
            spec.min_notional,
        )  # fmt: skip
