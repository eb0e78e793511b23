"""Volume-weighted average price over a window of candles (or cumulative)."""

from __future__ import annotations

from cryptopipeline.indicators._state import Stateful
from cryptopipeline.indicators._sums import slide


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
        period = self.period
        if period:
            index = self._index
            notional, notional_comp = slide(self._pv, self._pv_comp, pv, self._notional[index])
            total, comp = slide(self._vol, self._vol_comp, volume, self._volumes[index])
            self._notional[index] = pv
            self._volumes[index] = volume
            self._index = 0 if index + 1 == period else index + 1
        else:
            notional, notional_comp = slide(self._pv, self._pv_comp, pv, 0.0)
            total, comp = slide(self._vol, self._vol_comp, volume, 0.0)
        self._pv, self._pv_comp = notional, notional_comp
        self._vol, self._vol_comp = total, comp
        if self._count < period:
            self._count += 1
            if self._count < period:
                return None
        volume_total = total + comp
        value = (notional + notional_comp) / volume_total if volume_total > 0.0 else None
        self.value = value
        return value
