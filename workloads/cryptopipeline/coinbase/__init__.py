"""Coinbase wire protocol, no I/O: time format, the Exchange feed's messages (built, and read
back by one set of rules), REST objects, and Advanced Trade orders with their JWT claims.

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
from cryptopipeline.coinbase._parse import (
    MAX_ID,
    TRADE_DECIMALS,
    FieldError,
    check_heartbeat,
    check_match,
    check_ticker,
    read_id,
    read_product,
    read_time,
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
from cryptopipeline.coinbase._time import TIME_PATTERN, epoch_us, format_time, parse_time

__all__ = [
    "CHANNELS",
    "DEFAULT_TRADES_LIMIT",
    "MAX_ID",
    "MAX_TRADES_LIMIT",
    "TIME_PATTERN",
    "TRADE_DECIMALS",
    "ErrorMessage",
    "FeedRequest",
    "FeedRequestError",
    "FieldError",
    "HeartbeatMessage",
    "MatchMessage",
    "ProductObject",
    "RestTicker",
    "RestTrade",
    "Side",
    "SubscriptionChannel",
    "SubscriptionsMessage",
    "TickerMessage",
    "check_heartbeat",
    "check_match",
    "check_ticker",
    "epoch_us",
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
    "read_id",
    "read_product",
    "read_time",
    "rest_ticker",
    "rest_trade",
    "subscriptions_message",
    "ticker_message",
]
