"""Volatility: Bollinger Bands (SMA +/- population stddev) and Wilder's average true range."""

from __future__ import annotations

import math

from cryptopipeline.indicators._averages import check_period
from cryptopipeline.indicators._state import Stateful
from cryptopipeline.indicators._sums import slide


class BollingerBands(Stateful):
    """Middle = SMA(period); upper / lower = middle +/- multiplier * population stddev.

    First value at index period-1. The variance comes from compensated sums of x and x^2,
    and is exactly 0 when the window holds one repeated value (TA-Lib answers 0 there too).
    """

    __slots__ = (
        "_comp",
        "_comp2",
        "_count",
        "_index",
        "_run",
        "_sum",
        "_sum2",
        "_window",
        "lower",
        "middle",
        "multiplier",
        "period",
        "stddev",
        "upper",
    )

    def __init__(self, period: int = 20, multiplier: float = 2.0) -> None:
        self.period = check_period("Bollinger", period)
        if not math.isfinite(multiplier) or multiplier < 0:
            raise ValueError(f"Bollinger multiplier must be a finite number >= 0, got {multiplier}")
        self.multiplier = float(multiplier)
        self._window: list[float] = [0.0] * period
        self._index = 0
        self._count = 0
        self._run = 0
        self._sum = self._comp = 0.0
        self._sum2 = self._comp2 = 0.0
        self.middle: float | None = None
        self.upper: float | None = None
        self.lower: float | None = None
        self.stddev: float | None = None

    def update(self, x: float) -> float | None:
        """The middle band at this input (None while warming up); `upper` / `lower` follow."""
        period = self.period
        window = self._window
        index = self._index
        last = window[index - 1]
        self._run = self._run + 1 if (self._count and x == last) else 1
        old = window[index]  # 0.0 while the window fills
        total, comp = slide(self._sum, self._comp, x, old)
        total2, comp2 = slide(self._sum2, self._comp2, x * x, old * old)
        self._sum, self._comp = total, comp
        self._sum2, self._comp2 = total2, comp2
        window[index] = x
        index += 1
        self._index = 0 if index == period else index
        if self._count < period:
            self._count += 1
            if self._count < period:
                return None
        if self._run >= period:
            middle = x
            stddev = 0.0
        else:
            middle = (total + comp) / period
            variance = (total2 + comp2) / period - middle * middle
            stddev = math.sqrt(variance) if variance > 0.0 else 0.0
        width = stddev * self.multiplier
        self.middle = middle
        self.stddev = stddev
        self.upper = middle + width
        self.lower = middle - width
        return middle


class Atr(Stateful):
    """Wilder's average true range. TR needs the previous close, so TR starts at index 1; the
    first ATR is the mean of the first `period` TRs (index `period`), then
    atr = (atr * (period - 1) + tr) / period.
    """

    __slots__ = ("_count", "_prev_close", "_seed", "period", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = check_period("ATR", period)
        self._prev_close: float | None = None
        self._count = 0
        self._seed = 0.0
        self.value: float | None = None

    def update(self, high: float, low: float, close: float) -> float | None:
        prev_close = self._prev_close
        self._prev_close = close
        if prev_close is None:
            return None
        true_range = high - low
        up = abs(prev_close - high)
        if up > true_range:
            true_range = up
        down = abs(prev_close - low)
        if down > true_range:
            true_range = down
        prev = self.value
        period = self.period
        if prev is not None:
            value = (prev * (period - 1) + true_range) / period
            self.value = value
            return value
        self._seed += true_range
        self._count += 1
        if self._count < period:
            return None
        value = self._seed / period
        self.value = value
        return value
