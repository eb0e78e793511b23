"""The strategy interface and the five strategies, each a pure function of its candle series.

Decisions happen on candle close only, from indicator values at that close and the close
before it. A cross needs a difference beyond float noise (`_NOISE` relative), so a flat
series never signals; the first candle with every indicator warm only sets the state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cryptopipeline.indicators import BollingerBands, Ema, Macd, Rsi, Sma
from cryptopipeline.indicators._state import Stateful
from cryptopipeline.market import Candle
from cryptopipeline.records import Action
from cryptopipeline.strategies._signal import Decision, decide

_NOISE = 1e-12
_STATE_VERSION = 1

StrategyName = Literal[
    "sma_crossover", "ema_crossover", "rsi_threshold", "macd_cross", "bollinger_breakout"
]


@runtime_checkable
class Strategy(Protocol):
    """One strategy instance follows one product at one candle interval."""

    @property
    def name(self) -> str: ...

    @property
    def parameters(self) -> Mapping[str, float | int | str]: ...

    def on_candle(self, candle: Candle) -> Decision | None:
        """The decision at this candle's close, or None."""

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state (indicators included); `restore_strategy` reads it back."""


def _side(diff: float, scale: float) -> int:
    """+1 / -1 when `diff` is clearly positive / negative, 0 within float noise of `scale`."""
    tolerance = _NOISE * abs(scale)
    if diff > tolerance:
        return 1
    if diff < -tolerance:
        return -1
    return 0


class _Base:
    """Shared plumbing: parameter resolution, series identity, snapshot and restore."""

    name: ClassVar[str]
    DEFAULTS: ClassVar[dict[str, float | int]]
    _INDICATORS: ClassVar[tuple[str, ...]]
    _MEMORY: ClassVar[tuple[str, ...]]

    def __init__(self, **parameters: float | int | str) -> None:
        self.parameters: dict[str, float | int | str] = resolve_parameters(self.name, parameters)
        self._series: tuple[str, int] | None = None
        self._last_start = -1

    def _accept(self, candle: Candle) -> bool:
        """True for the next candle of this instance's series; a replayed one is ignored."""
        series = (candle.product_id, candle.interval_s)
        if self._series is None:
            self._series = series
        elif series != self._series:
            raise ValueError(
                f"{self.name} follows {self._series[0]}/{self._series[1]}s, "
                f"not {series[0]}/{series[1]}s"
            )
        if candle.start_us <= self._last_start:
            return False
        self._last_start = candle.start_us
        return True

    def on_candle(self, candle: Candle) -> Decision | None:
        raise NotImplementedError

    _last_side: int

    def _crossed(self, side: int) -> Action | None:
        """BUY / SELL when a line moved from one clear side to the other since the last
        clear reading; a reading within noise (`side` 0) changes nothing."""
        if side == 0:
            return None
        last = self._last_side
        self._last_side = side
        if last == 0 or last == side:
            return None
        return Action.BUY if side > 0 else Action.SELL

    def snapshot(self) -> dict[str, Any]:
        indicators = {key: getattr(self, key).snapshot() for key in self._INDICATORS}
        memory = {key: getattr(self, key) for key in self._MEMORY}
        return {
            "version": _STATE_VERSION,
            "name": self.name,
            "parameters": dict(self.parameters),
            "series": list(self._series) if self._series else None,
            "last_start_us": self._last_start,
            "indicators": indicators,
            "memory": memory,
        }

    def _restore_state(self, state: Mapping[str, Any]) -> None:
        series = state["series"]
        self._series = (str(series[0]), int(series[1])) if series else None
        self._last_start = int(state["last_start_us"])
        for key in self._INDICATORS:
            kind: type[Stateful] = type(getattr(self, key))
            setattr(self, key, kind.restore(state["indicators"][key]))
        for key in self._MEMORY:
            setattr(self, key, state["memory"][key])


