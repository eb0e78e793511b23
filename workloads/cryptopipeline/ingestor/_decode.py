"""Classify one WebSocket frame without ever raising: a trade, a heartbeat, a control
message, or a rejection with its reason (the frame is kept, byte for byte, for the DLQ)."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

EARLIEST_EVENT_US = 1_262_304_000_000_000
"""2010-01-01T00:00:00Z: no crypto exchange trade is older. Earlier times (Coinbase's own docs
show `0001-01-01T00:00:00.000000Z` as a placeholder) are refused; before 1970 Kafka itself
would refuse the record's timestamp."""

MAX_ID = (1 << 63) - 1
"""Trade ids and sequences must fit a signed 64-bit integer (Kafka, ksqlDB BIGINT, Java)."""


class Reject(StrEnum):
    """Why a frame went to the dead-letter topic (the `reason` header)."""

    OVERSIZED = "oversized"
    BINARY = "binary"
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_TYPE = "unknown_type"
    UNSUBSCRIBED_PRODUCT = "unsubscribed_product"
    INVALID_FIELD = "invalid_field"
    EVENT_TIME = "event_time"
    """The event time is before 2010 or further ahead of the local clock than allowed."""
    IMPLAUSIBLE_TRADE_ID = "implausible_trade_id"
    """A trade id (or heartbeat `last_trade_id`) far ahead of the truth, not confirmed by REST."""
    KAFKA_REFUSED = "kafka_refused"
    """Kafka refused the record itself (timestamp, size): it lands here instead of the topic."""


class Family(StrEnum):
    """Trades are sequenced per product and family: `ticker`, or `match` (+ `last_match`)."""

    TICKER = "ticker"
    MATCH = "match"


@dataclass(slots=True, frozen=True)
class TradeFrame:
    product_id: str
    family: Family
    trade_id: int
    time_ms: int
    raw: bytes


@dataclass(slots=True, frozen=True)
class HeartbeatFrame:
    product_id: str
    last_trade_id: int
    time_us: int
    raw: bytes


@dataclass(slots=True, frozen=True)
class ControlFrame:
    """`subscriptions` and `error` replies: logged and reflected in readiness, not published."""

    type: str
    body: dict[str, Any]


@dataclass(slots=True, frozen=True)
class RejectedFrame:
    reason: Reject
    detail: str
    raw: bytes
    product: str = ""
    """The subscribed product the frame named, if any (a metric label: never a stranger's)."""


FeedFrame = TradeFrame | HeartbeatFrame | ControlFrame | RejectedFrame

_TRADE_TYPES = {"ticker": Family.TICKER, "match": Family.MATCH, "last_match": Family.MATCH}
_CONTROL_TYPES = frozenset({"subscriptions", "error"})


class _Invalid(ValueError):
    pass


class _BadTime(ValueError):
    pass


@dataclass(slots=True, frozen=True)
class TimeWindow:
    """Event times the edge accepts, relative to the local clock at receipt.

    `max_future_us` keeps records inside what Kafka accepts (`message.timestamp.after.max.ms`,
    one hour by default) with room to spare; `max_age_us` (None: any age) is off by default
    because replays carry recorded, old times.
    """

    max_future_us: int
    max_age_us: int | None = None

    def check(self, micros: int, now_us: int) -> None:
        if micros > now_us + self.max_future_us:
            raise _BadTime(
                f"time is {(micros - now_us) / 1e6:.0f} s ahead of the local clock "
                f"(allowed {self.max_future_us / 1e6:.0f} s)"
            )
        if self.max_age_us is not None and micros < now_us - self.max_age_us:
            raise _BadTime(
                f"time is {(now_us - micros) / 1e6:.0f} s behind the local clock "
                f"(allowed {self.max_age_us / 1e6:.0f} s)"
            )


_LAST_SECOND: list[Any] = ["", 0]
"""The last whole second parsed ("2026-01-01T00:00:00", its epoch microseconds): a feed's
times share their second with the frame before, so most frames skip the datetime parse."""


