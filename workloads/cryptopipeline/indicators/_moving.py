"""Incremental indicators, O(1) per update, with TA-Lib's seeding and first valid index.

Each `update` takes one new value (a candle's close, or high/low/close for ATR) and returns
the indicator's value at that input, or `None` while it is warming up.
"""

from __future__ import annotations

import math
from typing import ClassVar

from cryptopipeline.indicators._state import Stateful


def _check_period(name: str, period: int) -> int:
    if not isinstance(period, int) or isinstance(period, bool) or period < 1:
        raise ValueError(f"{name} period must be an integer >= 1, got {period!r}")
    return period


class Sma(Stateful):
    """Simple moving average of the last `period` inputs; first value at index period-1.

    The window sum is compensated (Neumaier), so it does not drift over long series.
    """

    __slots__ = ("_comp", "_count", "_index", "_sum", "_window", "period", "value")

    def __init__(self, period: int = 20) -> None:
        self.period = _check_period("SMA", period)
        self._window: list[float] = [0.0] * period
        self._index = 0
        self._count = 0
        self._sum = 0.0
        self._comp = 0.0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        window = self._window
        index = self._index
        # add x (Neumaier)
        s = self._sum
        t = s + x
        comp = self._comp + ((s - t) + x if abs(s) >= abs(x) else (x - t) + s)
        if self._count < self.period:
            self._count += 1
        else:
            old = -window[index]
            s = t
            t = s + old
            comp += (s - t) + old if abs(s) >= abs(old) else (old - t) + s
        self._sum = t
        self._comp = comp
        window[index] = x
        index += 1
        self._index = 0 if index == self.period else index
        if self._count < self.period:
            return None
        value = (t + comp) / self.period
        self.value = value
        return value


class Ema(Stateful):
    """Exponential moving average, k = 2 / (period + 1), seeded with the SMA of its first
    `period` inputs (TA-Lib's default): first value at index period-1.

    `skip` ignores that many first inputs (TA-Lib's MACD starts its fast EMA that way).
    """

    __slots__ = ("_count", "_k", "_seed", "_skip", "period", "value")

    def __init__(self, period: int = 30, skip: int = 0) -> None:
        self.period = _check_period("EMA", period)
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


class Rsi(Stateful):
    """Wilder's RSI: the first average gain / loss is the mean of the first `period` changes,
    then avg = (avg * (period - 1) + change) / period. First value at index `period`.

    When the average gain and loss are both zero (no movement) the value is 0, as TA-Lib's.
    """

    __slots__ = ("_count", "_prev", "avg_gain", "avg_loss", "period", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = _check_period("RSI", period)
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
        _check_period("MACD fast", fast)
        _check_period("MACD slow", slow)
        _check_period("MACD signal", signal)
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
        self.period = _check_period("Bollinger", period)
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
        x2 = x * x
        s, c = self._sum, self._comp
        t = s + x
        c += (s - t) + x if abs(s) >= abs(x) else (x - t) + s
        s2, c2 = self._sum2, self._comp2
        t2 = s2 + x2
        c2 += (s2 - t2) + x2 if s2 >= x2 else (x2 - t2) + s2
        if self._count < period:
            self._count += 1
        else:
            old = -window[index]
            old2 = -(old * old)
            s = t
            t = s + old
            c += (s - t) + old if abs(s) >= abs(old) else (old - t) + s
            s2 = t2
            t2 = s2 + old2
            c2 += (s2 - t2) + old2 if abs(s2) >= -old2 else (old2 - t2) + s2
        self._sum, self._comp = t, c
        self._sum2, self._comp2 = t2, c2
        window[index] = x
        index += 1
        self._index = 0 if index == period else index
        if self._count < period:
            return None
        if self._run >= period:
            middle = x
            stddev = 0.0
        else:
            middle = (t + c) / period
            variance = (t2 + c2) / period - middle * middle
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
        self.period = _check_period("ATR", period)
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


class Vwap(Stateful):
    """Volume-weighted average price over the last `period` inputs (or all, if period is 0):
    sum(price * volume) / sum(volume). Fed a candle's VWAP and volume it is the exact
    trade-level VWAP of those candles. First value at index period-1; None on zero volume.
    Not a TA-Lib function: tested against a direct computation.
    """

    __slots__ = (
        "_count",
        "_index",
        "_notional",
        "_pv",
        "_pv_comp",
        "_vol",
        "_vol_comp",
        "_volumes",
        "period",
        "value",
    )

    def __init__(self, period: int = 0) -> None:
        if not isinstance(period, int) or period < 0:
            raise ValueError(
                f"VWAP period must be an integer >= 0 (0 = cumulative), got {period!r}"
            )
        self.period = period
        self._notional: list[float] = [0.0] * period
        self._volumes: list[float] = [0.0] * period
        self._index = 0
        self._count = 0
        self._pv = self._pv_comp = 0.0
        self._vol = self._vol_comp = 0.0
        self.value: float | None = None

    def update(self, price: float, volume: float) -> float | None:
        pv = price * volume
        self._pv, self._pv_comp = _neumaier(self._pv, self._pv_comp, pv)
        self._vol, self._vol_comp = _neumaier(self._vol, self._vol_comp, volume)
        period = self.period
        if period:
            index = self._index
            if self._count < period:
                self._count += 1
            else:
                self._pv, self._pv_comp = _neumaier(self._pv, self._pv_comp, -self._notional[index])
                self._vol, self._vol_comp = _neumaier(
                    self._vol, self._vol_comp, -self._volumes[index]
                )
            self._notional[index] = pv
            self._volumes[index] = volume
            self._index = 0 if index + 1 == period else index + 1
            if self._count < period:
                return None
        volume_total = self._vol + self._vol_comp
        value = (self._pv + self._pv_comp) / volume_total if volume_total > 0.0 else None
        self.value = value
        return value


def _neumaier(total: float, comp: float, x: float) -> tuple[float, float]:
    t = total + x
    comp += (total - t) + x if abs(total) >= abs(x) else (x - t) + total
    return t, comp