class _Crossover(_Base):
    """BUY when the fast average crosses above the slow one, SELL when it crosses below."""

    DEFAULTS: ClassVar[dict[str, float | int]]
    _INDICATORS = ("_fast", "_slow")
    _MEMORY = ("_last_side",)
    _AVERAGE: ClassVar[type[Sma] | type[Ema]]
    _PREFIX: ClassVar[str]

    def __init__(self, **parameters: float | int | str) -> None:
        super().__init__(**parameters)
        fast, slow = int(self.parameters["fast"]), int(self.parameters["slow"])
        self._fast: Sma | Ema = self._AVERAGE(fast)
        self._slow: Sma | Ema = self._AVERAGE(slow)
        self._keys = (f"{self._PREFIX}_{fast}", f"{self._PREFIX}_{slow}")
        self._last_side = 0

    def on_candle(self, candle: Candle) -> Decision | None:
        if not self._accept(candle):
            return None
        close = float(candle.close)
        fast = self._fast.update(close)
        slow = self._slow.update(close)
        if fast is None or slow is None:
            return None
        action = self._crossed(_side(fast - slow, slow))
        if action is None:
            return None
        keys = self._keys
        return decide(candle, action, self.name, self.parameters, {keys[0]: fast, keys[1]: slow})


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


class RsiThreshold(_Base):
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

    def __init__(self, **parameters: float | int | str) -> None:
        super().__init__(**parameters)
        self._rsi = Rsi(int(self.parameters["period"]))
        self._oversold = float(self.parameters["oversold"])
        self._overbought = float(self.parameters["overbought"])
        self._key = f"rsi_{self._rsi.period}"
        self._prev: float | None = None

    def on_candle(self, candle: Candle) -> Decision | None:
        if not self._accept(candle):
            return None
        rsi = self._rsi.update(float(candle.close))
        if rsi is None:
            return None
        if self._rsi.avg_gain + self._rsi.avg_loss == 0.0:
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
        return decide(
            candle, action, self.name, self.parameters, {self._key: rsi, f"prev_{self._key}": prev}
        )

    def _restore_state(self, state: Mapping[str, Any]) -> None:
        super()._restore_state(state)
        self._prev = None if self._prev is None else float(self._prev)


class MacdCross(_Base):
    """BUY when the MACD line crosses above its signal line, SELL when it crosses below."""

    name = "macd_cross"
    DEFAULTS: ClassVar[dict[str, float | int]] = {"fast": 12, "slow": 26, "signal": 9}
    _INDICATORS = ("_macd",)
    _MEMORY = ("_last_side",)

    def __init__(self, **parameters: float | int | str) -> None:
        super().__init__(**parameters)
        p = self.parameters
        self._macd = Macd(int(p["fast"]), int(p["slow"]), int(p["signal"]))
        self._last_side = 0

    def on_candle(self, candle: Candle) -> Decision | None:
        if not self._accept(candle):
            return None
        close = float(candle.close)
        macd = self._macd
        line = macd.update(close)
        if line is None:
            return None
        signal = macd.signal
        hist = macd.hist
        assert signal is not None and hist is not None
        action = self._crossed(_side(hist, close))
        if action is None:
            return None
        return decide(
            candle,
            action,
            self.name,
            self.parameters,
            {"macd": line, "macd_signal": signal, "macd_hist": hist},
        )