def epoch_micros(text: object) -> int:
    """Microseconds since the epoch of a Coinbase RFC 3339 time; `_Invalid` if it is not one."""
    if type(text) is str and len(text) == 27 and text[19] == "." and text[26] == "Z":
        fraction = text[20:26]  # Coinbase's own form: six fractional digits
        if fraction.isascii() and fraction.isdigit():
            second = text[:19]
            cache = _LAST_SECOND
            if second != cache[0]:
                cache[1] = _parse_micros(second + "Z")
                cache[0] = second
            return int(cache[1]) + int(fraction)
    return _parse_micros(text)


def _parse_micros(text: object) -> int:
    if not isinstance(text, str) or not text.endswith(("Z", "z")) or len(text) > 40:
        raise _Invalid(f"time {text!r} is not an RFC 3339 UTC timestamp")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _Invalid(f"time {text!r} is not an RFC 3339 UTC timestamp") from None
    if moment.tzinfo is None:
        raise _Invalid(f"time {text!r} has no time zone")
    delta = moment - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if micros < EARLIEST_EVENT_US:
        raise _BadTime(f"time {text!r} is before 2010")
    return micros


def _trade_id(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if type(value) is not int or not 0 <= value <= MAX_ID:
        raise _Invalid(f"{key} {str(value)[:40]!r} is not an integer in [0, 2**63)")
    return value


_PLAIN_DECIMAL = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20})?")
"""How Coinbase writes every price, size and volume: digits, an optional fraction, no sign, no
exponent. Anything else (NaN, sNaN, Infinity, 1E+999, -1, 20+ integer digits) is refused:
downstream Decimal arithmetic on such a value raises or overflows."""

_TICKER_DECIMALS = (
    "open_24h", "volume_24h", "low_24h", "high_24h", "volume_30d",
    "best_bid", "best_bid_size", "best_ask", "best_ask_size",
)  # fmt: skip
"""Optional ticker fields (a REST backfill or the Advanced Trade mapping lacks them); checked
when present."""

_SIDES = frozenset({"buy", "sell"})

_ALL_TICKER_DECIMALS = operator.itemgetter("price", "last_size", *_TICKER_DECIMALS)
_JOINED_DECIMALS = re.compile(
    r"(?:\d{1,20}+(?:\.\d{1,20}+)?+\|){"
    + str(len(_TICKER_DECIMALS) + 1)
    + r"}\d{1,20}+(?:\.\d{1,20}+)?+",
    re.ASCII,  # \d is [0-9]; possessive quantifiers never backtrack: ~0.6 us a ticker
)


def _complete_ticker_is_valid(body: dict[str, Any]) -> bool:
    """The hot path: a complete, valid feed ticker passes with one C-level regex match over
    all its decimals. False means "check field by field" (to find which one, or because an
    optional field is absent), never "invalid"."""
    try:
        values = _ALL_TICKER_DECIMALS(body)
        if _JOINED_DECIMALS.fullmatch("|".join(values)) is None:
            return False
    except (KeyError, TypeError):
        return False
    sequence = body.get("sequence")
    return (
        type(sequence) is int
        and 0 <= sequence <= MAX_ID
        and (side := body.get("side")).__class__ is str
        and side in _SIDES
        and values[0].strip("0.") != ""  # price and size: positive
        and values[1].strip("0.") != ""
    )


def _decimal_string(body: dict[str, Any], key: str, *, positive: bool) -> None:
    value = body.get(key)
    if type(value) is not str or _PLAIN_DECIMAL.fullmatch(value) is None:
        raise _Invalid(f"{key} {str(value)[:40]!r} is not a plain decimal string")
    if positive and not value.replace(".", "").strip("0"):  # "0", "0.000": zeros only
        raise _Invalid(f"{key} {value!r} is not positive")


def _optional_fields(body: dict[str, Any], decimals: tuple[str, ...]) -> None:
    for key in decimals:
        if key in body:
            _decimal_string(body, key, positive=False)
    if "sequence" in body:
        _trade_id(body, "sequence")
    side = body.get("side")
    if side is not None and (type(side) is not str or side not in _SIDES):
        raise _Invalid(f"side {str(side)[:40]!r} is not buy or sell")


