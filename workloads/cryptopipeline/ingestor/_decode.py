"""Classify one WebSocket frame without ever raising: a trade, a heartbeat, a control
message, or a rejection with its reason (the frame is kept, byte for byte, for the DLQ).

The feed's format is checked by `cryptopipeline.coinbase` (ids, time, decimals, side), the
same rules every reader applies; the edge adds its own: a subscribed product, an event time
not before 2010 and within the window around the local clock."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from cryptopipeline.coinbase import MAX_ID as MAX_ID  # the ingestor's bound too
from cryptopipeline.coinbase import (
    FieldError,
    check_heartbeat,
    check_match,
    check_ticker,
    read_id,
    read_time,
)

EARLIEST_EVENT_US = 1_262_304_000_000_000
"""2010-01-01T00:00:00Z: no crypto exchange trade is older. Earlier times (Coinbase's own docs
show `0001-01-01T00:00:00.000000Z` as a placeholder) are refused; before 1970 Kafka itself
would refuse the record's timestamp."""


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


def _event_time(body: dict[str, Any], now_us: int | None, window: TimeWindow | None) -> int:
    """The feed's time (`coinbase.read_time`), then the edge's rules: not before 2010, and
    within `window` of the local clock when there is one."""
    micros = read_time(body)
    if micros < EARLIEST_EVENT_US:
        raise _BadTime(f"time {str(body.get('time'))!r} is before 2010")
    if window is not None and now_us is not None:
        window.check(micros, now_us)
    return micros


def check_trade(
    body: dict[str, Any], family: Family, now_us: int | None, window: TimeWindow | None
) -> int:
    """Check a feed-shaped trade built from elsewhere (a REST trade) by the feed's rules;
    return its event time in microseconds. Raises ValueError naming the bad field."""
    read_id(body, "trade_id")
    micros = _event_time(body, now_us, window)
    (check_ticker if family is Family.TICKER else check_match)(body)
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
            trade_id = read_id(body, "trade_id")
            micros = read_time(body)  # _event_time() inlined: the hot path
            if micros < EARLIEST_EVENT_US:
                raise _BadTime(f"time {str(body.get('time'))!r} is before 2010")
            if window is not None and now_us is not None:
                window.check(micros, now_us)
            (check_ticker if family is Family.TICKER else check_match)(body)
            return TradeFrame(product, family, trade_id, micros // 1000, raw)
        if kind == "heartbeat":
            product = _product(body, products)
            last = read_id(body, "last_trade_id")
            micros = _event_time(body, now_us, window)
            check_heartbeat(body)
            return HeartbeatFrame(product, last, micros, raw)
        if kind in _CONTROL_TYPES:
            return ControlFrame(kind, body)
    except (FieldError, _BadTime) as exc:
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
        raise FieldError("product_id", f"product_id {product!r} is not a string")
    if product not in products:
        raise _Unsubscribed(f"product {product[:40]!r} is not subscribed")
    return product
