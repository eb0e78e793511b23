"""Strategies of one series on shared indicators decide exactly as independent ones do."""

from __future__ import annotations

import json
import math
import random

import pytest
from test_strategy_decisions import ALL, V_SHAPE, candles

from cryptopipeline.indicators import Ema, Sma
from cryptopipeline.strategies import StrategyConfig, StrategySet, build_strategies

CONFIGS = [
    StrategyConfig(name="sma_crossover", parameters={"fast": 3, "slow": 10}),
    StrategyConfig(name="sma_crossover", parameters={"fast": 3, "slow": 20}),
    StrategyConfig(name="ema_crossover", parameters={"fast": 12, "slow": 26}),
    StrategyConfig(name="rsi_threshold", parameters={"oversold": 45, "overbought": 55}),
    StrategyConfig(name="rsi_threshold", parameters={"oversold": 40, "overbought": 60}),
    StrategyConfig(name="macd_cross"),
    StrategyConfig(name="bollinger_breakout", parameters={"period": 10, "multiplier": 1.5}),
    StrategyConfig(name="bollinger_breakout", parameters={"period": 10, "multiplier": 2}),
]


def _walk(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    price, out = 100.0, []
    for _ in range(n):
        price *= 1 + rng.gauss(0, 0.01)
        out.append(price)
    return out


SERIES = {
    "v_shape": V_SHAPE * 3,
    "zigzag": [100 + 10 * math.sin(i / 5) + (3 if i % 2 else -3) for i in range(600)],
    "walk": _walk(3000, seed=5),
    "flat_then_walk": [100.0] * 50 + _walk(500, seed=6),
}


@pytest.mark.parametrize("series", list(SERIES))
def test_the_same_decisions_as_independent_strategies(series: str) -> None:
    closes = SERIES[series]
    group = StrategySet(CONFIGS)
    alone = build_strategies(CONFIGS)
    shared = [d for c in candles(closes) for d in group.on_candle(c)]
    independent = [d for c in candles(closes) for s in alone if (d := s.on_candle(c))]
    assert shared == independent
    assert len(shared) > 3


def test_one_instance_per_indicator() -> None:
    group = StrategySet(CONFIGS)
    # SMA 3, 10, 20; EMA 12, 26; RSI 14; MACD; Bollinger 10x1.5, 10x2
    assert len(group.indicators) == 9
    assert group[0].reads()[0] is group[1].reads()[0]  # both crossovers' SMA(3)
    assert group[3].reads() == group[4].reads()  # one RSI(14)
    assert group.indicators.get(Sma, 3) is group[0].reads()[0]
    assert group.indicators.get(Ema, 26) is group[2].reads()[1]


def test_replays_change_nothing_and_other_series_are_refused() -> None:
    series = candles(V_SHAPE)
    group = StrategySet(CONFIGS)
    for candle in series:
        group.on_candle(candle)
    before = group.snapshot()
    assert group.on_candle(series[-1]) == [] and group.on_candle(series[3]) == []
    assert group.snapshot() == before
    with pytest.raises(ValueError, match="follow BTC-USD/60s"):
        group.on_candle(candles([1.0] * 3, product="ETH-USD")[2])


@pytest.mark.parametrize("cut", [5, 40, 300])
def test_snapshot_restore_continues_identically(cut: int) -> None:
    series = candles(SERIES["zigzag"])
    straight = StrategySet(CONFIGS)
    expected = [straight.on_candle(c) for c in series]
    first = StrategySet(CONFIGS)
    got = [first.on_candle(c) for c in series[:cut]]
    restored = StrategySet.restore(json.loads(json.dumps(first.snapshot())), CONFIGS)
    got += [restored.on_candle(c) for c in series[cut:]]
    assert got == expected


@pytest.mark.parametrize("name", ALL)
def test_a_strategy_validates_its_own_parameters(name: str) -> None:
    (strategy,) = build_strategies([StrategyConfig(name=name)])
    kind = type(strategy)
    assert kind.resolve({}) == strategy.parameters
    with pytest.raises(ValueError, match=f"{name}: unknown parameter"):
        kind.resolve({"nope": 1})