def check_trade(
    body: dict[str, Any], family: Family, now_us: int | None, window: TimeWindow | None
) -> int:
    """Check a feed-shaped trade built from elsewhere (a REST trade) by the feed's rules;
    return its event time in microseconds. Raises ValueError naming the bad field."""
    _trade_id(body, "trade_id")
    micros = epoch_micros(body.get("time"))
    if window is not None and now_us is not None:
        window.check(micros, now_us)
    _decimal_string(body, "price", positive=True)
    _decimal_string(body, "last_size" if family is Family.TICKER else "size", positive=True)
    _optional_fields(body, ())
    return micros


def decode(
    frame: str | bytes,
    products: frozenset[str],
    max_bytes: int,
    now_us: int | None = None,
    window: TimeWindow | None = None,
) -> FeedFrame:
    """Decode one frame from the feed. Never raises; bad input becomes a `RejectedFrame`.

    With `now_us` and `window`, event times are also checked against the local clock.
    """
    if isinstance(frame, str):
        raw = frame.encode("utf-8", "surrogatepass")
    else:
        raw = bytes(frame)
        if len(raw) <= max_bytes:  # Coinbase sends text frames only
            return RejectedFrame(Reject.BINARY, "binary frame", raw)
    if len(raw) > max_bytes:
        return RejectedFrame(Reject.OVERSIZED, f"{len(raw)} bytes > limit {max_bytes}", raw)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return RejectedFrame(Reject.MALFORMED_JSON, str(exc)[:200], raw)
    if not isinstance(body, dict):
        return RejectedFrame(Reject.NOT_AN_OBJECT, f"JSON {type(body).__name__}", raw)
    kind = body.get("type")
    if not isinstance(kind, str):
        return RejectedFrame(Reject.UNKNOWN_TYPE, f"type {str(kind)[:60]!r}", raw)
    try:
        family = _TRADE_TYPES.get(kind)
        if family is not None:
            product = _product(body, products)
            trade_id = _trade_id(body, "trade_id")
            micros = epoch_micros(body.get("time"))
            if window is not None and now_us is not None:
                window.check(micros, now_us)
            if family is Family.TICKER:
                if not _complete_ticker_is_valid(body):
                    _decimal_string(body, "price", positive=True)
                    _decimal_string(body, "last_size", positive=True)
                    _optional_fields(body, _TICKER_DECIMALS)
            else:
                _decimal_string(body, "price", positive=True)
                _decimal_string(body, "size", positive=True)
                _optional_fields(body, ())
            return TradeFrame(product, family, trade_id, micros // 1000, raw)
        if kind == "heartbeat":
            product = _product(body, products)
            last = _trade_id(body, "last_trade_id")
            micros = epoch_micros(body.get("time"))
            if window is not None and now_us is not None:
                window.check(micros, now_us)
            if "sequence" in body:
                _trade_id(body, "sequence")
            return HeartbeatFrame(product, last, micros, raw)
        if kind in _CONTROL_TYPES:
            return ControlFrame(kind, body)
    except (_Invalid, _BadTime) as exc:
        named = body.get("product_id")
        product = named if isinstance(named, str) and named in products else ""
        reason = Reject.EVENT_TIME if isinstance(exc, _BadTime) else Reject.INVALID_FIELD
        return RejectedFrame(reason, f"{kind}: {exc}", raw, product)
    except _Unsubscribed as exc:
        return RejectedFrame(Reject.UNSUBSCRIBED_PRODUCT, str(exc), raw)
    return RejectedFrame(Reject.UNKNOWN_TYPE, f"type {str(kind)[:60]!r}", raw)


class _Unsubscribed(Exception):
    pass


def _product(body: dict[str, Any], products: frozenset[str]) -> str:
    product = body.get("product_id")
    if not isinstance(product, str):
        raise _Invalid(f"product_id {product!r} is not a string")
    if product not in products:
        raise _Unsubscribed(f"product {product[:40]!r} is not subscribed")
    return product
