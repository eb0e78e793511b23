"""Coinbase Advanced Trade market data: the WebSocket envelope, its channels' events, the
subscribe requests and the public market-trades REST answer. Builders and parsers, no I/O.

Shapes follow Coinbase's Advanced Trade WebSocket documentation (channels page, overview,
authentication page) and frames recorded from `wss://advanced-trade-ws.coinbase.com` in
2026 (../shared/data/coinbase/COINBASE.advanced-trade.jsonl); where they differ, both are
accepted and the recorded form is written:

- every message is `{"channel", "client_id", "timestamp", "sequence_num", "events": [...]}`;
  the documented examples carry `"client_id": ""`, the recorded frames omit it;
  `timestamp` has nanoseconds (trailing zeros trimmed); `sequence_num` counts the messages
  of one connection, across all its channels, from 0.
- `market_trades` events are `{"type": "snapshot" | "update", "trades": [...]}`; a trade is
  `{"product_id", "trade_id", "price", "size", "time", "side"}`, every value a string,
  `side` upper case `BUY`/`SELL`, newest trade first. `side` is the **maker's** side: in the
  recording every trade at the best ask says `SELL` and every trade at the best bid `BUY`
  (65 of 65 trades at either touch), as the Exchange `match` side does. Trade times keep
  Coinbase's trimmed fractions (`21:05:38.50436Z`).
- `heartbeats` events are `{"current_time", "heartbeat_counter"}`; `current_time` is a Go
  `time.Time` string (`2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105`); the
  counter is a string in the documentation and a number on the wire.
- `subscriptions` events are `{"subscriptions": {"<channel>": ["<product>", ...]}}`.
- errors are `{"type": "error", "message": "..."}` (no envelope); Coinbase answers a
  subscribe it refuses for want of credentials with `"authentication failure"`.
- a subscribe names one channel: `{"type": "subscribe", "product_ids": [...], "channel":
  "...", "jwt": "..."}`; the JWT is optional for public channels.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, NotRequired, TypedDict

import orjson

from cryptopipeline.coinbase._decimal import format_price, format_size
from cryptopipeline.coinbase._parse import PLAIN_DECIMAL
from cryptopipeline.coinbase._side import Side
from cryptopipeline.coinbase._time import epoch_us

ADVANCED_PUBLIC_CHANNELS: tuple[str, ...] = (
    "heartbeats",
    "candles",
    "status",
    "ticker",
    "ticker_batch",
    "level2",
    "market_trades",
)
"""Market-data channels Coinbase serves without authentication (documented channel table)."""

ADVANCED_PRIVATE_CHANNELS: tuple[str, ...] = ("user", "futures_balance_summary")
"""Channels that need a JWT (documented: "Requires Authentication: Yes")."""

AUTHENTICATION_FAILURE = "authentication failure"
"""Coinbase's error text for a subscribe it refuses for missing or bad credentials."""

MARKET_TRADES_PATH = "/api/v3/brokerage/market/products/{product_id}/ticker"
"""Public "Get Market Trades": `limit` (required), `start`, `end` (UNIX seconds)."""

AdvancedSide = Literal["BUY", "SELL"]


class AdvancedTrade(TypedDict):
    product_id: str
    trade_id: str
    price: str
    size: str
    time: str
    side: AdvancedSide


class AdvancedError(TypedDict):
    type: Literal["error"]
    message: str


class RestMarketTrade(TypedDict):
    trade_id: str
    product_id: str
    price: str
    size: str
    time: str
    side: AdvancedSide
    exchange: NotRequired[str]


class RestMarketTrades(TypedDict):
    trades: list[RestMarketTrade]
    best_bid: str
    best_ask: str


# ---- builders --------------------------------------------------------------------------


def advanced_side(maker_side: Side) -> AdvancedSide:
    """The Advanced Trade `side` of a trade whose maker was on `maker_side`."""
    return "BUY" if maker_side == "buy" else "SELL"


def trim_time(text: str) -> str:
    """An RFC 3339 time as Advanced Trade writes trade times: the fraction's trailing zeros
    trimmed (`...48.500000Z` -> `...48.5Z`, `...48.000000Z` -> `...48Z`)."""
    if "." not in text or not text.endswith("Z"):
        return text
    head, _, fraction = text[:-1].partition(".")
    fraction = fraction.rstrip("0")
    return f"{head}.{fraction}Z" if fraction else f"{head}Z"


def market_trade(
    *,
    product_id: str,
    trade_id: int | str,
    price: Decimal,
    size: Decimal,
    time: str,
    maker_side: Side,
) -> AdvancedTrade:
    """One trade of a `market_trades` event, in the recorded key order."""
    return {
        "product_id": product_id,
        "trade_id": str(trade_id),
        "price": format_price(price),
        "size": format_size(size),
        "time": trim_time(time),
        "side": advanced_side(maker_side),
    }


