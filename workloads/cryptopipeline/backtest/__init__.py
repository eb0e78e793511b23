"""Backtests on the live engine: ticks or candles through the signaler's engine and the
trading package's planning, risk, sizing and paper fills, in event time; reports with metrics
and a chart. No bot code: the domain packages, plus its own Kafka reader (`_kafka`).
"""

from cryptopipeline.backtest._engine import (
    Backtest,
    BacktestConfig,
    BacktestStats,
    EquityPoint,
    Slippage,
    Trade,
)
from cryptopipeline.backtest._metrics import Metrics, compute_metrics, max_drawdown

__all__ = [
    "Backtest",
    "BacktestConfig",
    "BacktestStats",
    "EquityPoint",
    "Metrics",
    "Slippage",
    "Trade",
    "compute_metrics",
    "max_drawdown",
]
