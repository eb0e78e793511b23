"""A backtest's configuration from `--config` (the CryptoPipeline spec, a whole manifest, or
the signaler/bot settings shape) and the command-line flags; flags win. Bad values are one
`InputError` naming the flag or field."""

from __future__ import annotations

import argparse
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from cryptopipeline.backtest._engine import BacktestConfig
from cryptopipeline.backtest._grid import param_value
from cryptopipeline.backtest._inputs import InputError


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
