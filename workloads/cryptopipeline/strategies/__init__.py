"""Trading strategies on closed candles: SMA / EMA crossover, RSI thresholds, MACD signal
cross, Bollinger breakout; the set of them following one series on shared indicators; their
decisions, deterministic signal ids and `TradeSignal`s.
"""

from cryptopipeline.strategies._base import Strategy
from cryptopipeline.strategies._config import (
    StrategyConfig,
    build_strategies,
    build_strategy,
    resolve_parameters,
    restore_strategy,
)
from cryptopipeline.strategies._library import (
    STRATEGIES,
    BollingerBreakout,
    EmaCrossover,
    MacdCross,
    RsiThreshold,
    SmaCrossover,
)
from cryptopipeline.strategies._set import StrategySet
from cryptopipeline.strategies._signal import Decision, decide, signal_id, to_record

__all__ = [
    "STRATEGIES",
    "BollingerBreakout",
    "Decision",
    "EmaCrossover",
    "MacdCross",
    "RsiThreshold",
    "SmaCrossover",
    "Strategy",
    "StrategyConfig",
    "StrategySet",
    "build_strategies",
    "build_strategy",
    "decide",
    "resolve_parameters",
    "restore_strategy",
    "signal_id",
    "to_record",
]
