"""Classify one WebSocket frame without ever raising: a trade, a heartbeat, a control
message, or a rejection with its reason (the frame is kept, byte for byte, for the DLQ)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import orjson

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Reject(StrEnum):
    """Why a frame went to the dead-letter topic (the `reason` header)."""

    OVERSIZED = "oversized"
    BINARY = "binary"
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_TYPE = "unknown_type"
    UNSUBSCRIBED_PRODUCT = "unsubscribed_product"
    INVALID_FIELD = "invalid_field"


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


def epoch_micros(text: object) -> int:
    """Microseconds since the epoch of a Coinbase RFC 3339 time; `_Invalid` if it is not one."""
    if not isinstance(text, str) or not text.endswith(("Z", "z")) or len(text) > 40:
        raise _Invalid(f"time {text!r} is not an RFC 3339 UTC timestamp")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _Invalid(f"time {text!r} is not an RFC 3339 UTC timestamp") from None
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _trade_id(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if type(value) is not int or value < 0:
        raise _Invalid(f"{key} {value!r} is not a non-negative integer")
    return value


def _decimal_string(body: dict[str, Any], key: str) -> None:
    value = body.get(key)
    if not isinstance(value, str) or len(value) > 40:
        raise _Invalid(f"{key} {value!r} is not a decimal string")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _Invalid(f"{key} {value!r} is not a decimal string") from None
    if not number.is_finite() or number < 0:
        raise _Invalid(f"{key} {value!r} is not a finite non-negative decimal")


def decode(frame: str | bytes, products: frozenset[str], max_bytes: int) -> FeedFrame:
    """Decode one frame from the feed. Never raises; bad input becomes a `RejectedFrame`."""
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
            _decimal_string(body, "price")
            _decimal_string(body, "last_size" if family is Family.TICKER else "size")
            return TradeFrame(product, family, trade_id, micros // 1000, raw)
        if kind == "heartbeat":
            product = _product(body, products)
            last = _trade_id(body, "last_trade_id")
            return HeartbeatFrame(product, last, epoch_micros(body.get("time")), raw)
        if kind in _CONTROL_TYPES:
            return ControlFrame(kind, body)
    except _Invalid as exc:
        named = body.get("product_id")
        product = named if isinstance(named, str) and named in products else ""
        return RejectedFrame(Reject.INVALID_FIELD, f"{kind}: {exc}", raw, product)
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
