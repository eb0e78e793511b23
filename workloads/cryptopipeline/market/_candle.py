"""The candle: one product's trades in one window of exchange time."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class Candle:
    """OHLCV of the trades in `[start_us, end_us)` (exchange time, epoch microseconds).

    open / close are the first / last trade by (time, trade_id); `first_trade_id` and
    `last_trade_id` are those two trades' ids. volume = sum of sizes; vwap = sum(price *
    size) / volume. Prices and sizes are exact `Decimal`s.
    """

    product_id: str
    interval_s: int
    start_us: int
    end_us: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    vwap: Decimal
    trade_count: int
    first_trade_id: int
    last_trade_id: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: decimals as strings."""
        return {
            "product_id": self.product_id,
            "interval_s": self.interval_s,
            "start_us": self.start_us,
            "end_us": self.end_us,
            "open": str(self.open),
            "high": str(self.high),
            "low": str(self.low),
            "close": str(self.close),
            "volume": str(self.volume),
            "vwap": str(self.vwap),
            "trade_count": self.trade_count,
            "first_trade_id": self.first_trade_id,
            "last_trade_id": self.last_trade_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candle:
        return cls(
            product_id=str(data["product_id"]),
            interval_s=int(data["interval_s"]),
            start_us=int(data["start_us"]),
            end_us=int(data["end_us"]),
            open=Decimal(data["open"]),
            high=Decimal(data["high"]),
            low=Decimal(data["low"]),
            close=Decimal(data["close"]),
            volume=Decimal(data["volume"]),
            vwap=Decimal(data["vwap"]),
            trade_count=int(data["trade_count"]),
            first_trade_id=int(data["first_trade_id"]),
            last_trade_id=int(data["last_trade_id"]),
        )
