"""Where a backtest reads (a candle CSV, a JSON-lines feed recording, or a time range of a
raw Kafka topic) and the loop that feeds it through one `Backtest`."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from aiokafka.errors import KafkaError

from cryptopipeline.backtest._engine import Backtest, BacktestConfig
from cryptopipeline.backtest._inputs import InputError, Progress, read_candles, read_messages
from cryptopipeline.backtest._kafka import read_topic_range
from cryptopipeline.coinbase import format_time
from cryptopipeline.market import epoch_us


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
