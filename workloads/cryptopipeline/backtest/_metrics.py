"""Performance metrics of an equity curve sampled at every candle close of one interval.

Returns are simple per-candle returns of equity. Annualisation counts 365 days of 24 hours
(crypto trades every day). Sharpe = mean / sample standard deviation * sqrt(candles per year);
Sortino = mean / downside deviation * sqrt(candles per year), the downside deviation being
sqrt(mean(min(r, 0)^2)) over every candle. No risk-free rate. Money stays Decimal; ratios are
floats.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

_YEAR_S = 365 * 86_400


@dataclass(frozen=True, slots=True)
class Metrics:
    starting_equity: Decimal
    final_equity: Decimal
    total_return: float
    annualised_return: float | None
    max_drawdown: float
    sharpe: float | None
    sortino: float | None
    win_rate: float | None
    closed_trades: int
    trades: int
    exposure: float
    fees: Decimal
    candles: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "starting_equity": str(self.starting_equity),
            "final_equity": str(self.final_equity),
            "total_return": self.total_return,
            "annualised_return": self.annualised_return,
            "max_drawdown": self.max_drawdown,
            "sharpe": self.sharpe,
            "sortino": self.sortino,
            "win_rate": self.win_rate,
            "closed_trades": self.closed_trades,
            "trades": self.trades,
            "exposure": self.exposure,
            "fees": str(self.fees),
            "candles": self.candles,
        }


def max_drawdown(equity: Sequence[Decimal]) -> float:
    """The largest fall from a running peak, as a fraction of that peak (0 = never fell)."""
    peak: Decimal | None = None
    worst = 0.0
    for value in equity:
        if peak is None or value > peak:
            peak = value
        elif peak > 0:
            worst = max(worst, float((peak - value) / peak))
    return worst


def compute_metrics(
    starting_equity: Decimal,
    equity: Sequence[Decimal],
    exposed: Sequence[bool],
    interval_s: int,
    closed_pnls: Sequence[Decimal],
    trades: int,
    fees: Decimal,
) -> Metrics:
    """Metrics of `equity` (one value per candle close, after `starting_equity`)."""
    final = equity[-1] if equity else starting_equity
    total = float(final / starting_equity - 1) if starting_equity > 0 else 0.0
    values = [starting_equity, *equity]
    returns = [float(b / a - 1) for a, b in itertools.pairwise(values) if a > 0]
    per_year = _YEAR_S / interval_s
    n = len(returns)
    annualised: float | None = None
    if n and starting_equity > 0 and final > 0:
        annualised = (float(final / starting_equity)) ** (per_year / n) - 1
    sharpe = sortino = None
    if n >= 2:
        mean = sum(returns) / n
        var = sum((r - mean) ** 2 for r in returns) / (n - 1)
        if var > 0:
            sharpe = mean / math.sqrt(var) * math.sqrt(per_year)
        downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / n)
        if downside > 0:
            sortino = mean / downside * math.sqrt(per_year)
    wins = sum(1 for pnl in closed_pnls if pnl > 0)
    return Metrics(
        starting_equity=starting_equity,
        final_equity=final,
        total_return=total,
        annualised_return=annualised,
        max_drawdown=max_drawdown(values),
        sharpe=sharpe,
        sortino=sortino,
        win_rate=wins / len(closed_pnls) if closed_pnls else None,
        closed_trades=len(closed_pnls),
        trades=trades,
        exposure=sum(exposed) / len(exposed) if exposed else 0.0,
        fees=fees,
        candles=len(equity),
    )
