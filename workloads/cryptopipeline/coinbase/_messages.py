"""Builders of the Exchange WebSocket feed messages, in Coinbase's key order and JSON types.

Key orders follow frames recorded from `ws-feed` (ticker, match, last_match, subscriptions)
and the documented examples (heartbeat, error). Prices, sizes and volumes are strings;
`sequence`, `trade_id` and `last_trade_id` are integers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Literal, NotRequired, TypedDict

from cryptopipeline.coinbase._decimal import format_price, format_size, format_volume
from cryptopipeline.coinbase._side import Side
from cryptopipeline.coinbase._time import format_time

CHANNELS: tuple[str, ...] = ("heartbeat", "ticker", "matches")
"""The public channels this project speaks (level2 and full are out of scope)."""


class TickerMessage(TypedDict):
    type: Literal["ticker"]
    sequence: int
    product_id: str
    price: str
    open_24h: str
    volume_24h: str
    low_24h: str
    high_24h: str
    volume_30d: str
    best_bid: str
    best_bid_size: str
    best_ask: str
    best_ask_size: str
    side: Side
    time: str
    trade_id: int
    last_size: str


class MatchMessage(TypedDict):
    type: Literal["match", "last_match"]
    trade_id: int
    maker_order_id: str
    taker_order_id: str
    side: Side
    size: str
    price: str
    product_id: str
    sequence: int
    time: str


class HeartbeatMessage(TypedDict):
    type: Literal["heartbeat"]
    sequence: int
    last_trade_id: int
    product_id: str
    time: str


class SubscriptionChannel(TypedDict):
    name: str
    product_ids: list[str]


class SubscriptionsMessage(TypedDict):
    type: Literal["subscriptions"]
    channels: list[SubscriptionChannel]


class ErrorMessage(TypedDict):
    type: Literal["error"]
    message: str
    reason: NotRequired[str]


def _time(moment: datetime | int | str) -> str:
    return moment if isinstance(moment, str) else format_time(moment)


def ticker_message(
    *,
    sequence: int,
    product_id: str,
    price: Decimal,
    open_24h: Decimal,
    volume_24h: Decimal,
    low_24h: Decimal,
    high_24h: Decimal,
    volume_30d: Decimal,
    best_bid: Decimal,
    best_bid_size: Decimal,
    best_ask: Decimal,
    best_ask_size: Decimal,
    taker_side: Side,
    time: datetime | int | str,
    trade_id: int,
    last_size: Decimal,
) -> TickerMessage:
    """One `ticker` message: the trade just made and the book top right after it.

    `side` is the taker's side (a buy lifts the ask).
    """
    return {
        "type": "ticker",
        "sequence": sequence,
        "product_id": product_id,
        "price": format_price(price),
        "open_24h": format_price(open_24h),
        "volume_24h": format_volume(volume_24h),
        "low_24h": format_price(low_24h),
        "high_24h": format_price(high_24h),
        "volume_30d": format_volume(volume_30d),
        "best_bid": format_price(best_bid),
        "best_bid_size": format_size(best_bid_size),
        "best_ask": format_price(best_ask),
        "best_ask_size": format_size(best_ask_size),
        "side": taker_side,
        "time": _time(time),
        "trade_id": trade_id,
        "last_size": format_size(last_size),
    }


def match_message(
    *,
    trade_id: int,
    maker_order_id: str,
    taker_order_id: str,
    maker_side: Side,
    size: Decimal,
    price: Decimal,
    product_id: str,
    sequence: int,
    time: datetime | int | str,
    last: bool = False,
) -> MatchMessage:
    """A `match` (or, with `last=True`, the `last_match` sent on subscribe); side = maker's."""
    return {
        "type": "last_match" if last else "match",
        "trade_id": trade_id,
        "maker_order_id": maker_order_id,
        "taker_order_id": taker_order_id,
        "side": maker_side,
        "size": format_size(size),
        "price": format_price(price),
        "product_id": product_id,
        "sequence": sequence,
        "time": _time(time),
    }


def heartbeat_message(
    *, sequence: int, last_trade_id: int, product_id: str, time: datetime | int | str
) -> HeartbeatMessage:
    """The once-a-second `heartbeat` of one product."""
    return {
        "type": "heartbeat",
        "sequence": sequence,
        "last_trade_id": last_trade_id,
        "product_id": product_id,
        "time": _time(time),
    }


def subscriptions_message(channels: Mapping[str, Iterable[str]]) -> SubscriptionsMessage:
    """The reply to subscribe/unsubscribe: every channel still subscribed, with its products."""
    return {
        "type": "subscriptions",
        "channels": [
            {"name": name, "product_ids": list(product_ids)}
            for name, product_ids in channels.items()
        ],
    }


def error_message(message: str, reason: str | None = None) -> ErrorMessage:
    """An `error` message; `reason` carries the detail when there is one."""
    if reason is None:
        return {"type": "error", "message": message}
    return {"type": "error", "message": message, "reason": reason}