def market_trades_event(
    kind: Literal["snapshot", "update"], trades: Sequence[AdvancedTrade]
) -> dict[str, Any]:
    """`{"type": kind, "trades": [...]}`; pass the trades newest first, as Coinbase does."""
    return {"type": kind, "trades": list(trades)}


def heartbeats_event(current_time: str, counter: int) -> dict[str, Any]:
    """One `heartbeats` event (the counter as a number, as the live feed sends it)."""
    return {"current_time": current_time, "heartbeat_counter": counter}


def subscriptions_event(subscriptions: Mapping[str, Iterable[str]]) -> dict[str, Any]:
    """The event of a `subscriptions` reply: every channel still subscribed, its products."""
    return {"subscriptions": {name: list(ids) for name, ids in subscriptions.items()}}


def envelope(
    channel: str,
    timestamp: str,
    sequence_num: int,
    events: Sequence[dict[str, Any]],
    client_id: str | None = "",
) -> dict[str, Any]:
    """A whole message. `client_id=None` leaves the key out, as the recorded frames do."""
    message: dict[str, Any] = {"channel": channel}
    if client_id is not None:
        message["client_id"] = client_id
    message["timestamp"] = timestamp
    message["sequence_num"] = sequence_num
    message["events"] = list(events)
    return message


def envelope_prefix(channel: str, timestamp: str, sequence_num: int, client_id: str = "") -> bytes:
    """The JSON of `envelope(...)` up to `"events":`; append the events' JSON and `}`.

    Lets a server encode the events once and frame them per connection (the sequence number
    is per connection)."""
    return (
        b'{"channel":'
        + orjson.dumps(channel)
        + b',"client_id":'
        + orjson.dumps(client_id)
        + b',"timestamp":'
        + orjson.dumps(timestamp)
        + b',"sequence_num":'
        + str(sequence_num).encode()
        + b',"events":'
    )


