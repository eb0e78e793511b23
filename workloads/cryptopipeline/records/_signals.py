"""`btc_usd_trade_signals`: the signaler's decisions, each naming the candle that made it."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cryptopipeline.records._side import Side

Action = Side
"""A signal's action is the side of the order it asks for: the one `Side`."""


class CandleWindow(BaseModel):
    """A closed candle's window `[start, end)` in exchange time (RFC 3339 UTC strings)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: str
    end: str
    interval_s: int = Field(gt=0)


class TradeSignal(BaseModel):
    """One record of `btc_usd_trade_signals` (key = product_id).

    `signal_id` is a deterministic function of product, strategy, parameters, interval and
    candle window, so a replay emits the same ids and every consumer can be idempotent.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    signal_id: str = Field(min_length=8, max_length=64)
    product_id: str
    event_time: str = Field(description="the candle's close time (exchange time)")
    action: Action
    strategy: str
    parameters: dict[str, float | int | str]
    indicators: dict[str, float | None] = Field(description="the values that decided it")
    window: CandleWindow
    close_price: Decimal = Field(description="the candle's close, for sizing and checks")
    last_trade_id: int = Field(ge=0, description="the last trade in the candle")
