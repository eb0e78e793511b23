"""The prices the bot trades at, read from the raw topic.

Wall clock (default): the latest checked ticker of a product is its book; it moves the marks
and the broker's book at once, and its exchange time is the price's age for risk. Event clock
(`trading.clock=event`, for replays): the book history of `trading.books`; a signal waits
until its product's event time reaches the candle's end and is priced at the book as of that
end; the marks and the broker's book move at signals only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from decimal import Decimal

from cryptopipeline.bot._broker import Broker
from cryptopipeline.bot._inputs import BadInput, Tick, decode_tick
from cryptopipeline.coinbase import epoch_us, format_time
from cryptopipeline.market import Heartbeat
from cryptopipeline.records import TradeSignal
from cryptopipeline.trading import Portfolio
from cryptopipeline.trading.books import BookAt, BookHistory


@dataclass(frozen=True, slots=True)
class Quote:
    """The book a signal is priced at, `(bid, ask)` or None, and the time of the tick it
    came from (seconds since the epoch); `at_close`: the event clock's book at the close."""

    product_id: str
    book: tuple[Decimal, Decimal] | None
    tick_at: float | None
    at_close: BookAt | None = None


class MarketView:
    """Books, tick times and marks per product, on the wall clock or the event clock."""

    def __init__(
        self,
        products: Collection[str],
        *,
        event_clock: bool,
        portfolio: Portfolio,
        broker: Broker,
        on_bad: Callable[[BadInput, str], None],
        wait_s: float,
    ) -> None:
        self.event_clock = event_clock
        self.books: dict[str, tuple[Decimal, Decimal]] = {}
        self.last_tick_at: dict[str, float] = {}
        self.history = BookHistory()
        self.event_now = 0.0
        """Event clock: the close of the latest signal priced (seconds), the bot's "now"."""
        self._products = products
        self._portfolio = portfolio
        self._broker = broker
        self._on_bad = on_bad
        self._wait_s = wait_s
        self._moved = asyncio.Event()

    def on_tick(self, raw: bytes, where: str = "") -> None:
        """One raw-topic record: a checked ticker moves the book and the marks; anything
        else that claims to be a ticker is bad input (counted, logged once, skipped)."""
        try:  # the one parser, on either clock
            tick = decode_tick(raw, self._products, heartbeats=self.event_clock)
        except BadInput as exc:
            self._on_bad(exc, where)
            return
        if self.event_clock:
            self._on_event_time_tick(tick)
            return
        if not isinstance(tick, Tick):
            return
        product = tick.product_id
        self.books[product] = (tick.bid, tick.ask)
        self.last_tick_at[product] = max(tick.at, self.last_tick_at.get(product, 0.0))
        self._portfolio.mark(product, (tick.bid + tick.ask) / 2)
        self._broker.on_tick(product, tick.bid, tick.ask, tick.time)

    def _on_event_time_tick(self, event: Tick | Heartbeat | None) -> None:
        if isinstance(event, Tick):
            self.history.on_tick(event.product_id, event.time_us, event.bid, event.ask)
        elif isinstance(event, Heartbeat):
            self.history.on_heartbeat(event.product_id, event.time_us)
        else:
            return
        self._moved.set()

    async def quote(self, signal: TradeSignal) -> Quote:
        """The book to price `signal` at. Event clock: wait (at most the stale-price limit)
        until the product's event time reaches the candle's end, make that end "now", and
        mark the product at the book as of it; no book if the feed never gets there."""
        product = signal.product_id
        if not self.event_clock:
            return Quote(product, self.books.get(product), self.last_tick_at.get(product))
        end_us = epoch_us(signal.window.end)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._wait_s):
                while (self.history.watermark_us(product) or -1) < end_us:
                    self._moved.clear()
                    await self._moved.wait()
        self.event_now = end_us / 1_000_000
        at_close = self.history.as_of(product, end_us)
        if at_close is None:
            return Quote(product, None, None)
        self._portfolio.mark(product, at_close.mid)
        return Quote(product, (at_close.bid, at_close.ask), at_close.time_us / 1e6, at_close)

    def before_submit(self, quote: Quote) -> None:
        """Event clock: the broker sees the book at the close just before the order."""
        close = quote.at_close
        if close is not None:
            self._broker.on_tick(quote.product_id, close.bid, close.ask,
                                 format_time(close.time_us))  # fmt: skip
