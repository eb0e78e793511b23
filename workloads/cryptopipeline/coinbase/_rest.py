"""Objects of the Exchange REST API that this project calls: products, trades and ticker.

`GET /products/{id}/trades` is cursor-paginated by trade id, newest first; `before` asks for
newer trades, `after` for older ones, and the `CB-BEFORE` / `CB-AFTER` response headers carry
the cursors (the newest and the oldest trade id of the page). The REST `side` is the maker's.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TypedDict

from cryptopipeline.coinbase._decimal import format_price, format_size, format_volume
from cryptopipeline.coinbase._side import Side
from cryptopipeline.coinbase._time import format_time

DEFAULT_TRADES_LIMIT = 1000
"""Documented default of `limit` on paginated endpoints."""
MAX_TRADES_LIMIT = 1000
"""Documented maximum of `limit`."""


class RestTrade(TypedDict):
    time: str
    trade_id: int
    price: str
    size: str
    side: Side


class RestTicker(TypedDict):
    ask: str
    bid: str
    volume: str
    trade_id: int
    price: str
    size: str
    time: str


class ProductObject(TypedDict):
    id: str
    base_currency: str
    quote_currency: str
    quote_increment: str
    base_increment: str
    display_name: str
    min_market_funds: str
    margin_enabled: bool
    post_only: bool
    limit_only: bool
    cancel_only: bool
    status: str
    status_message: str
    trading_disabled: bool
    fx_stablecoin: bool
    auction_mode: bool


def _time(moment: datetime | int | str) -> str:
    return moment if isinstance(moment, str) else format_time(moment)


def rest_trade(
    *, time: datetime | int | str, trade_id: int, price: Decimal, size: Decimal, maker_side: Side
) -> RestTrade:
    """One element of `GET /products/{id}/trades`."""
    return {
        "time": _time(time),
        "trade_id": trade_id,
        "price": format_price(price),
        "size": format_size(size),
        "side": maker_side,
    }


def rest_ticker(
    *,
    ask: Decimal,
    bid: Decimal,
    volume: Decimal,
    trade_id: int,
    price: Decimal,
    size: Decimal,
    time: datetime | int | str,
) -> RestTicker:
    """`GET /products/{id}/ticker`: the last trade, the book top and the 24h volume."""
    return {
        "ask": format_price(ask),
        "bid": format_price(bid),
        "volume": format_volume(volume),
        "trade_id": trade_id,
        "price": format_price(price),
        "size": format_size(size),
        "time": _time(time),
    }


def product_object(
    *, product_id: str, quote_increment: Decimal, base_increment: Decimal
) -> ProductObject:
    """One element of `GET /products`."""
    base, _, quote = product_id.partition("-")
    return {
        "id": product_id,
        "base_currency": base,
        "quote_currency": quote,
        "quote_increment": format(quote_increment, "f"),
        "base_increment": format(base_increment, "f"),
        "display_name": f"{base}/{quote}",
        "min_market_funds": "1",
        "margin_enabled": False,
        "post_only": False,
        "limit_only": False,
        "cancel_only": False,
        "status": "online",
        "status_message": "",
        "trading_disabled": False,
        "fx_stablecoin": False,
        "auction_mode": False,
    }
