"""Backtest inputs, streamed: candle CSVs, JSON-lines feed recordings and simulator ground truth.

Every reader yields items one at a time (never the whole file in memory) and raises
`InputError` naming the file, the line and the field at the first thing it cannot use.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

import orjson

from cryptopipeline.market import Candle

CSV_COLUMNS = ("time", "open", "high", "low", "close", "volume")


class InputError(Exception):
    """Bad input: the message names the file and the line or field."""


@dataclass(slots=True)
class Progress:
    """How far a reader is through its file (bytes), for a progress bar."""

    total: int
    done: int = 0


_LAST_SECOND = 253_402_300_799
"""9999-12-31T23:59:59Z: the last epoch second a report's RFC 3339 times can show."""


def _epoch_s(text: str, where: str) -> int:
    stripped = text.strip()
    if not stripped:
        raise InputError(f"{where}: column 'time' is empty")
    shown = stripped if len(stripped) <= 40 else f"{stripped[:37]}..."
    try:
        value = float(stripped)
    except ValueError:
        pass
    else:
        if not math.isfinite(value) or value != int(value):
            raise InputError(f"{where}: column 'time': {shown!r} is not whole epoch seconds")
        if not 0 <= value <= _LAST_SECOND:
            raise InputError(
                f"{where}: column 'time': {shown!r} is not epoch seconds between 1970 and 9999"
            )
        return int(value)
    try:
        moment = datetime.fromisoformat(stripped.replace("z", "Z"))
    except ValueError:
        raise InputError(
            f"{where}: column 'time': {text!r} is neither epoch seconds nor an ISO 8601 time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _decimal(text: str, column: str, where: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise InputError(f"{where}: column {column!r}: {text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise InputError(f"{where}: column {column!r}: {text!r} is not a finite number >= 0")
    return value


def read_candles(
    stream: IO[str],
    name: str,
    *,
    product_id: str,
    interval_s: int | None,
    progress: Progress | None = None,
) -> Iterator[Candle]:
    """Candles from a CSV with a header holding time (or date), open, high, low, close and
    volume (other columns are ignored). Rows must be one interval apart, oldest first: a gap,
    a repeat or a step back is an error. Without `interval_s` the first step sets it."""
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{name} line 1: empty file, expected a header") from None
    names = [h.strip().lower() for h in header]
    if "time" not in names and "date" in names:
        names[names.index("date")] = "time"
    missing = [c for c in CSV_COLUMNS if c not in names]
    if missing:
        raise InputError(
            f"{name} line 1: missing column(s) {', '.join(missing)} "
            f"(the header must hold {','.join(CSV_COLUMNS)}; 'date' may stand for 'time')"
        )
    index = {c: names.index(c) for c in CSV_COLUMNS}
    previous: int | None = None
    step = interval_s
    pending: tuple[int, dict[str, Decimal]] | None = None
    count = 0
    for fields in reader:
        where = f"{name} line {reader.line_num}"
        if progress is not None:
            progress.done += sum(len(f) + 1 for f in fields)
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise InputError(f"{where}: {len(fields)} fields, the header has {len(header)}")
        start = _epoch_s(fields[index["time"]], where)
        if previous is not None:
            delta = start - previous
            if delta <= 0:
                raise InputError(
                    f"{where}: time {fields[index['time']]!r} is not after the previous row's"
                )
            if step is None:
                step = delta
            elif delta != step:
                raise InputError(
                    f"{where}: time {fields[index['time']]!r} is {delta} s after the previous "
                    f"row, expected {step} s (a gap in the candles)"
                )
        previous = start
        values = {c: _decimal(fields[index[c]], c, where) for c in CSV_COLUMNS[1:]}
        if step is None:  # the first row waits for the second to know the interval
            pending = (start, values)
            continue
        if pending is not None:
            yield _candle(product_id, step, pending[0], pending[1], count)
            count += 1
            pending = None
        yield _candle(product_id, step, start, values, count)
        count += 1
    if pending is not None:
        raise InputError(f"{name}: one row only; give --candle-seconds to set the interval")


def _candle(
    product_id: str, interval_s: int, start_s: int, values: Mapping[str, Decimal], n: int
) -> Candle:
    start_us = start_s * 1_000_000
    close = values["close"]
    return Candle(
        product_id=product_id,
        interval_s=interval_s,
        start_us=start_us,
        end_us=start_us + interval_s * 1_000_000,
        open=values["open"],
        high=values["high"],
        low=values["low"],
        close=close,
        volume=values["volume"],
        vwap=close,
        trade_count=1,
        first_trade_id=n,
        last_trade_id=n,
    )


def feed_message(line: bytes, where: str) -> Mapping[str, Any]:
    """One JSON line as a raw-topic body: a feed message, a timed `{"recv_ts", "msg"}`
    recording line, or a simulator ground-truth trade (turned into a `ticker`)."""
    try:
        body = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{where}: not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise InputError(f"{where}: a JSON {type(body).__name__}, expected an object")
    if "msg" in body and "recv_ts" in body and isinstance(body["msg"], dict):
        message: dict[str, Any] = body["msg"]
        return message
    if "type" not in body and "taker_side" in body and "size" in body:
        return {
            "type": "ticker",
            "product_id": body.get("product_id"),
            "trade_id": body.get("trade_id"),
            "time": body.get("time"),
            "price": body.get("price"),
            "last_size": body.get("size"),
            "side": body.get("taker_side"),
        }
    return body


def read_messages(
    stream: IO[bytes], name: str, progress: Progress | None = None
) -> Iterator[Mapping[str, Any]]:
    """Raw-topic bodies from a JSON-lines file, one line at a time."""
    for number, line in enumerate(stream, start=1):
        if progress is not None:
            progress.done += len(line)
        if not line.strip():
            continue
        yield feed_message(line, f"{name} line {number}")


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
