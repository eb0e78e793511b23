"""The strategies that follow one product at one interval, sharing one `IndicatorSet`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from cryptopipeline.indicators import IndicatorSet
from cryptopipeline.market import Candle
from cryptopipeline.strategies._base import STATE_VERSION, Strategy
from cryptopipeline.strategies._config import (
    StrategyConfig,
    build_strategy,
    indicators_of_version_1,
)
from cryptopipeline.strategies._signal import Decision

Identity = tuple[str, tuple[tuple[str, Any], ...]]


def _identity(name: str, parameters: Mapping[str, Any]) -> Identity:
    return (name, tuple(sorted(parameters.items())))


class StrategySet:
    """Configured strategies for one candle series. Per candle the shared indicators are fed
    once, then every strategy decides from them; an indicator several strategies read (an
    EMA(26) of a crossover and of MACD's...) exists once. A candle not newer than the last
    changes nothing; a candle of another series is a `ValueError`.
    """

    def __init__(
        self, configs: Sequence[StrategyConfig], indicators: IndicatorSet | None = None
    ) -> None:
        self.indicators = IndicatorSet() if indicators is None else indicators
        self.strategies: list[Strategy] = [build_strategy(c, self.indicators) for c in configs]
        self._deciders = [strategy.decide for strategy in self.strategies]

    def on_candle(self, candle: Candle) -> list[Decision]:
        """Every strategy's decision at this candle's close, in configuration order."""
        close = self.indicators.on_candle(candle)
        if close is None:
            return []
        decisions: list[Decision] = []
        for decide in self._deciders:
            decision = decide(candle, close)
            if decision is not None:
                decisions.append(decision)
        return decisions

    def __getitem__(self, index: int) -> Strategy:
        return self.strategies[index]

    def __iter__(self) -> Iterator[Strategy]:
        return iter(self.strategies)

    def __len__(self) -> int:
        return len(self.strategies)

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state: the indicators once, each strategy's memory."""
        return {
            "version": STATE_VERSION,
            "indicators": self.indicators.snapshot(),
            "states": [
                {"name": s.name, "parameters": dict(s.parameters), "memory": s.memory()}
                for s in self.strategies
            ],
        }

    @classmethod
    def restore(cls, state: Mapping[str, Any], configs: Sequence[StrategyConfig]) -> StrategySet:
        """Continue from `state` with the strategies configured now. A strategy whose name
        and parameters were saved continues; one configured since starts with an empty
        memory, reading the saved indicators it shares with the series (they are functions
        of the candles alone) and fresh ones for the rest. Indicators nobody reads any more
        are dropped. Reads the per-strategy states of version 1 too."""
        if state.get("version") == STATE_VERSION:
            indicators = IndicatorSet.restore(state["indicators"])
        elif state.get("version") is None:
            indicators = indicators_of_version_1(state["states"])
        else:
            raise ValueError(f"unknown strategy set state version {state.get('version')!r}")
        memories = {_identity(s["name"], s["parameters"]): s["memory"] for s in state["states"]}
        restored = cls(configs, indicators)
        for strategy in restored.strategies:
            memory = memories.get(_identity(strategy.name, strategy.parameters))
            if memory is not None:
                strategy.restore_memory(memory)
        indicators.keep_only([i for s in restored.strategies for i in s.reads()])
        return restored
