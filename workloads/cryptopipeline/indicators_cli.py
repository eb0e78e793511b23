"""`cryptopipeline indicators`: a CSV of candles in, one JSON object of indicators per row out."""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from cryptopipeline.indicators import Atr, BollingerBands, Ema, Macd, Rsi, Sma

COLUMNS = ("time", "open", "high", "low", "close", "volume")
EXIT_BAD_INPUT = 2


class InputError(Exception):
    """Bad input: the message names the file and line."""


def _int_list(text: str, count: int, flag: str) -> list[int]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != count:
        raise argparse.ArgumentTypeError(f"{flag} needs {count} comma-separated integers")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{flag}: {text!r} is not integers") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{flag}: periods must be >= 1")
    return values


def _period(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"period must be >= 1, got {value}")
    return value


def _macd(text: str) -> list[int]:
    return _int_list(text, 3, "--macd")


def _bb(text: str) -> tuple[int, float]:
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) != 2:
            raise ValueError
        period, multiplier = int(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError("--bb needs PERIOD,MULTIPLIER (e.g. 20,2)") from None
    if period < 1 or not math.isfinite(multiplier) or multiplier < 0:
        raise argparse.ArgumentTypeError("--bb: period >= 1 and a finite multiplier >= 0")
    return period, multiplier


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `indicators` on the `cryptopipeline` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "indicators",
        help="compute indicators over a candle CSV (time,open,high,low,close,volume)",
        description="Reads a CSV with header time,open,high,low,close,volume and writes one "
        "JSON object per row to stdout (indicators are null while warming up). TA-Lib "
        "semantics; see docs/signals.md.",
    )
    parser.add_argument("--input", required=True, type=Path, help="the CSV file ('-' for stdin)")
    parser.add_argument("--sma", type=_period, default=20, metavar="N")
    parser.add_argument("--ema-fast", type=_period, default=12, metavar="N")
    parser.add_argument("--ema-slow", type=_period, default=26, metavar="N")
    parser.add_argument("--rsi", type=_period, default=14, metavar="N")
    parser.add_argument("--macd", type=_macd, default=[12, 26, 9], metavar="FAST,SLOW,SIGNAL")
    parser.add_argument("--bb", type=_bb, default=(20, 2.0), metavar="PERIOD,MULTIPLIER")
    parser.add_argument("--atr", type=_period, default=14, metavar="N")
    return parser


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    time: str | int
    sort_key: float
    high: float
    low: float
    close: float