class BollingerBreakout(_Base):
    """BUY when the close breaks above the upper band, SELL when it breaks below the lower;
    a breakout needs the previous close to have been inside (or on the other side).
    """

    name = "bollinger_breakout"
    DEFAULTS: ClassVar[dict[str, float | int]] = {"period": 20, "multiplier": 2.0}
    _INDICATORS = ("_bands",)
    _MEMORY = ("_prev_side",)

    def __init__(self, **parameters: float | int | str) -> None:
        super().__init__(**parameters)
        p = self.parameters
        self._bands = BollingerBands(int(p["period"]), float(p["multiplier"]))
        self._prev_side: int | None = None

    def on_candle(self, candle: Candle) -> Decision | None:
        if not self._accept(candle):
            return None
        close = float(candle.close)
        bands = self._bands
        middle = bands.update(close)
        if middle is None:
            return None
        upper, lower = bands.upper, bands.lower
        assert upper is not None and lower is not None
        if _side(close - upper, middle) > 0:
            side = 1
        elif _side(close - lower, middle) < 0:
            side = -1
        else:
            side = 0
        prev = self._prev_side
        self._prev_side = side
        if prev is None or side == 0 or side == prev:
            return None
        action = Action.BUY if side > 0 else Action.SELL
        return decide(
            candle,
            action,
            self.name,
            self.parameters,
            {"close": close, "bb_upper": upper, "bb_middle": middle, "bb_lower": lower},
        )


STRATEGIES: dict[str, type[_Base]] = {
    kind.name: kind
    for kind in (SmaCrossover, EmaCrossover, RsiThreshold, MacdCross, BollingerBreakout)
}


def _period(name: str, key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ValueError(f"{name}.{key} must be an integer, got {value!r}")
    if int(value) < 1:
        raise ValueError(f"{name}.{key} must be >= 1, got {value!r}")
    return int(value)


def _number(name: str, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}.{key} must be a number, got {value!r}")
    return float(value)


def resolve_parameters(name: str, given: Mapping[str, object]) -> dict[str, float | int | str]:
    """A strategy's full parameters (defaults filled in, typed); `ValueError` naming the key."""
    kind = STRATEGIES.get(name)
    if kind is None:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}")
    unknown = sorted(set(given) - set(kind.DEFAULTS))
    if unknown:
        raise ValueError(
            f"{name}: unknown parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(kind.DEFAULTS))}"
        )
    merged: dict[str, object] = {**kind.DEFAULTS, **given}
    resolved: dict[str, float | int | str] = {}
    for key, default in kind.DEFAULTS.items():
        if isinstance(default, int):
            resolved[key] = _period(name, key, merged[key])
        else:
            resolved[key] = _number(name, key, merged[key])
    if "fast" in resolved and not int(resolved["fast"]) < int(resolved["slow"]):
        raise ValueError(
            f"{name}: fast ({resolved['fast']}) must be below slow ({resolved['slow']})"
        )
    if name == "rsi_threshold" and not (
        0.0 <= float(resolved["oversold"]) < float(resolved["overbought"]) <= 100.0
    ):
        raise ValueError(f"{name}: need 0 <= oversold < overbought <= 100")
    if name == "bollinger_breakout" and float(resolved["multiplier"]) <= 0.0:
        raise ValueError(f"{name}: multiplier must be > 0")
    return resolved


class StrategyConfig(BaseModel):
    """One configured strategy: its name and parameters (missing ones take the defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: StrategyName
    parameters: dict[str, float | int | str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _valid_parameters(self) -> StrategyConfig:
        resolve_parameters(self.name, self.parameters)
        return self


def build_strategy(config: StrategyConfig) -> Strategy:
    """A fresh instance (for one product and interval) of one configured strategy."""
    return STRATEGIES[config.name](**config.parameters)


def build_strategies(configs: Sequence[StrategyConfig]) -> list[Strategy]:
    """Fresh instances of every configured strategy, for one product and interval."""
    return [build_strategy(config) for config in configs]


def restore_strategy(state: Mapping[str, Any]) -> Strategy:
    """The strategy a `snapshot()` described, continuing exactly where it left off."""
    if state.get("version") != _STATE_VERSION:
        raise ValueError(f"unknown strategy state version {state.get('version')!r}")
    kind = STRATEGIES.get(str(state.get("name")))
    if kind is None:
        raise ValueError(f"unknown strategy {state.get('name')!r}")
    strategy = kind(**state["parameters"])
    strategy._restore_state(state)
    return strategy
