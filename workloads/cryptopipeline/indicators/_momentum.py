"""Momentum oscillators: Wilder's RSI and MACD (line, signal, histogram), TA-Lib-aligned."""

from __future__ import annotations

from typing import ClassVar

from cryptopipeline.indicators._averages import Ema, check_period
from cryptopipeline.indicators._state import Stateful


class Rsi(Stateful):
    """Wilder's RSI: the first average gain / loss is the mean of the first `period` changes,
    then avg = (avg * (period - 1) + change) / period. First value at index `period`.

    When the average gain and loss are both zero (no movement) the value is 0, as TA-Lib's.
    """

    __slots__ = ("_count", "_prev", "avg_gain", "avg_loss", "period", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = check_period("RSI", period)
        self._count = 0
        self._prev: float | None = None
        self.avg_gain = 0.0
        self.avg_loss = 0.0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        prev = self._prev
        self._prev = x
        if prev is None:
            return None
        change = x - prev
        period = self.period
        gain = self.avg_gain
        loss = self.avg_loss
        if self.value is None:
            if change < 0:
                loss -= change
            else:
                gain += change
            self._count += 1
            if self._count < period:
                self.avg_gain = gain
                self.avg_loss = loss
                return None
            gain /= period
            loss /= period
        else:
            loss *= period - 1
            gain *= period - 1
            if change < 0:
                loss -= change
            else:
                gain += change
            loss /= period
            gain /= period
        self.avg_gain = gain
        self.avg_loss = loss
        total = gain + loss
        value = 100.0 * (gain / total) if total != 0.0 else 0.0
        self.value = value
        return value


class Macd(Stateful):
    """MACD line = EMA(fast) - EMA(slow), signal = EMA(signal) of the line, hist = line - signal.

    Aligned as TA-Lib aligns them: the fast EMA is seeded at the slow EMA's first index (from
    the SMA of the `fast` inputs ending there), so both lines start together; nothing is
    reported before the signal line exists, at index (slow - 1) + (signal - 1).
    If `fast > slow` the two are swapped, as TA-Lib does.
    """

    __slots__ = ("_fast", "_signal", "_slow", "hist", "signal", "value")
    _NESTED: ClassVar[tuple[str, ...]] = ("_fast", "_slow", "_signal")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        check_period("MACD fast", fast)
        check_period("MACD slow", slow)
        check_period("MACD signal", signal)
        if slow < fast:
            fast, slow = slow, fast
        self._fast = Ema(fast, skip=slow - fast)
        self._slow = Ema(slow)
        self._signal = Ema(signal)
        self.value: float | None = None
        self.signal: float | None = None
        self.hist: float | None = None

    @property
    def periods(self) -> tuple[int, int, int]:
        return (self._fast.period, self._slow.period, self._signal.period)

    def update(self, x: float) -> float | None:
        """The MACD line at this input (None while warming up); `signal` / `hist` follow."""
        fast = self._fast.update(x)
        slow = self._slow.update(x)
        if fast is None or slow is None:
            return None
        line = fast - slow
        signal = self._signal.update(line)
        if signal is None:
            return None
        self.value = line
        self.signal = signal
        self.hist = line - signal
        return line
