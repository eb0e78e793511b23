"""What a market emits: trades, book tops, and the feed messages they become.

Messages are rendered lazily, per channel, only when someone subscribed to that channel and
product: the hot path never builds a dict nobody reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from cryptopipeline.coinbase import (
    Side,
    format_price,
    format_size,
    heartbeat_message,
    match_message,
    opposite_side,
    ticker_message,
)


@dataclass(frozen=True, slots=True)
class Trade:
    """One published trade. `taker_side` is ticker.side; the maker's side is the opposite."""

    product_id: str
    trade_id: int
    sequence: int
    time: str
    price: Decimal
    size: Decimal
    taker_side: Side
    maker_order_id: str
    taker_order_id: str

    @property
    def maker_side(self) -> Side:
        return opposite_side(self.taker_side)

    def ground_truth(self) -> dict[str, object]:
        """The ground-truth record: one JSON line per trade, `side` is the maker's (as REST)."""
        return {
            "product_id": self.product_id,
            "trade_id": self.trade_id,
            "time": self.time,
            "price": format_price(self.price),
            "size": format_size(self.size),
            "side": self.maker_side,
            "taker_side": self.taker_side,
            "sequence": self.sequence,
        }


@dataclass(frozen=True, slots=True)
class Quote:
    """The book top and 24h volume right after a trade (what REST `/ticker` shows)."""

    best_bid: Decimal
    best_ask: Decimal
    volume_24h: Decimal


class MarketEvent:
    """One moment of one product: zero or one trade, and messages on some channels."""

    __slots__ = ("at_us", "channels", "product_id", "quote", "trade")

    def __init__(
        self,
        at_us: int,
        product_id: str,
        channels: tuple[str, ...],
        trade: Trade | None = None,
        quote: Quote | None = None,
    ) -> None:
        self.at_us = at_us
        self.product_id = product_id
        self.channels = channels
        self.trade = trade
        self.quote = quote

    def render(self, channel: str) -> dict[str, Any]:
        """The message this event publishes on `channel`, in Coinbase's key order."""
        raise NotImplementedError


class RecordedEvent(MarketEvent):
    """A message replayed as recorded."""

    __slots__ = ("message",)

    def __init__(
        self,
        at_us: int,
        product_id: str,
        channel: str,
        message: dict[str, Any],
        trade: Trade | None = None,
        quote: Quote | None = None,
    ) -> None:
        super().__init__(at_us, product_id, (channel,), trade, quote)
        self.message = message

    def render(self, channel: str) -> dict[str, Any]:
        return self.message


class HeartbeatEvent(MarketEvent):
    """A product's once-a-second heartbeat."""

    __slots__ = ("last_trade_id", "sequence", "time")

    def __init__(
        self, at_us: int, product_id: str, *, sequence: int, last_trade_id: int, time: str
    ) -> None:
        super().__init__(at_us, product_id, ("heartbeat",))
        self.sequence = sequence
        self.last_trade_id = last_trade_id
        self.time = time

    def render(self, channel: str) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            heartbeat_message(
                sequence=self.sequence,
                last_trade_id=self.last_trade_id,
                product_id=self.product_id,
                time=self.time,
            ),
        )


@dataclass(frozen=True, slots=True)
class SessionStats:
    """The ticker's 24h/30d statistics and book sizes right after a trade."""

    open_24h: Decimal
    high_24h: Decimal
    low_24h: Decimal
    volume_30d: Decimal
    best_bid_size: Decimal
    best_ask_size: Decimal


class TradeEvent(MarketEvent):
    """A synthetic trade: `ticker` (taker side) and `match` (maker side) share its sequence."""

    __slots__ = ("stats",)

    CHANNELS = ("ticker", "matches")

    def __init__(self, at_us: int, trade: Trade, quote: Quote, stats: SessionStats) -> None:
        super().__init__(at_us, trade.product_id, self.CHANNELS, trade, quote)
        self.stats = stats

    def render(self, channel: str) -> dict[str, Any]:
        trade = self.trade
        assert trade is not None and self.quote is not None
        if channel == "ticker":
            stats, quote = self.stats, self.quote
            return cast(
                dict[str, Any],
                ticker_message(
                    sequence=trade.sequence,
                    product_id=trade.product_id,
                    price=trade.price,
                    open_24h=stats.open_24h,
                    volume_24h=quote.volume_24h,
                    low_24h=stats.low_24h,
                    high_24h=stats.high_24h,
                    volume_30d=stats.volume_30d,
                    best_bid=quote.best_bid,
                    best_bid_size=stats.best_bid_size,
                    best_ask=quote.best_ask,
                    best_ask_size=stats.best_ask_size,
                    taker_side=trade.taker_side,
                    time=trade.time,
                    trade_id=trade.trade_id,
                    last_size=trade.size,
                ),
            )
        return cast(
            dict[str, Any],
            match_message(
                trade_id=trade.trade_id,
                maker_order_id=trade.maker_order_id,
                taker_order_id=trade.taker_order_id,
                maker_side=trade.maker_side,
                size=trade.size,
                price=trade.price,
                product_id=trade.product_id,
                sequence=trade.sequence,
                time=trade.time,
            ),
        )
