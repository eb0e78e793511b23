"""Decoders for everything the bot reads from outside: ticks, trade signals and order events
from Kafka, fills and order states from the broker. Each returns a checked value or raises
`BadInput` with a short reason code (a metric label) and a detail (the log line).

Money is checked before any arithmetic touches it: finite (no NaN, sNaN or Infinity, which
make `Decimal` raise `InvalidOperation` deep in the portfolio), within `MAX_AMOUNT` and with
at most `MAX_DECIMALS` decimal places, so sizing and quantising can never overflow the
context's precision. Prices are positive; sizes are positive; fees may be zero.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from pydantic import ValidationError

from cryptopipeline.coinbase import TRADE_DECIMALS, FieldError
from cryptopipeline.market import Heartbeat, read_heartbeat, read_tick
from cryptopipeline.records import TradeSignal
from cryptopipeline.trading import OrderEvent, OrderEventType

MAX_AMOUNT = Decimal(10) ** 12
"""No price, size or fee above a trillion units: larger is a forged or broken value."""
MAX_DECIMALS = 18
"""Coinbase quotes at most 8 (sizes) and 2-10 (prices) decimals; 18 leaves room, no more."""
MAX_TEXT = 256
"""Ids and product names longer than this are not ids (they would also bloat metric labels)."""


class BadInput(ValueError):
    """A value from outside that the bot will not act on. `reason` is a short fixed code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def money(value: object, field: str, *, zero: bool = False) -> Decimal:
    """A checked amount: a JSON string or number that is a finite decimal in (0, MAX_AMOUNT]
    (or [0, ...] with `zero`) with at most MAX_DECIMALS places."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise BadInput("bad_decimal", f"{field} is {type(value).__name__}, not a decimal")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value)[:64])
    except InvalidOperation:
        raise BadInput("bad_decimal", f"{field}={str(value)[:40]!r} is not a decimal") from None
    if not amount.is_finite():
        raise BadInput("bad_decimal", f"{field}={str(value)[:40]!r} is not finite")
    if amount < 0 or (amount == 0 and not zero):
        raise BadInput("bad_decimal", f"{field}={amount} must be {'>= 0' if zero else '> 0'}")
    if amount > MAX_AMOUNT:
        raise BadInput("bad_decimal", f"{field} is above {MAX_AMOUNT:E}")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMALS and amount != 0:
        raise BadInput("bad_decimal", f"{field} has more than {MAX_DECIMALS} decimals")
    return amount


def text(value: object, field: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise BadInput("bad_field", f"{field} must be a string of 1..{MAX_TEXT} characters")
    return value


_ID = re.compile(r"[A-Za-z0-9_-]+")


def identifier(value: object, field: str) -> str:
    """An exchange id that goes into a URL path (Coinbase's are UUIDs): letters, digits, `-`
    and `_` only, so a forged answer cannot steer or break the next request."""
    checked = text(value, field)
    if _ID.fullmatch(checked) is None:
        raise BadInput("bad_field", f"{field} must be letters, digits, '-' or '_'")
    return checked


@dataclass(frozen=True, slots=True)
class Tick:
    product_id: str
    bid: Decimal
    ask: Decimal
    time: str
    time_us: int
    """Exchange time in microseconds since the epoch."""

    @property
    def at(self) -> float:
        """Exchange time in seconds since the epoch."""
        return self.time_us / 1_000_000


def decode_tick(
    raw: bytes, products: Collection[str], *, heartbeats: bool = False
) -> Tick | Heartbeat | None:
    """A ticker's book top, read by the feed's rules (`market.read_tick`) and checked as money;
    with `heartbeats` (the event clock), a heartbeat too. None for any other record and for a
    product this bot does not trade."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadInput("not_json", f"{len(raw)} bytes that are not JSON") from None
    if not isinstance(body, dict):
        raise BadInput("bad_field", f"a JSON {type(body).__name__}, not an object")
    kind = body.get("type")
    if kind != "ticker" and not (heartbeats and kind == "heartbeat"):
        return None
    product = text(body.get("product_id"), "product_id")
    if product not in products:
        return None  # a product this bot does not trade: not an error, not ours
    try:
        if kind == "heartbeat":
            return read_heartbeat(body)
        tick = read_tick(body)
    except FieldError as exc:
        raise BadInput(_reason(body, exc.field), str(exc)) from None
    bid = money(tick.price if tick.best_bid is None else tick.best_bid, "best_bid")
    ask = money(tick.price if tick.best_ask is None else tick.best_ask, "best_ask")
    return Tick(product, bid, ask, body["time"], tick.time_us)


def _reason(body: dict[str, Any], field: str) -> str:
    if field not in body:
        return "missing_field"
    if field == "time":
        return "bad_time"
    return "bad_decimal" if field in TRADE_DECIMALS else "bad_field"


def decode_signal(raw: bytes, products: Collection[str]) -> TradeSignal:
    """A trade signal the bot may act on: schema-valid, for a traded product, a sane price."""
    try:
        signal = TradeSignal.model_validate_json(raw)
    except ValidationError as exc:
        raise BadInput("schema", _first_error(exc)) from None
    text(signal.signal_id, "signal_id")
    if signal.product_id not in products:
        raise BadInput("unknown_product", f"product_id {signal.product_id[:40]!r} is not traded")
    money(signal.close_price, "close_price")
    return signal


_NEEDS_ORDER = frozenset({OrderEventType.SUBMITTED, OrderEventType.ACCEPTED})


def decode_order_event(raw: bytes) -> OrderEvent:
    """An order event read back from the log, checked so the blotter can fold it safely."""
    try:
        event = OrderEvent.model_validate_json(raw)
    except ValidationError as exc:
        raise BadInput("schema", _first_error(exc)) from None
    for name in ("client_order_id", "signal_id", "product_id"):
        text(getattr(event, name), name)
    for name in ("base_size", "limit_price", "reference_price"):
        value = getattr(event, name)
        if value is not None:
            money(value, name)
    if event.fill is not None:
        if event.side is None:
            raise BadInput("bad_field", "a fill without a side")
        text(event.fill.fill_id, "fill.fill_id")
        money(event.fill.price, "fill.price")
        money(event.fill.size, "fill.size")
        money(event.fill.fee, "fill.fee", zero=True)
    if event.event in _NEEDS_ORDER and (
        event.side is None or event.order_type is None or event.base_size is None
    ):
        raise BadInput("bad_field", f"a {event.event.value} event without side, type and size")
    return event


def _first_error(exc: ValidationError) -> str:
    """The first schema complaint, without echoing the input (it may be huge)."""
    errors = exc.errors(include_input=False, include_url=False)
    first = errors[0] if errors else {"loc": (), "msg": "invalid"}
    where = ".".join(str(p) for p in first["loc"]) or "record"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}"[:200] + more
