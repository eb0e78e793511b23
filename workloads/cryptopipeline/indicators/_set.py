"""The indicators of one candle series, each kind and parameters once, fed once per candle.

Strategies that ask for the same indicator (an SMA(30), RSI(14), ...) get the same instance,
so it is updated once per candle however many strategies read it; an indicator is a function
of the candle series alone, so sharing it changes no value.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from typing import Any, TypeVar, cast

from cryptopipeline.indicators._averages import Ema, Sma
from cryptopipeline.indicators._momentum import Macd, Rsi
from cryptopipeline.indicators._volatility import Atr, BollingerBands
from cryptopipeline.indicators._volume import Vwap
from cryptopipeline.market import Candle

Indicator = Sma | Ema | Rsi | Macd | BollingerBands | Atr | Vwap
I = TypeVar("I", bound=Indicator)  # noqa: E741
Key = tuple[type[Any], tuple[Any, ...]]  # (indicator class, every constructor argument)

KINDS: dict[str, type[Indicator]] = {
    kind.__name__: kind for kind in (Sma, Ema, Rsi, Macd, BollingerBands, Atr, Vwap)
}


def _arguments(kind: type[Any], arguments: tuple[Any, ...]) -> tuple[Any, ...]:
    """Every constructor argument, defaults included: `Sma()` and `Sma(20)` are one key."""
    bound = inspect.signature(kind).bind(*arguments)
    bound.apply_defaults()
    return tuple(bound.arguments.values())


class IndicatorSet:
    """The indicators of one product at one candle interval.

    `get(kind, *arguments)` returns the set's instance of that indicator (created on first
    request, warming up from the next candle); `on_candle(candle)` feeds every indicator the
    candle's close (ATR: high, low, close; VWAP: the candle's VWAP and volume) once, and
    ignores a candle not newer than the last one fed. Values are read from the instances.
    """

    __slots__ = ("_by_key", "_on_close", "_on_range", "_on_volume", "last_start_us", "series")

    def __init__(self) -> None:
        self._by_key: dict[Key, Indicator] = {}
        self._on_close: list[Callable[[float], object]] = []
        self._on_range: list[Callable[[float, float, float], object]] = []
        self._on_volume: list[Callable[[float, float], object]] = []
        self.series: tuple[str, int] | None = None
        self.last_start_us = -1

    def get(self, kind: type[I], *arguments: Any) -> I:
        """The set's `kind(*arguments)`, shared with everyone who asked for the same."""
        key: Key = (kind, _arguments(kind, arguments))
        held = self._by_key.get(key)
        if held is not None:
            return cast(I, held)
        indicator = kind(*arguments)
        self._add(key, indicator)
        return indicator

    def __len__(self) -> int:
        return len(self._by_key)

    def _add(self, key: Key, indicator: Indicator) -> None:
        self._by_key[key] = indicator
        if isinstance(indicator, Atr):
            self._on_range.append(indicator.update)
        elif isinstance(indicator, Vwap):
            self._on_volume.append(indicator.update)
        else:
            self._on_close.append(indicator.update)

    def on_candle(self, candle: Candle) -> float | None:
        """Feed a closed candle to every indicator; its close as they saw it (a float), or
        None for a candle not newer than the last (a replay: nothing changes).
        `ValueError` for a candle of another product or interval."""
        series = self.series
        if series is None:
            self.series = series = (candle.product_id, candle.interval_s)
        elif candle.product_id != series[0] or candle.interval_s != series[1]:
            raise ValueError(
                f"these indicators follow {series[0]}/{series[1]}s, "
                f"not {candle.product_id}/{candle.interval_s}s"
            )
        start = candle.start_us
        if start <= self.last_start_us:
            return None
        self.last_start_us = start
        close = float(candle.close)
        for update in self._on_close:
            update(close)
        if self._on_range:
            high, low = float(candle.high), float(candle.low)
            for update_range in self._on_range:
                update_range(high, low, close)
        if self._on_volume:
            vwap, volume = float(candle.vwap), float(candle.volume)
            for update_volume in self._on_volume:
                update_volume(vwap, volume)
        return close

    def keep_only(self, indicators: Collection[Indicator]) -> None:
        """Drop every indicator not in `indicators` (nobody reads it any more)."""
        kept = [(k, i) for k, i in self._by_key.items() if any(i is x for x in indicators)]
        self._by_key = {}
        self._on_close, self._on_range, self._on_volume = [], [], []
        for key, indicator in kept:
            self._add(key, indicator)

    def adopt(self, kind: type[Indicator], arguments: tuple[Any, ...], state: Any) -> None:
        """Take `kind(*arguments)` as `state` describes it, unless the set has one already."""
        key: Key = (kind, _arguments(kind, arguments))
        if key not in self._by_key:
            self._add(key, kind.restore(state))

    def key_of(self, indicator: Indicator) -> Key:
        """The (kind, arguments) the set holds `indicator` under."""
        for key, held in self._by_key.items():
            if held is indicator:
                return key
        raise KeyError(f"{type(indicator).__name__} is not in this set")

    def snapshot(self, only: Collection[Indicator] | None = None) -> dict[str, Any]:
        """JSON-serialisable state (of `only` those indicators, if given); `restore` reads it."""
        return {
            "series": list(self.series) if self.series else None,
            "last_start_us": self.last_start_us,
            "indicators": [
                {"kind": kind.__name__, "arguments": list(arguments), "state": held.snapshot()}
                for (kind, arguments), held in self._by_key.items()
                if only is None or any(held is x for x in only)
            ],
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> IndicatorSet:
        """The set a `snapshot` described, continuing exactly where it left off."""
        restored = cls()
        series = state["series"]
        restored.series = (str(series[0]), int(series[1])) if series else None
        restored.last_start_us = int(state["last_start_us"])
        for entry in state["indicators"]:
            kind = KINDS.get(entry["kind"])
            if kind is None:
                raise ValueError(f"unknown indicator {entry['kind']!r} in a saved indicator set")
            restored.adopt(kind, tuple(entry["arguments"]), entry["state"])
        return restored
