"""Simple and exponential moving averages (SMA, EMA), TA-Lib's seeding and first index."""

from __future__ import annotations

from cryptopipeline.indicators._state import Stateful
from cryptopipeline.indicators._sums import slide


def check_period(name: str, period: int) -> int:
    """`period` if it is an integer >= 1, else a `ValueError` naming the indicator."""
    if not isinstance(period, int) or isinstance(period, bool) or period < 1:
        raise ValueError(f"{name} period must be an integer >= 1, got {period!r}")
    return period


class Sma(Stateful):
    """Simple moving average of the last `period` inputs; first value at index period-1.

    The window sum is compensated (Neumaier), so it does not drift over long series.
    """

    __slots__ = ("_comp", "_count", "_index", "_sum", "_window", "period", "value")

    def __init__(self, period: int = 20) -> None:
        self.period = check_period("SMA", period)
        self._window: list[float] = [0.0] * period
        self._index = 0
        self._count = 0
        self._sum = 0.0
        self._comp = 0.0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        window = self._window
        index = self._index
        period = self.period
        total, comp = slide(self._sum, self._comp, x, window[index])
        self._sum = total
        self._comp = comp
        window[index] = x
        index += 1
        self._index = 0 if index == period else index
        if self._count < period:
            self._count += 1
            if self._count < period:
                return None
        value = (total + comp) / period
        self.value = value
        return value


class Ema(Stateful):
    """Exponential moving average, k = 2 / (period + 1), seeded with the SMA of its first
    `period` inputs (TA-Lib's default): first value at index period-1.

    `skip` ignores that many first inputs (TA-Lib's MACD starts its fast EMA that way).
    """

    __slots__ = ("_count", "_k", "_seed", "_skip", "period", "value")

    def __init__(self, period: int = 30, skip: int = 0) -> None:
        self.period = check_period("EMA", period)
        self._k = 2.0 / (period + 1)
        self._skip = skip
        self._count = 0
        self._seed = 0.0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        prev = self.value
        if prev is not None:
            value = (x - prev) * self._k + prev
            self.value = value
            return value
        if self._skip:
            self._skip -= 1
            return None
        self._seed += x
        self._count += 1
        if self._count < self.period:
            return None
        value = self._seed / self.period
        self.value = value
        return value
