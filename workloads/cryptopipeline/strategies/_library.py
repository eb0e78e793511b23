"""The five strategies, and `STRATEGIES`: the one registry of strategy names (configuration,
the operator's check and restore all read it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from cryptopipeline.indicators import BollingerBands, Ema, IndicatorSet, Macd, Rsi, Sma
from cryptopipeline.market import Candle
from cryptopipeline.records import Action
from cryptopipeline.strategies._base import NOISE, Parameters, StrategyBase
from cryptopipeline.strategies._signal import Decision


class _Crossover(StrategyBase):
    """BUY when the fast average crosses above the slow one, SELL when it crosses below."""

    _INDICATORS = ("_fast", "_slow")
    _MEMORY = ("_last_side",)
    _AVERAGE: ClassVar[type[Sma] | type[Ema]]
    _PREFIX: ClassVar[str]

    @classmethod
    def check(cls, parameters: Parameters) -> None:
        if not int(parameters["fast"]) < int(parameters["slow"]):
            raise ValueError(
                f"{cls.name}: fast ({parameters['fast']}) must be below slow ({parameters['slow']})"
            )

    def use(self, indicators: IndicatorSet) -> None:
        fast, slow = int(self.parameters["fast"]), int(self.parameters["slow"])
        self._fast: Sma | Ema = indicators.get(self._AVERAGE, fast)
        self._slow: Sma | Ema = indicators.get(self._AVERAGE, slow)
        self._keys = (f"{self._PREFIX}_{fast}", f"{self._PREFIX}_{slow}")
        self._last_side = 0

    def decide(self, candle: Candle, close: float) -> Decision | None:
        fast = self._fast.value
        slow = self._slow.value
        if fast is None or slow is None:
            return None
        action = self._crossed(fast - slow, slow)
        if action is None:
            return None
        keys = self._keys
        return self._decision(candle, action, {keys[0]: fast, keys[1]: slow})


class SmaCrossover(_Crossover):
    name = "sma_crossover"
    DEFAULTS: ClassVar[dict[str, float | int]] = {"fast": 10, "slow": 30}
    _AVERAGE = Sma
    _PREFIX = "sma"


class EmaCrossover(_Crossover):
    name = "ema_crossover"
    DEFAULTS: ClassVar[dict[str, float | int]] = {"fast": 12, "slow": 26}
    _AVERAGE = Ema
    _PREFIX = "ema"


class RsiThreshold(StrategyBase):
    """BUY when RSI crosses back up through `oversold`; SELL when it crosses back down
    through `overbought`. A reading from a motionless window (TA-Lib's RSI 0) is no reading.
    """

    name = "rsi_threshold"
    DEFAULTS: ClassVar[dict[str, float | int]] = {
        "period": 14,
        "oversold": 30.0,
        "overbought": 70.0,
    }
    _INDICATORS = ("_rsi",)
    _MEMORY = ("_prev",)

    @classmethod
    def check(cls, parameters: Parameters) -> None:
        if not 0.0 <= float(parameters["oversold"]) < float(parameters["overbought"]) <= 100.0:
            raise ValueError(f"{cls.name}: need 0 <= oversold < overbought <= 100")

    def use(self, indicators: IndicatorSet) -> None:
        self._rsi = indicators.get(Rsi, int(self.parameters["period"]))
        self._oversold = float(self.parameters["oversold"])
        self._overbought = float(self.parameters["overbought"])
        self._key = f"rsi_{self._rsi.period}"
        self._prev: float | None = None

    def decide(self, candle: Candle, close: float) -> Decision | None:
        indicator = self._rsi
        rsi = indicator.value
        if rsi is None:
            return None
        if indicator.avg_gain + indicator.avg_loss == 0.0:
            self._prev = None
            return None
        prev = self._prev
        self._prev = rsi
        if prev is None:
            return None
        if prev < self._oversold <= rsi:
            action = Action.BUY
        elif prev > self._overbought >= rsi:
            action = Action.SELL
        else:
            return None
        return self._decision(candle, action, {self._key: rsi, f"prev_{self._key}": prev})

    def restore_memory(self, memory: Mapping[str, Any]) -> None:
        super().restore_memory(memory)
        self._prev = None if self._prev is None else float(self._prev)


class MacdCross(StrategyBase):
    """BUY when the MACD line crosses above its signal line, SELL when it crosses below."""

    name = "macd_cross"
    DEFAULTS: ClassVar[dict[str, float | int]] = {"fast": 12, "slow": 26, "signal": 9}
    _INDICATORS = ("_macd",)
    _MEMORY = ("_last_side",)

    def use(self, indicators: IndicatorSet) -> None:
        p = self.parameters
        self._macd = indicators.get(Macd, int(p["fast"]), int(p["slow"]), int(p["signal"]))
        self._last_side = 0

    def decide(self, candle: Candle, close: float) -> Decision | None:
        macd = self._macd
        line = macd.value
        if line is None:
            return None
        signal = macd.signal
        hist = macd.hist
        assert signal is not None and hist is not None
        action = self._crossed(hist, close)
        if action is None:
            return None
        return self._decision(
            candle, action, {"macd": line, "macd_signal": signal, "macd_hist": hist}
        )


class BollingerBreakout(StrategyBase):
    """BUY when the close breaks above the upper band, SELL when it breaks below the lower;
    a breakout needs the previous close to have been inside (or on the other side).
    """

    name = "bollinger_breakout"
    DEFAULTS: ClassVar[dict[str, float | int]] = {"period": 20, "multiplier": 2.0}
    _INDICATORS = ("_bands",)
    _MEMORY = ("_prev_side",)

    @classmethod
    def check(cls, parameters: Parameters) -> None:
        if float(parameters["multiplier"]) <= 0.0:
            raise ValueError(f"{cls.name}: multiplier must be > 0")

    def use(self, indicators: IndicatorSet) -> None:
        p = self.parameters
        self._bands = indicators.get(BollingerBands, int(p["period"]), float(p["multiplier"]))
        self._prev_side: int | None = None

    def decide(self, candle: Candle, close: float) -> Decision | None:
        bands = self._bands
        middle = bands.middle
        if middle is None:
            return None
        upper, lower = bands.upper, bands.lower
        assert upper is not None and lower is not None
        tolerance = NOISE * abs(middle)  # a break must be clear of float noise
        if close - upper > tolerance:
            now = 1
        elif close - lower < -tolerance:
            now = -1
        else:
            now = 0
        prev = self._prev_side
        self._prev_side = now
        if prev is None or now == 0 or now == prev:
            return None
        action = Action.BUY if now > 0 else Action.SELL
        return self._decision(
            candle,
            action,
            {"close": close, "bb_upper": upper, "bb_middle": middle, "bb_lower": lower},
        )


STRATEGIES: dict[str, type[StrategyBase]] = {
    kind.name: kind
    for kind in (SmaCrossover, EmaCrossover, RsiThreshold, MacdCross, BollingerBreakout)
}
