"""A finished backtest as files: `report.json`, `summary.txt` and `chart.png`.

Written into a fresh temporary directory beside `--out` and renamed into place at the end, so
`--out` holds a whole report or nothing.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import orjson

from cryptopipeline.backtest._engine import Backtest
from cryptopipeline.backtest._metrics import Metrics
from cryptopipeline.coinbase import format_time


def report(bt: Backtest, metrics: Metrics, source: dict[str, Any]) -> dict[str, Any]:
    """The JSON report: what ran, the metrics, every trade and signal, the equity curve."""
    stats = bt.stats
    peak = bt.config.trading.starting_cash
    curve = []
    for point in bt.equity:
        peak = max(peak, point.equity)
        drawdown = float((peak - point.equity) / peak) if peak > 0 else 0.0
        curve.append(
            {
                "time": format_time(point.time_us),
                "equity": str(point.equity),
                "price": str(point.price),
                "drawdown": drawdown,
                "exposed": point.exposed,
            }
        )
    return {
        "schema_version": 1,
        "input": source,
        "config": bt.config.model_dump(mode="json"),
        "metrics": metrics.to_dict(),
        "counts": {
            "records": stats.records,
            "ticks": stats.ticks,
            "heartbeats": stats.heartbeats,
            "ignored": stats.ignored,
            "rejected_input": stats.rejected_input,
            "late_trades": stats.late_trades,
            "candles": stats.candles,
            "signals": len(stats.signals),
            "orders": len(stats.orders),
            "rejections": stats.rejections,
        },
        "trades": [t.to_dict() for t in bt.trades],
        "signals": [
            {
                "time": s.event_time,
                "signal_id": s.signal_id,
                "product_id": s.product_id,
                "strategy": s.strategy,
                "action": s.action.value,
                "close_price": str(s.close_price),
            }
            for s in stats.signals
        ],
        "portfolio": bt.blotter.portfolio.snapshot(),
        "equity_curve": curve,
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.2f}%"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def summary(bt: Backtest, metrics: Metrics, source: dict[str, Any], chart: str) -> str:
    """One screen of text: the input, the run's counts and its metrics."""
    stats = bt.stats
    first = format_time(bt.equity[0].time_us) if bt.equity else "-"
    last = format_time(bt.equity[-1].time_us) if bt.equity else "-"
    names = ", ".join(f"{s.name}{s.parameters or ''}" for s in bt.config.strategies)
    rejections = ", ".join(f"{k} {v}" for k, v in sorted(stats.rejections.items())) or "none"
    lines = [
        f"backtest of {source.get('path') or source.get('topic')} ({source['kind']})",
        f"  period        {first} -> {last}  ({metrics.candles} candles of "
        f"{bt.config.intervals_s[0]} s)",
        f"  strategies    {names}",
        f"  fill model    fee {bt.config.fee_rate}, slippage {bt.config.slippage}"
        + (f" {bt.config.slippage_bps} bps" if bt.config.slippage == "bps" else ""),
        f"  signals       {len(stats.signals)}   orders {len(stats.orders)}   "
        f"fills {metrics.trades}   rejected: {rejections}",
        f"  equity        {metrics.starting_equity} -> {metrics.final_equity:.2f}   "
        f"fees {metrics.fees:.2f}",
        f"  return        total {_pct(metrics.total_return)}   "
        f"annualised {_pct(metrics.annualised_return)}",
        f"  risk          max drawdown {_pct(-metrics.max_drawdown)}   "
        f"Sharpe {_num(metrics.sharpe)}   Sortino {_num(metrics.sortino)}",
        f"  trades        win rate {_pct(metrics.win_rate).lstrip('+')} of "
        f"{metrics.closed_trades} closing fills   exposure {metrics.exposure * 100:.1f}%",
        f"  chart         {chart}",
    ]
    if stats.rejected_input:
        bad = ", ".join(f"{k} {v}" for k, v in sorted(stats.rejected_input.items()))
        lines.append(f"  bad records   {bad} (skipped, as the signaler dead-letters them)")
    return "\n".join(lines) + "\n"


