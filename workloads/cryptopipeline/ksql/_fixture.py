"""Tick fixtures for `ksql verify`: Coinbase ticker and heartbeat messages as the ingestor
writes them (key = product_id, timestamp = exchange time), no I/O.

The synthetic fixture is seeded and covers what the candle SQL must get right: several
products interleaved, trades on exact minute boundaries, several trades in one millisecond,
`time` strings with trimmed fractions (`.58496Z`), backfilled tickers without `sequence` and
24-hour fields, heartbeats, and closing heartbeats far enough ahead to close every window.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from cryptopipeline.coinbase import format_time, parse_time
from cryptopipeline.coinbase._time import to_micros


@dataclass(frozen=True, slots=True)
class FixtureRecord:
    """One raw-topic record and what the candle code needs from it."""

    product_id: str
    value: bytes
    time_us: int
    kind: str  # "ticker" or "heartbeat"
    trade_id: int | None = None
    price: Decimal | None = None
    size: Decimal | None = None

    @property
    def timestamp_ms(self) -> int:
        return self.time_us // 1000


def _trimmed(time_text: str) -> str:
    """Coinbase time with trailing zeros of the fraction removed, as re-serialised captures do."""
    head, _, fraction = time_text[:-1].partition(".")
    fraction = fraction.rstrip("0")
    return f"{head}.{fraction}Z" if fraction else f"{head}Z"


def record_from_message(message: dict[str, object]) -> FixtureRecord | None:
    """A record for a ticker or heartbeat message; None for any other message."""
    kind = message.get("type")
    if kind not in ("ticker", "heartbeat"):
        return None
    time_us = to_micros(parse_time(str(message["time"])))
    value = json.dumps(message, separators=(",", ":")).encode()
    product = str(message["product_id"])
    if kind == "heartbeat":
        return FixtureRecord(product, value, time_us, "heartbeat")
    return FixtureRecord(
        product,
        value,
        time_us,
        "ticker",
        trade_id=int(str(message["trade_id"])),
        price=Decimal(str(message["price"])),
        size=Decimal(str(message["last_size"])),
    )


def closing_heartbeats(records: list[FixtureRecord], after_s: float) -> list[FixtureRecord]:
    """One heartbeat per product `after_s` seconds after the last record: closes every window."""
    if not records:
        return []
    end_us = max(r.time_us for r in records) + int(after_s * 1_000_000)
    last_trade: dict[str, int] = {}
    for record in records:
        if record.trade_id is not None:
            last_trade[record.product_id] = record.trade_id
    result = []
    for product in sorted({r.product_id for r in records}):
        message = {
            "type": "heartbeat",
            "last_trade_id": last_trade.get(product, 0),
            "product_id": product,
            "sequence": 0,
            "time": format_time(end_us),
        }
        built = record_from_message(message)
        assert built is not None
        result.append(built)
    return result


def load_fixture(path: Path) -> list[FixtureRecord]:
    """Ticker and heartbeat messages from a JSON-lines capture, in file order."""
    records = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            message = json.loads(line)
            if isinstance(message, dict):
                record = record_from_message(message)
                if record is not None:
                    records.append(record)
    # The raw topic holds each product in trade-id order; a capture may interleave sockets.
    return sorted(records, key=lambda r: (r.time_us, r.trade_id or 0))


MINUTE_US = 60_000_000


def recent_start_us(minutes: int, now_us: int) -> int:
    """A whole minute such that `minutes` of ticks plus the closing heartbeats (a minute and a
    few seconds more) all end before `now_us`: Kafka 4 refuses record timestamps more than an
    hour ahead of its clock, and a topic's retention deletes old ones within minutes."""
    return (now_us // MINUTE_US - minutes - 3) * MINUTE_US


def shifted(records: Iterable[FixtureRecord], end_us: int) -> list[FixtureRecord]:
    """`records` moved by whole minutes (windows stay the same) so the last ends before
    `end_us`; each message's `time` is rewritten, since ksqlDB reads event time from it."""
    body = list(records)
    if not body:
        return []
    last = max(r.time_us for r in body)
    shift = (end_us // MINUTE_US - last // MINUTE_US - 1) * MINUTE_US
    moved = []
    for record in body:
        message = json.loads(record.value)
        message["time"] = format_time(record.time_us + shift)
        built = record_from_message(message)
        assert built is not None
        moved.append(built)
    return moved


def synthetic_fixture(
    seed: int = 7, minutes: int = 4, start_us: int = 1_700_000_040_000_000
) -> list[FixtureRecord]:
    """A seeded market of three products over `minutes` minutes from `start_us` (a whole
    minute; see the module docstring). The same seed gives the same trades at any start."""
    if start_us % MINUTE_US:
        raise ValueError("start_us must be a whole minute")
    rng = random.Random(seed)
    products = {
        "BTC-USD": Decimal("37000.00"),
        "ETH-USD": Decimal("2050.10"),
        "SOL-USD": Decimal("55.123"),
    }
    messages: list[tuple[int, int, dict[str, object]]] = []
    order = 0
    for index, (product, price) in enumerate(products.items()):
        trade_id = 1000 * (index + 1)
        sequence = 50_000 * (index + 1)
        t = start_us
        end_us = start_us + minutes * 60_000_000
        while t < end_us:
            step = rng.choice([0, 0, 150, 900, 2_500_000, 7_000_000, 13_000_000])
            t += step + rng.randrange(0, 1000)
            if rng.random() < 0.05:
                t = (t // 60_000_000 + 1) * 60_000_000  # exactly on a minute boundary
            if t >= end_us:
                break
            trade_id += 1
            sequence += rng.randrange(1, 5)
            tick = Decimal(10) ** -2 if product != "SOL-USD" else Decimal(10) ** -3
            price = max(tick, price + tick * rng.randrange(-40, 41))
            size = Decimal(rng.randrange(1, 5_000_000)) / Decimal(10**8)
            time_text = format_time(t)
            if rng.random() < 0.3:
                time_text = _trimmed(time_text)
            message: dict[str, object]
            if rng.random() < 0.15:  # backfilled: what Coinbase REST trades carry, no more
                message = {
                    "type": "ticker",
                    "product_id": product,
                    "price": str(price),
                    "side": rng.choice(["buy", "sell"]),
                    "time": time_text,
                    "trade_id": trade_id,
                    "last_size": f"{size:.8f}",
                }
            else:
                message = {
                    "type": "ticker",
                    "sequence": sequence,
                    "product_id": product,
                    "price": str(price),
                    "open_24h": str(price),
                    "volume_24h": "1234.56789012",
                    "low_24h": str(price),
                    "high_24h": str(price),
                    "volume_30d": "98765.43210000",
                    "best_bid": str(price - tick),
                    "best_bid_size": "0.50000000",
                    "best_ask": str(price),
                    "best_ask_size": "0.25000000",
                    "side": rng.choice(["buy", "sell"]),
                    "time": time_text,
                    "trade_id": trade_id,
                    "last_size": f"{size:.8f}",
                }
            messages.append((t, order, message))
            order += 1
        for second in range(0, minutes * 60, 1):
            hb_t = start_us + second * 1_000_000 + 500_000
            messages.append(
                (
                    hb_t,
                    order,
                    {
                        "type": "heartbeat",
                        "last_trade_id": 0,  # corrected below
                        "product_id": product,
                        "sequence": 0,
                        "time": format_time(hb_t),
                    },
                )
            )
            order += 1
    messages.sort(key=lambda item: (item[0], item[1]))
    last_trade: dict[str, int] = {}
    records: list[FixtureRecord] = []
    for _, _, message in messages:
        product = str(message["product_id"])
        if message["type"] == "ticker":
            last_trade[product] = int(str(message["trade_id"]))
        else:
            message["last_trade_id"] = last_trade.get(product, 0)
        record = record_from_message(message)
        assert record is not None
        records.append(record)
    return records


def with_closing(
    records: Iterable[FixtureRecord], interval_s: int, grace_s: float
) -> list[FixtureRecord]:
    """`records` plus closing heartbeats past the last window's end and grace period."""
    body = list(records)
    return body + closing_heartbeats(body, after_s=interval_s + grace_s + 5)
