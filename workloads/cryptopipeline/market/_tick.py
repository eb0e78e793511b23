"""Ticks and heartbeats read from the raw topic's JSON bodies; parsing never raises."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from cryptopipeline.coinbase import parse_time

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TEXT = 64
_SIDES = frozenset({"buy", "sell"})


@dataclass(frozen=True, slots=True)
class Tick:
    """One trade from a Coinbase `ticker` message; money is exact `Decimal`.

    `side` is the taker's side; `best_bid` / `best_ask` are absent on backfilled tickers.
    """

    product_id: str
    trade_id: int
    time_us: int
    price: Decimal
    size: Decimal
    side: str
    best_bid: Decimal | None = None
    best_ask: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A Coinbase `heartbeat`: event time moves on for its product even without trades."""

    product_id: str
    time_us: int
    last_trade_id: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why a body is not a usable tick or heartbeat (`reason` is a short stable code)."""

    reason: str
    detail: str


MarketEvent = Tick | Heartbeat | Rejected


class _Bad(ValueError):
    pass


def epoch_us(text: object) -> int:
    """Microseconds since the epoch of an RFC 3339 time (any fraction length); `ValueError`."""
    if not isinstance(text, str) or len(text) > _MAX_TEXT:
        raise _Bad(f"time {str(text)[:_MAX_TEXT]!r} is not an RFC 3339 timestamp")
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError("naive")
    except ValueError:
        try:
            moment = parse_time(text)
        except ValueError:
            raise _Bad(f"time {text!r} is not an RFC 3339 timestamp") from None
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _decimal(body: Mapping[str, Any], key: str, *, positive: bool) -> Decimal:
    value = body.get(key)
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise _Bad(f"{key} {str(value)[:_MAX_TEXT]!r} is not a decimal string")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _Bad(f"{key} {value!r} is not a decimal string") from None
    if not number.is_finite() or number < 0 or (positive and number == 0):
        raise _Bad(f"{key} {value!r} is not a finite {'positive' if positive else '>= 0'} decimal")
    return number


def _optional_decimal(body: Mapping[str, Any], key: str) -> Decimal | None:
    if body.get(key) is None:
        return None
    return _decimal(body, key, positive=False)


def _int(body: Mapping[str, Any], key: str) -> int:
    value = body.get(key)
    if type(value) is not int or value < 0:
        raise _Bad(f"{key} {str(value)[:_MAX_TEXT]!r} is not a non-negative integer")
    return value


def _product(body: Mapping[str, Any]) -> str:
    value = body.get("product_id")
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT:
        raise _Bad(f"product_id {str(value)[:_MAX_TEXT]!r} is not a product id")
    return value


def _body(raw: bytes | str | Mapping[str, Any]) -> Mapping[str, Any] | Rejected:
    if isinstance(raw, Mapping):
        return raw
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejected("malformed_json", str(exc)[:200])
    if not isinstance(body, dict):
        return Rejected("not_an_object", f"JSON {type(body).__name__}")
    return body


def _tick(body: Mapping[str, Any]) -> Tick:
    side = body.get("side")
    if side not in _SIDES:
        raise _Bad(f"side {str(side)[:_MAX_TEXT]!r} is not buy or sell")
    return Tick(
        product_id=_product(body),
        trade_id=_int(body, "trade_id"),
        time_us=epoch_us(body.get("time")),
        price=_decimal(body, "price", positive=True),
        size=_decimal(body, "last_size", positive=True),
        side=str(side),
        best_bid=_optional_decimal(body, "best_bid"),
        best_ask=_optional_decimal(body, "best_ask"),
    )


def parse_event(raw: bytes | str | Mapping[str, Any]) -> MarketEvent:
    """A raw-topic body as a `Tick`, a `Heartbeat`, or `Rejected` with its reason. Never raises."""
    try:
        body = _body(raw)
        if isinstance(body, Rejected):
            return body
        kind = body.get("type")
        if kind == "ticker":
            return _tick(body)
        if kind == "heartbeat":
            return Heartbeat(
                _product(body), epoch_us(body.get("time")), _int(body, "last_trade_id")
            )
        return Rejected("unknown_type", f"type {str(kind)[:_MAX_TEXT]!r}")
    except _Bad as exc:
        return Rejected("invalid_field", str(exc))
    except Exception as exc:  # never raise: a body is data, whatever it holds
        return Rejected("invalid_field", f"{type(exc).__name__}: {str(exc)[:200]}")


def parse_tick(raw: bytes | str | Mapping[str, Any]) -> Tick | Rejected:
    """A `ticker` body as a `Tick`, or `Rejected` with its reason (heartbeats too). Never raises."""
    event = parse_event(raw)
    if isinstance(event, Heartbeat):
        return Rejected("not_a_ticker", "type 'heartbeat'")
    return event