def draw_chart(bt: Backtest, path: Path) -> bool:
    """Price with buy/sell markers, equity, drawdown; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    from datetime import UTC, datetime

    times = [datetime.fromtimestamp(p.time_us / 1e6, UTC) for p in bt.equity]
    prices = [float(p.price) for p in bt.equity]
    equity = [float(p.equity) for p in bt.equity]
    peak = float(bt.config.trading.starting_cash)
    drawdown = []
    for value in equity:
        peak = max(peak, value)
        drawdown.append(-(peak - value) / peak * 100 if peak > 0 else 0.0)
    figure, (top, middle, bottom) = plt.subplots(
        3, 1, figsize=(11, 8), sharex=True, height_ratios=[3, 2, 1]
    )
    top.plot(times, prices, color="#555555", linewidth=0.8, label="close")
    for side, marker, color in (("BUY", "^", "#1a9641"), ("SELL", "v", "#d7191c")):
        chosen = [t for t in bt.trades if t.side.value == side]
        top.scatter(
            [datetime.fromisoformat(t.time) for t in chosen],
            [float(t.price) for t in chosen],
            marker=marker,
            color=color,
            s=40,
            label=side.lower(),
            zorder=3,
        )
    top.set_ylabel("price")
    top.legend(loc="upper left")
    middle.plot(times, equity, color="#2b83ba", linewidth=1.0)
    middle.set_ylabel("equity")
    bottom.fill_between(times, drawdown, 0, color="#d7191c", alpha=0.4)
    bottom.set_ylabel("drawdown %")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def write_report(bt: Backtest, out: Path, source: dict[str, Any], *, chart: bool = True) -> str:
    """Write the three files into `out` (which must not exist or be empty); the summary."""
    out = out.resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    metrics = bt.metrics()
    temp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        (temp / "report.json").write_bytes(
            orjson.dumps(report(bt, metrics, source), option=orjson.OPT_INDENT_2)
        )
        drawn = chart and draw_chart(bt, temp / "chart.png")
        if drawn:
            note = str(out / "chart.png")
        elif chart:
            note = "skipped: matplotlib is not installed (pip install 'cryptopipeline[backtest]')"
        else:
            note = "skipped (--no-chart)"
        text = summary(bt, metrics, source, note)
        (temp / "summary.txt").write_text(text)
        if out.exists():
            out.rmdir()
        os.replace(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return text


_GRID_METRICS = ("total_return", "annualised_return", "max_drawdown", "sharpe", "sortino",
                 "win_rate", "trades", "fees", "final_equity")  # fmt: skip


def write_grid(
    rows: list[dict[str, Any]], keys: list[str], metric: str, out: Path, source: dict[str, Any]
) -> str:
    """`grid.json` and `grid.csv` (one row per run, best first) into `out`; the text table."""
    out = out.resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    header = ["rank", *keys, *_GRID_METRICS, "signals", "orders", "error"]
    table = []
    for row in rows:
        metrics = row.get("metrics", {})
        table.append(
            [
                row["rank"],
                *(row["parameters"][k] for k in keys),
                *(metrics.get(m) for m in _GRID_METRICS),
                row.get("signals"),
                row.get("orders"),
                row.get("error"),
            ]
        )
    temp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        document = {"input": source, "rank_by": metric, "runs": rows}
        (temp / "grid.json").write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
        with (temp / "grid.csv").open("w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(header)
            writer.writerows([["" if v is None else v for v in line] for line in table])
        if out.exists():
            out.rmdir()
        os.replace(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    lines = [f"grid of {len(rows)} runs ranked by {metric} (best first); {out / 'grid.csv'}"]
    shown = ["rank", *keys, "total_return", "max_drawdown", "sharpe", "trades"]
    lines.append("  ".join(f"{h:>12}" for h in shown))
    for row in rows[:10]:
        metrics = row.get("metrics", {})
        cells = [row["rank"], *(row["parameters"][k] for k in keys)]
        if "error" in row:
            lines.append("  ".join(f"{c!s:>12}" for c in cells) + f"  invalid: {row['error']}")
            continue
        cells += [_fmt(metrics.get("total_return")), _fmt(metrics.get("max_drawdown")),
                  _fmt(metrics.get("sharpe")), metrics.get("trades")]  # fmt: skip
        lines.append("  ".join(f"{c!s:>12}" for c in cells))
    return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
