"""Parameter sweeps: every combination of a grid, one backtest per process, ranked.

Runs are independent and deterministic (no randomness, event time only), so the ranking of a
grid on an input is the same on every run and with any number of processes; ties rank by the
parameters in grid order.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

RANK_METRICS = ("sharpe", "sortino", "total_return", "annualised_return", "max_drawdown",
                "win_rate", "final_equity")  # fmt: skip
"""What `--rank-by` accepts; max_drawdown ranks the smallest first, the others the largest."""


def parse_grid(items: Sequence[str]) -> dict[str, list[float | int | str]]:
    """`["fast=5,10,20", "slow=20,50"]` as {"fast": [5, 10, 20], "slow": [20, 50]};
    `ValueError` naming the item."""
    grid: dict[str, list[float | int | str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        parts = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not parts:
            raise ValueError(f"--grid {item!r}: expected KEY=V1,V2,...")
        if key in grid:
            raise ValueError(f"--grid: {key} given twice")
        grid[key] = [param_value(v) for v in parts]
    return grid


def param_value(text: str) -> float | int | str:
    """A strategy parameter as written on the command line (--param and --grid alike)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def combinations(grid: Mapping[str, Sequence[float | int | str]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def rank_key(metric: str) -> Callable[[tuple[int, dict[str, Any]]], tuple[int, float, int]]:
    """Sort key of (grid index, row): the best first, runs without a value last."""

    def key(item: tuple[int, dict[str, Any]]) -> tuple[int, float, int]:
        index, row = item
        value = row.get("metrics", {}).get(metric)
        if value is None:
            return (1, 0.0, index)
        number = float(value)
        if math.isnan(number):
            return (1, 0.0, index)
        return (0, number if metric == "max_drawdown" else -number, index)

    return key


def run_grid(
    work: Callable[[dict[str, Any]], dict[str, Any]],
    grid: Mapping[str, Sequence[float | int | str]],
    metric: str,
    jobs: int,
) -> list[dict[str, Any]]:
    """Every combination through `work` (a picklable function of the parameters) in up to
    `jobs` processes; the rows ranked by `metric`, each with its `rank`."""
    combos = combinations(grid)
    if jobs <= 1:
        rows = [work(params) for params in combos]
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            rows = list(pool.map(work, combos))
    ranked = sorted(enumerate(rows), key=rank_key(metric))
    out = []
    for rank, (_, row) in enumerate(ranked, start=1):
        out.append({"rank": rank, **row})
    return out
