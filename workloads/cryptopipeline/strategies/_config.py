"""Configured strategies: `StrategyConfig` (a name from `STRATEGIES` and its parameters, each
strategy checking its own), building fresh instances and restoring saved ones."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cryptopipeline.indicators import IndicatorSet
from cryptopipeline.strategies._base import STATE_VERSION, Strategy, StrategyBase
from cryptopipeline.strategies._library import STRATEGIES


def strategy_kind(name: str) -> type[StrategyBase]:
    """The strategy class registered as `name`; `ValueError` listing the known names."""
    kind = STRATEGIES.get(name)
    if kind is None:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}")
    return kind


def resolve_parameters(name: str, given: Mapping[str, object]) -> dict[str, float | int | str]:
    """A strategy's full parameters (defaults filled in, typed); `ValueError` naming the key."""
    return strategy_kind(name).resolve(given)


class StrategyConfig(BaseModel):
    """One configured strategy: its name and parameters (missing ones take the defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    parameters: dict[str, float | int | str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known_name(cls, name: str) -> str:
        strategy_kind(name)
        return name

    @model_validator(mode="after")
    def _valid_parameters(self) -> StrategyConfig:
        resolve_parameters(self.name, self.parameters)
        return self


def build_strategy(config: StrategyConfig, indicators: IndicatorSet | None = None) -> Strategy:
    """A fresh instance (for one product and interval) of one configured strategy, reading
    its indicators from `indicators` (shared with other strategies) or from its own set."""
    return STRATEGIES[config.name](indicators, **config.parameters)


def build_strategies(configs: Sequence[StrategyConfig]) -> list[Strategy]:
    """Fresh, independent instances of every configured strategy, for one product and
    interval (`StrategySet` builds them sharing their indicators)."""
    return [build_strategy(config) for config in configs]


def restore_strategy(state: Mapping[str, Any]) -> Strategy:
    """The strategy a `snapshot()` described, continuing exactly where it left off."""
    version = state.get("version")
    kind = STRATEGIES.get(str(state.get("name")))
    if kind is None:
        raise ValueError(f"unknown strategy {state.get('name')!r}")
    if version == STATE_VERSION:
        indicators = IndicatorSet.restore(state["indicators"])
    elif version == 1:
        indicators = indicators_of_version_1([state])
    else:
        raise ValueError(f"unknown strategy state version {version!r}")
    strategy = kind(indicators, **state["parameters"])
    strategy.restore_memory(state["memory"])
    return strategy


def indicators_of_version_1(states: Iterable[Mapping[str, Any]]) -> IndicatorSet:
    """One `IndicatorSet` from strategy states of version 1, where each strategy saved its
    own indicators by attribute: the first state holding an indicator gives it (strategies
    of one series see the same candles, so their copies agree unless one restarted)."""
    indicators = IndicatorSet()
    for state in states:
        kind = STRATEGIES.get(str(state.get("name")))
        if kind is None:
            continue  # a strategy that no longer exists: nobody reads its indicators
        probe_set = IndicatorSet()
        probe = kind(probe_set, **state["parameters"])
        for attribute, indicator in zip(probe._INDICATORS, probe.reads(), strict=True):
            indicator_kind, arguments = probe_set.key_of(indicator)
            indicators.adopt(indicator_kind, arguments, state["indicators"][attribute])
        series = state.get("series")
        if series and indicators.series is None:
            indicators.series = (str(series[0]), int(series[1]))
        indicators.last_start_us = max(indicators.last_start_us, int(state["last_start_us"]))
    return indicators
