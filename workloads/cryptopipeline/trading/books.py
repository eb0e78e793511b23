"""The market as event time saw it: each product's book tops and its event-time watermark.

The event clock's pricing rule, shared by the bot (`trading.clock=event`) and the backtest: a
signal on a candle `[start, end)` is priced at the book of the last tick received for its
product whose time is before `end` (the book at the candle's close), and decided at `end`.
The answer is final once the product's watermark (latest tick or heartbeat time) reached `end`:
ticks older than the watermark are not books, so what a reader sees does not depend on how far
past `end` it has read.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class BookAt:
    """A book top (bid, ask) and the exchange time it was seen at (epoch microseconds)."""

    time_us: int
    bid: Decimal
    ask: Decimal

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


class BookHistory:
    """Book tops per product, kept for `horizon_s` of event time behind the watermark."""

    __slots__ = ("_books", "_horizon_us", "_watermarks")

    def __init__(self, horizon_s: float = 3600.0) -> None:
        if horizon_s <= 0:
            raise ValueError(f"horizon_s must be > 0, got {horizon_s}")
        self._horizon_us = round(horizon_s * 1_000_000)
        self._books: dict[str, deque[tuple[int, Decimal, Decimal]]] = {}
        """(time_us, bid, ask) per tick: plain tuples, the hot path of a backtest."""
        self._watermarks: dict[str, int] = {}

    def on_tick(self, product_id: str, time_us: int, bid: Decimal, ask: Decimal) -> None:
        """A tick's book top; one older than the watermark is not a book (a late tick
        must not change a price already final for a candle that closed)."""
        watermark = self._watermarks.get(product_id)
        if watermark is not None and time_us < watermark:
            return
        books = self._books.get(product_id)
        if books is None:
            books = self._books[product_id] = deque()
        books.append((time_us, bid, ask))
        self._watermarks[product_id] = time_us
        floor = time_us - self._horizon_us
        while len(books) > 1 and books[1][0] < floor:
            books.popleft()

    def on_heartbeat(self, product_id: str, time_us: int) -> None:
        self._advance(product_id, time_us)

    def _advance(self, product_id: str, time_us: int) -> int:
        watermark = self._watermarks.get(product_id)
        if watermark is None or time_us > watermark:
            self._watermarks[product_id] = watermark = time_us
        return watermark

    def watermark_us(self, product_id: str) -> int | None:
        """The product's latest tick or heartbeat time (None before any)."""
        return self._watermarks.get(product_id)

    def latest(self, product_id: str) -> BookAt | None:
        books = self._books.get(product_id)
        return BookAt(*books[-1]) if books else None

    def as_of(self, product_id: str, end_us: int) -> BookAt | None:
        """The book of the last tick received for the product with a time before `end_us`."""
        books = self._books.get(product_id)
        if not books:
            return None
        for book in reversed(books):
            if book[0] < end_us:
                return BookAt(*book)
        return None
