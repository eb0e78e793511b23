"""Ticks and heartbeats read from the raw topic's JSON bodies; parsing never raises.

A body is checked by the feed's rules in `cryptopipeline.coinbase` (the very checks the
ingestor applied before it published it), then its decimals become exact `Decimal`s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from cryptopipeline.coinbase import (
    FieldError,
    check_heartbeat,
    check_ticker,
    read_id,
    read_product,
    read_time,
)

_MAX_TEXT = 64


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


RawEvent = Tick | Heartbeat | Rejected
"""A raw-topic body read back (the simulator's `MarketEvent` is what its market emits)."""


def read_tick(body: Mapping[str, Any]) -> Tick:
    """A `ticker` as a `Tick`; `FieldError` names the first field that breaks the feed's rules
    (a tick also needs the taker's `side`, which a feed message may lack)."""
    product = read_product(body)
    trade_id = read_id(body, "trade_id")
    time_us = read_time(body)
    check_ticker(body)
    side = body.get("side")
    if side is None:
        raise FieldError("side", "side None is not buy or sell")
    bid, ask = body.get("best_bid"), body.get("best_ask")
    return Tick(
        product,
        trade_id,
        time_us,
        Decimal(body["price"]),
        Decimal(body["last_size"]),
        side,
        None if bid is None else Decimal(bid),
        None if ask is None else Decimal(ask),
    )


def read_heartbeat(body: Mapping[str, Any]) -> Heartbeat:
    """A `heartbeat` as a `Heartbeat`; `FieldError` names the field that breaks the rules."""
    product = read_product(body)
    last_trade_id = read_id(body, "last_trade_id")
    time_us = read_time(body)
    check_heartbeat(body)
    return Heartbeat(product, time_us, last_trade_id)


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


def parse_event(raw: bytes | str | Mapping[str, Any]) -> RawEvent:
    """A raw-topic body as a `Tick`, a `Heartbeat`, or `Rejected` with its reason. Never raises."""
    try:
        body = _body(raw)
        if isinstance(body, Rejected):
            return body
        kind = body.get("type")
        if kind == "ticker":
            return read_tick(body)
        if kind == "heartbeat":
            return read_heartbeat(body)
        return Rejected("unknown_type", f"type {str(kind)[:_MAX_TEXT]!r}")
    except FieldError as exc:
        return Rejected("invalid_field", str(exc))
    except Exception as exc:  # never raise: a body is data, whatever it holds
        return Rejected("invalid_field", f"{type(exc).__name__}: {str(exc)[:200]}")


def parse_tick(raw: bytes | str | Mapping[str, Any]) -> Tick | Rejected:
    """A `ticker` body as a `Tick`, or `Rejected` with its reason (heartbeats too). Never raises."""
    event = parse_event(raw)
    if isinstance(event, Heartbeat):
        return Rejected("not_a_ticker", "type 'heartbeat'")
    return event
