"""`cryptopipeline backtest`: a candle CSV or a feed recording through the live engine, to a
report directory (report.json, summary.txt, chart.png). See docs/backtest.md."""

from __future__ import annotations

import argparse
import asyncio
import csv
import functools
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

import orjson
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from cryptopipeline.backtest._engine import Backtest, BacktestConfig
from cryptopipeline.backtest._grid import RANK_METRICS, param_value, parse_grid, run_grid
from cryptopipeline.backtest._inputs import (
    InputError,
    Progress,
    file_size,
    read_candles,
    read_messages,
)
from cryptopipeline.backtest._kafka import read_topic_range
from cryptopipeline.backtest._report import write_grid, write_report
from cryptopipeline.coinbase import format_time
from cryptopipeline.market import epoch_us

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


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _snake_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {_snake(str(k)): _snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake_keys(v) for v in value]
    return value


def _load_config_file(path: Path) -> dict[str, Any]:
    """The CRD's spec (or a whole CryptoPipeline manifest) or the signaler/bot settings shape."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        if path.suffix == ".json":
            raw = orjson.loads(text)
        else:
            import yaml

            raw = yaml.safe_load(text)
    except Exception as exc:
        raise InputError(
            f"config {path}: not valid YAML/JSON: {str(exc).splitlines()[0]}"
        ) from None
    if not isinstance(raw, dict):
        raise InputError(f"config {path}: expected a mapping at the top")
    if raw.get("kind") == "CryptoPipeline":
        raw = raw.get("spec") or {}
    strategies = raw.get("strategies")
    out: dict[str, Any] = {}
    if strategies is not None:
        out["strategies"] = strategies  # parameters keep their own names
    candles = _snake_keys(raw.get("candles") or {})
    if "intervals_seconds" in candles:
        out["intervals_s"] = candles["intervals_seconds"]
    if "intervals_s" in candles:
        out["intervals_s"] = candles["intervals_s"]
    for key in ("grace_s", "grace_seconds"):
        if key in candles:
            out["grace_s"] = candles[key]
    bot = _snake_keys(raw.get("bot") or {})
    risk = _snake_keys(raw.get("risk") or bot.get("risk") or {})
    if risk:
        out["risk"] = risk
    trading = _snake_keys(raw.get("trading") or bot.get("trading") or {})
    if trading:
        out["trading"] = trading
    for key in ("fee_rate", "slippage", "slippage_bps"):
        if key in raw:
            out[key] = raw[key]
    return out


def build_config(args: argparse.Namespace) -> BacktestConfig:
    """The run's configuration from --config and the flags (flags win)."""
    values: dict[str, Any] = _load_config_file(args.config) if args.config else {}
    if args.strategy:
        params: dict[str, float | int | str] = {}
        for item in args.param:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise InputError(f"--param {item!r}: expected KEY=VALUE")
            params[key.strip()] = param_value(value.strip())
        values["strategies"] = [{"name": args.strategy, "parameters": params}]
    elif args.param:
        raise InputError("--param needs --strategy")
    if not values.get("strategies"):
        raise InputError("no strategy: give --strategy NAME or --config FILE with strategies")
    if args.candle_seconds is not None:
        values["intervals_s"] = [args.candle_seconds]
    if args.grace_seconds is not None:
        values["grace_s"] = args.grace_seconds
    trading = dict(values.get("trading") or {})
    if args.cash is not None:
        trading["starting_cash"] = args.cash
    if args.quote_amount is not None:
        trading["sizing"] = {**dict(trading.get("sizing") or {}), "mode": "fixed_quote",
                             "quote_amount": args.quote_amount}  # fmt: skip
    values["trading"] = trading
    risk = dict(values.get("risk") or {})
    for flag, key in (
        ("max_order_notional", "max_order_notional"),
        ("max_position_notional", "max_position_notional"),
        ("max_daily_loss", "max_daily_loss"),
        ("stale_price_s", "stale_price_s"),
        ("cooldown_s", "cooldown_after_fill_s"),
    ):
        if getattr(args, flag) is not None:
            risk[key] = getattr(args, flag)
    values["risk"] = risk
    for flag in ("fee_rate", "slippage", "slippage_bps"):
        if getattr(args, flag) is not None:
            values[flag] = getattr(args, flag)
    for flag in ("fee_rate", "slippage_bps"):
        if isinstance(values.get(flag), str):
            try:
                Decimal(values[flag])
            except InvalidOperation:
                raise InputError(
                    f"--{flag.replace('_', '-')}: {values[flag]!r} is not a number"
                ) from None
    try:
        return BacktestConfig.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "config"
        raise InputError(f"invalid {where}: {error['msg']}") from None


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


