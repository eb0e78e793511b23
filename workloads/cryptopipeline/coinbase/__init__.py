"""Coinbase's wire protocols, no I/O: Exchange's time format, feed messages and REST objects,
and Advanced Trade's market data (`_advanced_market`).

Builders return dicts in Coinbase's key order with Coinbase's JSON types; parsers read them back.
"""

from cryptopipeline.coinbase._decimal import format_price, format_size, format_volume
from cryptopipeline.coinbase._messages import (
    CHANNELS,
    ErrorMessage,
    HeartbeatMessage,
    MatchMessage,
    SubscriptionChannel,
    SubscriptionsMessage,
    TickerMessage,
    error_message,
    heartbeat_message,
    match_message,
    subscriptions_message,
    ticker_message,
)
from cryptopipeline.coinbase._requests import FeedRequest, FeedRequestError, parse_feed_request
from cryptopipeline.coinbase._rest import (
    DEFAULT_TRADES_LIMIT,
    MAX_TRADES_LIMIT,
    ProductObject,
    RestTicker,
    RestTrade,
    product_object,
    rest_ticker,
    rest_trade,
)
from cryptopipeline.coinbase._side import Side, opposite_side
from cryptopipeline.coinbase._time import TIME_PATTERN, format_time, parse_time

__all__ = [
    "CHANNELS",
    "DEFAULT_TRADES_LIMIT",
    "MAX_TRADES_LIMIT",
    "TIME_PATTERN",
    "ErrorMessage",
    "FeedRequest",
    "FeedRequestError",
    "HeartbeatMessage",
    "MatchMessage",
    "ProductObject",
    "RestTicker",
    "RestTrade",
    "Side",
    "SubscriptionChannel",
    "SubscriptionsMessage",
    "TickerMessage",
    "error_message",
    "format_price",
    "format_size",
    "format_time",
    "format_volume",
    "heartbeat_message",
    "match_message",
    "opposite_side",
    "parse_feed_request",
    "parse_time",
    "product_object",
    "rest_ticker",
    "rest_trade",
    "subscriptions_message",
    "ticker_message",
]
