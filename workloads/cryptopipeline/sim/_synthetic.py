"""A seeded synthetic market: per product a random walk with volatility bursts.

Trades arrive per product as a Poisson process (exponential gaps, mean 1/rate, with the
product's own rate or the market's); each product also heartbeats once per simulated second.
Given the seed and the start time, the event stream is identical on every run, whatever the
pacing.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cryptopipeline.coinbase import Side
from cryptopipeline.sim._events import (
    HeartbeatEvent,
    MarketEvent,
    Quote,
    SessionStats,
    Trade,
    TradeEvent,
)
from cryptopipeline.sim._products import ProductSpec

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Clock:
    """Formats microsecond times as `format_time` does, caching the whole-second prefix."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def format(self, at_us: int) -> str:
        second, micros = divmod(at_us, 1_000_000)
        if second != self._second:
            self._second = second
            self._prefix = (_EPOCH + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{micros:06d}Z"


@dataclass(slots=True)
class _Book:
    """The evolving state of one product's synthetic market."""

    spec: ProductSpec
    rng: random.Random
    rate: float
    """Trades per second (the mean of the exponential gaps is 1/rate)."""
    log_mid: float
    trade_id: int
    sequence: int
    open_24h: Decimal
    high_24h: Decimal
    low_24h: Decimal
    volume_24h: Decimal
    volume_30d: Decimal
    next_trade_us: int
    tick_float: float
    size_units: float
    """Median trade size in base increments."""
    last_trade_id: int = 0
    burst_left: int = 0


class SyntheticMarket:
    """Yields `MarketEvent`s in event-time order for the given products."""

    SIGMA = 0.00025
    """Per-trade log-price volatility outside bursts."""
    BURST_PROBABILITY = 0.002
    BURST_MULTIPLIER = 5.0
    MAX_SEQUENCE_STEP = 6
    """Sequence advances 1..k per trade: the other book events the ticker does not show."""

    def __init__(
        self,
        products: Sequence[ProductSpec],
        *,
        seed: int,
        rate: float,
        start_us: int,
        max_trades: int | None = None,
        rates: Mapping[str, float] | None = None,
    ) -> None:
        rates = rates or {}
        if not rate > 0 or not all(r > 0 for r in rates.values()):
            raise ValueError("rate must be positive (trades per second per product)")
        self.rate = rate
        self.start_us = start_us
        self.max_trades = max_trades
        self._clock = _Clock()
        self._books: list[_Book] = []
        for spec in products:
            rng = random.Random(f"market:{seed}:{spec.product_id}")
            start = spec.start_price * Decimal(str(round(rng.uniform(0.97, 1.03), 4)))
            start = start.quantize(spec.quote_increment)
            product_rate = rates.get(spec.product_id, rate)
            self._books.append(
                _Book(
                    spec=spec,
                    rng=rng,
                    rate=product_rate,
                    log_mid=math.log(float(start)),
                    trade_id=rng.randint(100_000_000, 900_000_000),
                    sequence=rng.randint(10_000_000_000, 90_000_000_000),
                    open_24h=(start * Decimal("0.99")).quantize(spec.quote_increment),
                    high_24h=(start * Decimal("1.02")).quantize(spec.quote_increment),
                    low_24h=(start * Decimal("0.975")).quantize(spec.quote_increment),
                    volume_24h=spec.volume_24h,
                    volume_30d=spec.volume_30d,
                    next_trade_us=start_us + _gap_us(rng, product_rate),
                    tick_float=float(spec.quote_increment),
                    size_units=spec.median_size / float(spec.base_increment),
                )
            )

    def __iter__(self) -> Iterator[MarketEvent]:
        books = self._books
        next_heartbeat = self.start_us + 1_000_000
        trades = 0
        limit = self.max_trades
        while limit is None or trades < limit:
            book = min(books, key=lambda b: b.next_trade_us)
            if next_heartbeat <= book.next_trade_us:
                for each in books:
                    yield self._heartbeat(each, next_heartbeat)
                next_heartbeat += 1_000_000
                continue
            at = book.next_trade_us
            book.next_trade_us = at + _gap_us(book.rng, book.rate)
            trades += 1
            yield self._trade(book, at)

    def _heartbeat(self, book: _Book, at_us: int) -> MarketEvent:
        return HeartbeatEvent(
            at_us,
            book.spec.product_id,
            sequence=book.sequence,
            last_trade_id=book.last_trade_id,
            time=self._clock.format(at_us),
        )

    def _trade(self, book: _Book, at_us: int) -> MarketEvent:
        rng = book.rng
        spec = book.spec
        tick = spec.quote_increment
        # Volatility regime: occasional bursts of several hundred trades.
        if book.burst_left:
            book.burst_left -= 1
            vol = self.BURST_MULTIPLIER
        else:
            vol = 1.0
            if rng.random() < self.BURST_PROBABILITY:
                book.burst_left = int(rng.expovariate(1 / 300)) + 1
        book.log_mid += rng.gauss(0.0, self.SIGMA * vol)
        bid_ticks = max(1, int(math.exp(book.log_mid) / book.tick_float))
        spread_ticks = 1 + int(rng.expovariate(1 / (0.8 * vol)))
        best_bid = Decimal(bid_ticks) * tick
        best_ask = Decimal(bid_ticks + spread_ticks) * tick
        taker: Side = "buy" if rng.random() < 0.5 else "sell"
        price = best_ask if taker == "buy" else best_bid
        size = self._size(rng, book.size_units, spec.base_increment)
        best_bid_size = self._size(rng, book.size_units * 4, spec.base_increment)
        best_ask_size = self._size(rng, book.size_units * 4, spec.base_increment)

        book.trade_id += 1
        book.last_trade_id = book.trade_id
        book.sequence += rng.randint(1, self.MAX_SEQUENCE_STEP)
        book.volume_24h += size
        book.volume_30d += size
        if price > book.high_24h:
            book.high_24h = price
        elif price < book.low_24h:
            book.low_24h = price
        trade = Trade(
            product_id=spec.product_id,
            trade_id=book.trade_id,
            sequence=book.sequence,
            time=self._clock.format(at_us),
            price=price,
            size=size,
            taker_side=taker,
            maker_order_id=_order_id(rng.getrandbits(128)),
            taker_order_id=_order_id(rng.getrandbits(128)),
        )
        stats = SessionStats(
            book.open_24h,
            book.high_24h,
            book.low_24h,
            book.volume_30d,
            best_bid_size,
            best_ask_size,
        )
        return TradeEvent(at_us, trade, Quote(best_bid, best_ask, book.volume_24h), stats)

    @staticmethod
    def _size(rng: random.Random, median_units: float, increment: Decimal) -> Decimal:
        """A log-normal size, in whole increments (at least one)."""
        units = int(median_units * math.exp(rng.gauss(0.0, 1.1)))
        return Decimal(units if units > 0 else 1) * increment


def _gap_us(rng: random.Random, rate: float) -> int:
    return max(1, int(rng.expovariate(rate) * 1_000_000))


def _order_id(bits: int) -> str:
    """A version-4 UUID string from 128 random bits (what `uuid.UUID(int=, version=4)` gives)."""
    bits = (bits & ~(0xF000 << 64)) | (0x4000 << 64)
    bits = (bits & ~(0xC000 << 48)) | (0x8000 << 48)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