@dataclass(frozen=True, slots=True)
class Source:
    """Where the run reads (picklable: grid workers read it themselves)."""

    kind: str  # csv | jsonl | kafka
    path: str = ""
    product: str = "BTC-USD"
    candle_seconds: int | None = None
    bootstrap_servers: str = ""
    topic: str = ""
    from_ms: int = 0
    to_ms: int = 0

    def describe(self) -> dict[str, Any]:
        if self.kind == "kafka":
            return {"kind": "kafka", "topic": self.topic, "bootstrap_servers":
                    self.bootstrap_servers, "from": format_time(self.from_ms * 1000),
                    "to": format_time(self.to_ms * 1000)}  # fmt: skip
        return {"kind": self.kind, "path": self.path}


def _time_ms(text: str, flag: str) -> int:
    try:
        return epoch_us(text) // 1000
    except ValueError:
        raise InputError(f"{flag} {text!r} is not an RFC 3339 time") from None


def source_of(args: argparse.Namespace) -> Source:
    if args.topic:
        if args.input is not None:
            raise InputError("give --input or --topic, not both")
        if not args.bootstrap_servers or not args.start or not args.end:
            raise InputError("--topic needs --bootstrap-servers, --from and --to")
        start, end = _time_ms(args.start, "--from"), _time_ms(args.end, "--to")
        if end <= start:
            raise InputError(f"--to {args.end} is not after --from {args.start}")
        return Source("kafka", bootstrap_servers=args.bootstrap_servers, topic=args.topic,
                      from_ms=start, to_ms=end)  # fmt: skip
    if args.input is None:
        raise InputError("give --input FILE or --topic with --bootstrap-servers, --from, --to")
    path: Path = args.input
    kind = args.format
    if kind == "auto":
        kind = "csv" if path.suffix.lower() == ".csv" else "jsonl"
    return Source(kind, str(path), args.product, args.candle_seconds)


def run_source(
    config: BacktestConfig, source: Source, progress: Progress, tick: Callable[[], None]
) -> Backtest:
    """One backtest of `config` over `source`, to its end."""
    bt = Backtest(config)
    if source.kind == "kafka":

        async def consume() -> None:
            reader = read_topic_range(
                source.bootstrap_servers, source.topic, source.from_ms, source.to_ms, progress
            )
            n = 0
            async for value in reader:
                bt.on_message(value)
                n += 1
                if not n % 4096:
                    tick()

        try:
            asyncio.run(consume())
        except KafkaError as exc:
            raise InputError(f"cannot read topic {source.topic!r}: {exc}") from None
        return bt
    name = source.path
    try:
        stream: IO[Any] = (
            open(name, encoding="utf-8", newline="") if source.kind == "csv" else open(name, "rb")  # noqa: SIM115
        )
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror}") from None
    with stream:
        if source.kind == "csv":
            interval = config.intervals_s[0] if source.candle_seconds else None
            candles = read_candles(stream, name, product_id=source.product, interval_s=interval,
                                   progress=progress)  # fmt: skip
            for n, candle in enumerate(candles):
                if n == 0 and candle.interval_s != config.intervals_s[0]:
                    # the CSV's own interval, known once it is read
                    bt = Backtest(config.model_copy(update={"intervals_s": [candle.interval_s]}))
                bt.on_candle(candle)
                if not n % 4096:
                    tick()
        else:
            for n, message in enumerate(read_messages(stream, name, progress)):
                bt.on_message(message)
                if not n % 4096:
                    tick()
    return bt


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
