"""What every strategy has: parameters it resolves and checks itself, the indicators it reads
from an `IndicatorSet`, the memory of its last readings, snapshot and restore.

Decisions happen on candle close only, from indicator values at that close and the close
before it. A cross needs a difference beyond float noise (`NOISE` relative), so a flat
series never signals; the first candle with every indicator warm only sets the state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

from cryptopipeline.indicators import Indicator, IndicatorSet
from cryptopipeline.market import Candle
from cryptopipeline.records import Action
from cryptopipeline.strategies._signal import Decision, SignalIds, decide

NOISE = 1e-12
#: 1: each strategy's own indicators by attribute; 2: an `IndicatorSet` snapshot.
STATE_VERSION = 2

Parameters = dict[str, float | int | str]


@runtime_checkable
class Strategy(Protocol):
    """One strategy instance follows one product at one candle interval."""

    @property
    def name(self) -> str: ...

    @property
    def parameters(self) -> Mapping[str, float | int | str]: ...

    def on_candle(self, candle: Candle) -> Decision | None:
        """Feed the candle to the strategy's indicators, then `decide`: alone, a strategy
        owns its indicators; in a `StrategySet` the set feeds them and calls `decide`."""

    def decide(self, candle: Candle, close: float) -> Decision | None:
        """The decision at this candle's close (`close` as a float), or None; the indicators
        it reads have been fed this candle already."""

    def reads(self) -> list[Indicator]:
        """The indicators this strategy reads (instances of its `IndicatorSet`)."""

    def memory(self) -> dict[str, Any]:
        """What it remembers between candles besides its indicators (JSON values)."""

    def restore_memory(self, memory: Mapping[str, Any]) -> None:
        """Continue from what `memory()` returned."""

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state (indicators included); `restore_strategy` reads it back."""


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


class StrategyBase:
    """Shared plumbing: parameter resolution, the standalone `on_candle`, snapshot, restore.

    A subclass names itself (`name`), its parameters and their defaults (`DEFAULTS`: an int
    default makes an integer >= 1, a float one a number), checks the rules between them
    (`check`), takes its indicators from the set (`use`) and decides (`decide`).
    """

    name: ClassVar[str]
    DEFAULTS: ClassVar[dict[str, float | int]]
    #: attributes holding the indicators it reads, and those holding its memory
    _INDICATORS: ClassVar[tuple[str, ...]]
    _MEMORY: ClassVar[tuple[str, ...]]

    def __init__(
        self, indicators: IndicatorSet | None = None, /, **parameters: float | int | str
    ) -> None:
        self.parameters: Parameters = self.resolve(parameters)
        self.indicators = IndicatorSet() if indicators is None else indicators
        self._ids: SignalIds | None = None
        self.use(self.indicators)

    @classmethod
    def resolve(cls, given: Mapping[str, object]) -> Parameters:
        """Full parameters (defaults filled in, typed); `ValueError` naming the key."""
        name = cls.name
        unknown = sorted(set(given) - set(cls.DEFAULTS))
        if unknown:
            raise ValueError(
                f"{name}: unknown parameter(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(cls.DEFAULTS))}"
            )
        merged: dict[str, object] = {**cls.DEFAULTS, **given}
        resolved: Parameters = {}
        for key, default in cls.DEFAULTS.items():
            if isinstance(default, int):
                resolved[key] = _period(name, key, merged[key])
            else:
                resolved[key] = _number(name, key, merged[key])
        cls.check(resolved)
        return resolved

    @classmethod
    def check(cls, parameters: Parameters) -> None:
        """`ValueError` when typed parameters break a rule between them (none by default)."""

    def use(self, indicators: IndicatorSet) -> None:
        """Take the indicators this strategy reads from `indicators` (the same instance as
        any other strategy asking for the same) and start with an empty memory."""
        raise NotImplementedError

    def on_candle(self, candle: Candle) -> Decision | None:
        try:
            close = self.indicators.on_candle(candle)
        except ValueError:
            series = self.indicators.series
            assert series is not None
            raise ValueError(
                f"{self.name} follows {series[0]}/{series[1]}s, "
                f"not {candle.product_id}/{candle.interval_s}s"
            ) from None
        if close is None:
            return None
        return self.decide(candle, close)

    def decide(self, candle: Candle, close: float) -> Decision | None:
        raise NotImplementedError

    _last_side: int

    def _crossed(self, diff: float, scale: float) -> Action | None:
        """BUY / SELL when `diff` (fast - slow, line - signal) moved from one clear side of 0
        to the other since the last clear reading; a `diff` within float noise of `scale` is
        no side and changes nothing. The hot path of three strategies: written out flat."""
        tolerance = NOISE * abs(scale)
        if diff > tolerance:
            now = 1
        elif diff < -tolerance:
            now = -1
        else:
            return None
        last = self._last_side
        self._last_side = now
        if last == 0 or last == now:
            return None
        return Action.BUY if now > 0 else Action.SELL

    def _decision(
        self, candle: Candle, action: Action, indicators: Mapping[str, float | None]
    ) -> Decision:
        """The `Decision` to `action` at `candle`'s close, with the values that decided it."""
        ids = self._ids
        if (
            ids is None
            or ids.product_id != candle.product_id
            or ids.interval_s != candle.interval_s
        ):
            ids = self._ids = SignalIds(
                candle.product_id, self.name, self.parameters, candle.interval_s
            )
        return decide(candle, action, self.name, self.parameters, indicators, ids)

    def reads(self) -> list[Indicator]:
        return [getattr(self, key) for key in self._INDICATORS]

    def memory(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self._MEMORY}

    def restore_memory(self, memory: Mapping[str, Any]) -> None:
        for key in self._MEMORY:
            setattr(self, key, memory[key])

    def snapshot(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "name": self.name,
            "parameters": dict(self.parameters),
            "indicators": self.indicators.snapshot(only=self.reads()),
            "memory": self.memory(),
        }