def _number(text: str, column: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: column {column!r}: {_short(text)} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: column {column!r}: {_short(text)} is not a finite number")
    return value


_MAX_EPOCH = 10**19
"""Numeric times are epoch seconds, milliseconds, micro- or nanoseconds: all below 10^19."""


def _short(text: str) -> str:
    """A cell as the error shows it: quoted, and cut when long."""
    return repr(text) if len(text) <= 40 else repr(text[:40]) + f"... ({len(text)} characters)"


def _check_candle(values: dict[str, float], texts: dict[str, str], where: str) -> None:
    """A candle's own rules: prices > 0, volume >= 0, low <= open, close <= high."""
    for column in ("open", "high", "low", "close"):
        if values[column] <= 0:
            raise InputError(f"{where}: column {column!r}: {texts[column]!r} must be above 0")
    if values["volume"] < 0:
        raise InputError(f"{where}: column 'volume': {texts['volume']!r} must not be negative")
    if values["high"] < values["low"]:
        raise InputError(f"{where}: column 'high': {texts['high']!r} is below low {texts['low']!r}")
    for column in ("open", "close"):
        if not values["low"] <= values[column] <= values["high"]:
            raise InputError(
                f"{where}: column {column!r}: {texts[column]!r} is outside "
                f"low {texts['low']!r} .. high {texts['high']!r}"
            )


def _time_key(text: str, where: str) -> tuple[str | int, float]:
    """The time as written (an integer stays an integer) and a number to order rows by."""
    stripped = text.strip()
    if not stripped:
        raise InputError(f"{where}: column 'time' is empty")
    try:
        as_int = int(stripped)
    except ValueError:
        pass
    else:
        if abs(as_int) > _MAX_EPOCH:
            raise InputError(f"{where}: column 'time': {_short(text)} is out of range")
        return as_int, float(as_int)
    try:
        number = float(stripped)
    except ValueError:
        pass
    else:
        if not math.isfinite(number) or abs(number) > _MAX_EPOCH:
            raise InputError(f"{where}: column 'time': {_short(text)} is not a finite time")
        return stripped, number
    try:
        moment = datetime.fromisoformat(stripped.replace("z", "Z"))
    except ValueError:
        raise InputError(
            f"{where}: column 'time': {_short(text)} is neither a number nor an ISO 8601 time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return stripped, moment.timestamp()


def _rows(stream: IO[str], name: str) -> Iterator[_Row]:
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(
            f"{name} line 1: empty file, expected header {','.join(COLUMNS)}"
        ) from None
    names = [h.strip().lower() for h in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise InputError(
            f"{name} line 1: missing column(s) {', '.join(missing)} "
            f"(header must hold {','.join(COLUMNS)})"
        )
    index = {c: names.index(c) for c in COLUMNS}
    previous: float | None = None
    for fields in reader:
        line = reader.line_num
        where = f"{name} line {line}"
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise InputError(f"{where}: {len(fields)} fields, the header has {len(header)}")
        time, key = _time_key(fields[index["time"]], where)
        if previous is not None and key < previous:
            raise InputError(f"{where}: time {fields[index['time']]!r} goes backwards")
        previous = key
        values = {c: _number(fields[index[c]], c, where) for c in COLUMNS[1:]}
        _check_candle(values, {c: fields[index[c]].strip() for c in COLUMNS[1:]}, where)
        yield _Row(line, time, key, values["high"], values["low"], values["close"])


def run(args: argparse.Namespace) -> int:
    """Compute and print; bad input is one line on stderr and exit code 2, no traceback."""
    ema_fast, ema_slow = args.ema_fast, args.ema_slow
    if ema_fast == ema_slow:
        print(
            f"cryptopipeline indicators: --ema-fast and --ema-slow are both {ema_fast}",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    sma = Sma(args.sma)
    fast, slow = Ema(ema_fast), Ema(ema_slow)
    rsi = Rsi(args.rsi)
    macd = Macd(*args.macd)
    bb = BollingerBands(args.bb[0], args.bb[1])
    atr = Atr(args.atr)
    keys = (f"sma_{args.sma}", f"ema_{ema_fast}", f"ema_{ema_slow}", f"rsi_{args.rsi}")
    atr_key = f"atr_{args.atr}"
    name = str(args.input)
    out = sys.stdout.buffer
    try:
        stream = sys.stdin if name == "-" else open(args.input, encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as exc:
        print(f"cryptopipeline indicators: cannot read {name}: {exc.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        with stream:
            for row in _rows(stream, name):
                close = row.close
                line = macd.update(close)
                middle = bb.update(close)
                record = {
                    "time": row.time,
                    keys[0]: sma.update(close),
                    keys[1]: fast.update(close),
                    keys[2]: slow.update(close),
                    keys[3]: rsi.update(close),
                    "macd": line,
                    "macd_signal": macd.signal if line is not None else None,
                    "macd_hist": macd.hist if line is not None else None,
                    "bb_upper": bb.upper if middle is not None else None,
                    "bb_middle": middle,
                    "bb_lower": bb.lower if middle is not None else None,
                    atr_key: atr.update(row.high, row.low, close),
                }
                out.write(orjson.dumps(record) + b"\n")
    except InputError as exc:
        out.flush()
        print(f"cryptopipeline indicators: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except UnicodeDecodeError as exc:
        out.flush()
        print(f"cryptopipeline indicators: {name} is not UTF-8 text: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except csv.Error as exc:
        out.flush()
        print(f"cryptopipeline indicators: {name}: malformed CSV: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out.flush()
    return 0
