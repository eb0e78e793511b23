"""`cryptopipeline backtest`: a candle CSV or a feed recording through the live engine, to a
report directory (report.json, summary.txt, chart.png). See docs/backtest.md.

The configuration is read in `_config`, the input in `_source`; this module holds the
command line, the progress bar, the parameter grid's fan-out and the exit codes."""

from __future__ import annotations

import argparse
import csv
import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from cryptopipeline.backtest._config import build_config
from cryptopipeline.backtest._engine import BacktestConfig
from cryptopipeline.backtest._grid import RANK_METRICS, parse_grid, run_grid
from cryptopipeline.backtest._inputs import InputError, Progress, file_size
from cryptopipeline.backtest._report import write_grid, write_report
from cryptopipeline.backtest._source import Source, run_source, source_of

EXIT_BAD_INPUT = 2
_PROG = "cryptopipeline backtest"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `backtest` on the `cryptopipeline` command's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "backtest",
        help="replay candles or recorded ticks through the signaler and bot rules",
        description="Runs the signaler's strategies and the bot's sizing, risk and paper fills "
        "over a candle CSV or a JSON-lines feed recording, in event time, and writes "
        "report.json, summary.txt and chart.png to --out. See docs/backtest.md.",
    )
    p.add_argument("--input", type=Path, help="candle CSV or JSON-lines feed")
    p.add_argument("--bootstrap-servers", help="with --topic: read a raw topic instead")
    p.add_argument("--topic", help="raw topic to read a time range of (--from, --to)")
    p.add_argument("--from", dest="start", metavar="TIME", help="RFC 3339, inclusive")
    p.add_argument("--to", dest="end", metavar="TIME", help="RFC 3339, exclusive")
    p.add_argument("--format", choices=["auto", "csv", "jsonl"], default="auto")
    p.add_argument("--product", default="BTC-USD", help="the product of a candle CSV")
    p.add_argument("--strategy", help="strategy name (or --config)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--config", type=Path, help="YAML/JSON: strategies, candles, trading, risk")
    p.add_argument("--candle-seconds", type=int, help="candle interval (CSV: default inferred)")
    p.add_argument("--grace-seconds", type=float, help="candle close grace (ticks; default 2)")
    p.add_argument("--cash", help="starting cash (default 10000)")
    p.add_argument("--quote-amount", help="fixed quote amount per order (default 100)")
    p.add_argument("--fee-rate", help="taker fee as a fraction of notional (default 0.006)")
    p.add_argument("--slippage", choices=["none", "bps", "half-spread"])
    p.add_argument("--slippage-bps", help="with --slippage bps")
    for flag in ("max-order-notional", "max-position-notional", "max-daily-loss"):
        p.add_argument(f"--{flag}", help="risk limit, as the bot's")
    p.add_argument("--stale-price-s", help="risk limit, as the bot's")
    p.add_argument("--cooldown-s", help="risk limit, as the bot's (cooldown_after_fill_s)")
    p.add_argument("--out", required=True, type=Path, help="report directory (new or empty)")
    p.add_argument("--no-chart", action="store_true")
    p.add_argument(
        "--grid", nargs="+", metavar="KEY=V1,V2",
        help="sweep the (first) strategy's parameters over every combination",
    )  # fmt: skip
    p.add_argument("--rank-by", choices=RANK_METRICS, default="sharpe", help="grid ranking")
    p.add_argument("--jobs", type=int, help="grid processes (default: one per CPU)")
    p.add_argument(
        "--progress", choices=["auto", "always", "never"], default="auto",
        help="progress bar on stderr after one second (auto: when stderr is a terminal)",
    )  # fmt: skip
    return p


class ProgressBar:
    """A one-line progress bar on stderr, shown once a run has taken a second."""

    def __init__(
        self,
        progress: Progress,
        stream: IO[str],
        mode: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.progress = progress
        self.stream = stream
        self.enabled = mode == "always" or (mode == "auto" and stream.isatty())
        self.clock = clock
        self.started = clock()
        self.last = 0.0
        self.shown = False

    def tick(self) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if now - self.started < 1.0 or now - self.last < 0.2:
            return
        self.last = now
        self._draw(now)

    def _draw(self, now: float) -> None:
        total = max(self.progress.total, 1)
        share = min(self.progress.done / total, 1.0)
        filled = int(share * 30)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {share * 100:5.1f}%  "
            f"{now - self.started:6.1f}s"
        )
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self._draw(self.clock())
            self.stream.write("\n")
            self.stream.flush()


def _with_parameters(config: BacktestConfig, params: dict[str, Any]) -> BacktestConfig:
    first, *rest = config.strategies
    merged = {"name": first.name, "parameters": {**first.parameters, **params}}
    data = config.model_dump(mode="json")
    data["strategies"] = [merged, *[s.model_dump(mode="json") for s in rest]]
    return BacktestConfig.model_validate(data)


def grid_run(config_json: str, source: Source, params: dict[str, Any]) -> dict[str, Any]:
    """One grid point (in a worker process): its parameters and metrics, or its error."""
    row: dict[str, Any] = {"parameters": params}
    try:
        config = _with_parameters(BacktestConfig.model_validate_json(config_json), params)
    except ValidationError as exc:
        row["error"] = str(exc.errors()[0]["msg"])
        return row
    bt = run_source(config, source, Progress(0), lambda: None)
    row["metrics"] = bt.metrics().to_dict()
    row["signals"] = len(bt.stats.signals)
    row["orders"] = len(bt.stats.orders)
    return row


def _grid(args: argparse.Namespace, config: BacktestConfig, source: Source) -> str:
    try:
        grid = parse_grid(args.grid)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    work = functools.partial(grid_run, config.model_dump_json(), source)
    rows = run_grid(work, grid, args.rank_by, args.jobs or os.cpu_count() or 1)
    errors = [r for r in rows if "error" in r and "metrics" not in r]
    if len(errors) == len(rows):
        raise InputError(f"every grid point is invalid, e.g. {errors[0]['parameters']}: "
                         f"{errors[0]['error']}")  # fmt: skip
    return write_grid(rows, list(grid), args.rank_by, args.out, source.describe())


def run(args: argparse.Namespace) -> int:
    """Run and report; bad input is one line on stderr and exit code 2, nothing in --out."""
    try:
        config = build_config(args)
        source = source_of(args)
        if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
            raise InputError(f"--out {args.out} exists and is not an empty directory")
        if args.grid:
            text = _grid(args, config, source)
        else:
            size = file_size(Path(source.path)) if source.kind != "kafka" else 0
            bar = ProgressBar(Progress(size), sys.stderr, args.progress)
            try:
                bt = run_source(config, source, bar.progress, bar.tick)
            finally:
                bar.close()
            text = write_report(bt, args.out, source.describe(), chart=not args.no_chart)
    except InputError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except csv.Error as exc:
        print(f"{_PROG}: {args.input}: malformed CSV: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except UnicodeDecodeError as exc:
        print(f"{_PROG}: {args.input} is not UTF-8 text: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    sys.stdout.write(text)
    return 0