def error_message(message: str) -> AdvancedError:
    return {"type": "error", "message": message}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_timestamp_ns(ns: int) -> str:
    """An envelope `timestamp`: Go's RFC3339Nano in UTC, nanoseconds with trailing zeros
    trimmed (`...52.85643877Z` is recorded)."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    whole = (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    return trim_time(f"{whole}.{fraction:09d}Z")


def format_go_time(at_us: int, monotonic_s: float) -> str:
    """A heartbeat `current_time`: Go's `time.Time.String()` with its monotonic reading."""
    seconds, micros = divmod(at_us, 1_000_000)
    whole = (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")
    return f"{whole}.{micros:06d}000 +0000 UTC m=+{monotonic_s:.9f}"


def rest_market_trade(trade: AdvancedTrade) -> RestMarketTrade:
    """One element of the public market trades answer (the WebSocket trade's fields)."""
    return {
        "trade_id": trade["trade_id"],
        "product_id": trade["product_id"],
        "price": trade["price"],
        "size": trade["size"],
        "time": trade["time"],
        "side": trade["side"],
    }


# ---- parsers ---------------------------------------------------------------------------


class AdvancedShapeError(ValueError):
    """A message or request that does not have the documented shape; says which field."""


@dataclass(frozen=True, slots=True)
class AdvancedMessage:
    channel: str
    timestamp: str
    sequence_num: int
    events: list[dict[str, Any]]
    client_id: str | None


@dataclass(frozen=True, slots=True)
class MarketTrade:
    """A parsed `market_trades` trade; `maker_side` in the Exchange's lower case."""

    product_id: str
    trade_id: str
    price: Decimal
    size: Decimal
    time: str
    maker_side: Side


@dataclass(frozen=True, slots=True)
class Heartbeat:
    current_time: str
    counter: int


@dataclass(frozen=True, slots=True)
class AdvancedRequest:
    """A subscribe or unsubscribe: one channel, its products, the JWT if one was sent."""

    type: Literal["subscribe", "unsubscribe"]
    channel: str
    product_ids: list[str]
    jwt: str | None


def parse_message(body: Any) -> AdvancedMessage:
    """Check a decoded message's envelope; raise `AdvancedShapeError` naming the bad field."""
    if not isinstance(body, dict):
        raise AdvancedShapeError("message is not a JSON object")
    channel = body.get("channel")
    if not isinstance(channel, str):
        raise AdvancedShapeError(f"channel {str(channel)[:40]!r} is not a string")
    timestamp = body.get("timestamp")
    if not isinstance(timestamp, str):
        raise AdvancedShapeError(f"timestamp {str(timestamp)[:40]!r} is not a string")
    sequence = body.get("sequence_num")
    if type(sequence) is not int or sequence < 0:
        raise AdvancedShapeError(f"sequence_num {str(sequence)[:40]!r} is not an integer >= 0")
    events = body.get("events")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise AdvancedShapeError("events is not a list of objects")
    client_id = body.get("client_id")
    if client_id is not None and not isinstance(client_id, str):
        raise AdvancedShapeError("client_id is not a string")
    return AdvancedMessage(channel, timestamp, sequence, events, client_id)


_SIDES: dict[object, Side] = {"BUY": "buy", "SELL": "sell"}


def _decimal(trade: dict[str, Any], key: str) -> Decimal:
    value = trade.get(key)
    if type(value) is not str or PLAIN_DECIMAL.fullmatch(value) is None:
        raise AdvancedShapeError(f"{key} {str(value)[:40]!r} is not a plain decimal string")
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise AdvancedShapeError(f"{key} {value!r} is not a decimal") from None


def parse_market_trade(trade: Any) -> MarketTrade:
    """One element of a `market_trades` event's `trades`."""
    if not isinstance(trade, dict):
        raise AdvancedShapeError("trade is not a JSON object")
    for key in ("product_id", "trade_id", "time"):
        if type(trade.get(key)) is not str:
            raise AdvancedShapeError(f"{key} {str(trade.get(key))[:40]!r} is not a string")
    side = _SIDES.get(trade.get("side"))
    if side is None:
        raise AdvancedShapeError(f"side {str(trade.get('side'))[:40]!r} is not BUY or SELL")
    return MarketTrade(
        product_id=trade["product_id"],
        trade_id=trade["trade_id"],
        price=_decimal(trade, "price"),
        size=_decimal(trade, "size"),
        time=trade["time"],
        maker_side=side,
    )


def market_trades_of(event: dict[str, Any]) -> tuple[str, list[Any]]:
    """The `type` and raw `trades` of a `market_trades` event."""
    kind = event.get("type")
    if kind not in ("snapshot", "update"):
        raise AdvancedShapeError(f"event type {str(kind)[:40]!r} is not snapshot or update")
    trades = event.get("trades")
    if not isinstance(trades, list):
        raise AdvancedShapeError("trades is not a list")
    return kind, trades


def parse_heartbeat(event: dict[str, Any]) -> Heartbeat:
    """A `heartbeats` event; the counter may be a number or a digit string."""
    current = event.get("current_time")
    if not isinstance(current, str):
        raise AdvancedShapeError(f"current_time {str(current)[:40]!r} is not a string")
    counter = event.get("heartbeat_counter")
    if isinstance(counter, str) and counter.isascii() and counter.isdigit():
        counter = int(counter)
    if type(counter) is not int or counter < 0:
        raise AdvancedShapeError(f"heartbeat_counter {str(counter)[:40]!r} is not an integer")
    return Heartbeat(current, counter)


_GO_TIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(\.\d{1,9})? \+0000 UTC(?: m=[+-][0-9.]+)?$",
    re.ASCII,
)


def go_time_micros(text: str) -> int:
    """Microseconds since the epoch of a heartbeat's Go-formatted `current_time` (UTC)."""
    match = _GO_TIME.match(text)
    if match is None:
        raise AdvancedShapeError(f"current_time {text[:60]!r} is not a Go UTC time")
    day, clock, fraction = match.groups()
    try:  # the one conversion; a date like 2024-13-45 is refused here, never raised past
        return epoch_us(f"{day}T{clock}{fraction or ''}Z")
    except ValueError:
        raise AdvancedShapeError(f"current_time {text[:60]!r} is not a valid time") from None


def parse_request(raw: str | bytes) -> AdvancedRequest:
    """One client frame: a subscribe or unsubscribe naming one channel."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise AdvancedShapeError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise AdvancedShapeError("request is not a JSON object")
    kind = body.get("type")
    if kind not in ("subscribe", "unsubscribe"):
        raise AdvancedShapeError("type must be subscribe or unsubscribe")
    channel = body.get("channel")
    if not isinstance(channel, str) or not channel:
        raise AdvancedShapeError("channel must be one channel name")
    products = body.get("product_ids", [])
    if products is None:
        products = []
    if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
        raise AdvancedShapeError("product_ids must be a list of strings")
    jwt = body.get("jwt")
    if jwt is not None and not isinstance(jwt, str):
        raise AdvancedShapeError("jwt must be a string")
    return AdvancedRequest(kind, channel, list(dict.fromkeys(products)), jwt or None)


def subscribe_request(
    channel: str, product_ids: Sequence[str] = (), jwt: str | None = None
) -> dict[str, Any]:
    """A subscribe message for one channel (the JWT only when given)."""
    body: dict[str, Any] = {"type": "subscribe", "product_ids": list(product_ids)}
    body["channel"] = channel
    if jwt is not None:
        body["jwt"] = jwt
    return body
