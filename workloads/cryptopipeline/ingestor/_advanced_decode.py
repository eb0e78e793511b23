"""The Advanced Trade feed's decoder (`exchange.feed: advanced-trade`), no I/O: each
`market_trades` trade becomes one record under the raw topic's ticker contract, heartbeats
become heartbeat frames, and `sequence_num` / `heartbeat_counter` skips are reported as
losses (the connection in `_advanced.py` acts on them). The mapping is described in
`_advanced.py` and docs/ingestor.md, "The Advanced Trade feed".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from cryptopipeline.coinbase._advanced_market import (
    AdvancedShapeError,
    go_time_micros,
    market_trades_of,
    parse_heartbeat,
    parse_message,
)
from cryptopipeline.coinbase._time import format_time
from cryptopipeline.ingestor._decode import (
    MAX_ID,
    ControlFrame,
    Family,
    FeedFrame,
    HeartbeatFrame,
    Reject,
    RejectedFrame,
    TimeWindow,
    TradeFrame,
    _BadTime,
    check_trade,
)

log = logging.getLogger(__name__)

"""Pages walked back for one gap (a million trades); an older gap is given up as usual."""
_TAKER = {"BUY": "sell", "SELL": "buy"}


class _Bad(ValueError):
    pass


def ticker_record(
    trade: Any, products: frozenset[str] | None, now_us: int | None, window: TimeWindow | None
) -> TradeFrame:
    """A `market_trades` trade (WebSocket or REST: the same object) as a raw-topic ticker
    record, checked by the Exchange feed's rules. Raises ValueError naming the bad field."""
    if not isinstance(trade, dict):
        raise _Bad("trade is not a JSON object")
    product = trade.get("product_id")
    if not isinstance(product, str):
        raise _Bad(f"product_id {str(product)[:40]!r} is not a string")
    if products is not None and product not in products:
        raise _Unsubscribed(f"product {product[:40]!r} is not subscribed")
    text = trade.get("trade_id")
    if type(text) is not str or not text.isascii() or not text.isdigit() or len(text) > 19:
        raise _Bad(f"trade_id {str(text)[:40]!r} is not a decimal integer string")
    trade_id = int(text)
    if trade_id > MAX_ID:
        raise _Bad(f"trade_id {text!r} is not below 2**63")
    side = _TAKER.get(trade.get("side"))  # type: ignore[arg-type]
    if side is None:
        raise _Bad(f"side {str(trade.get('side'))[:40]!r} is not BUY or SELL")
    body: dict[str, Any] = {
        "type": "ticker",
        "product_id": product,
        "price": trade.get("price"),
        "side": side,
        "time": trade.get("time"),
        "trade_id": trade_id,
        "last_size": trade.get("size"),
    }
    micros = check_trade(body, Family.TICKER, now_us, window)
    body["time"] = format_time(micros)
    return TradeFrame(product, Family.TICKER, trade_id, micros // 1000, orjson.dumps(body))


class _Unsubscribed(ValueError):
    pass


def heartbeat_record(product_id: str, last_trade_id: int, time_us: int) -> HeartbeatFrame:
    """An Advanced Trade heartbeat, per product, under the raw topic's heartbeat contract:
    `last_trade_id` is the newest trade id this connection saw for the product, `time` the
    heartbeat's `current_time`; `sequence` is absent (Advanced Trade has none per product)."""
    raw = orjson.dumps(
        {
            "type": "heartbeat",
            "last_trade_id": last_trade_id,
            "product_id": product_id,
            "time": format_time(time_us),
        }
    )
    return HeartbeatFrame(product_id, last_trade_id, time_us, raw)


def last_trade_hint(product_id: str, trade_id: int) -> HeartbeatFrame:
    """The exchange's newest trade id of a product, for the service's gap check only. Its
    time is older than any heartbeat, so the service never publishes it (it publishes a
    heartbeat only when it is newer than the last one published)."""
    return HeartbeatFrame(product_id, trade_id, -1, b"")


@dataclass(slots=True)
class Decoded:
    """What one Advanced Trade frame gave: frames for the sink, and what it said of the
    connection (a repeated frame, a loss, a sign of life)."""

    frames: list[FeedFrame] = field(default_factory=list)
    repeated: bool = False
    lost: bool = False
    alive: bool = False


class AdvancedDecoder:
    """Decodes the frames of one connection session; never raises. Keeps that session's
    `sequence_num`, `heartbeat_counter` and newest trade id per product."""

    def __init__(
        self, products: frozenset[str], max_bytes: int, window: TimeWindow | None = None
    ) -> None:
        self.products = products
        self.max_bytes = max_bytes
        self.window = window
        self.sequence: int | None = None
        self.counter: int | None = None
        self.newest: dict[str, int] = {}

    def decode(self, frame: str | bytes, now_us: int | None = None) -> Decoded:
        out = Decoded()
        if isinstance(frame, str):
            raw = frame.encode("utf-8", "surrogatepass")
        else:
            raw = bytes(frame)
            if len(raw) <= self.max_bytes:
                out.frames.append(RejectedFrame(Reject.BINARY, "binary frame", raw))
                return out
        if len(raw) > self.max_bytes:
            detail = f"{len(raw)} bytes > limit {self.max_bytes}"
            out.frames.append(RejectedFrame(Reject.OVERSIZED, detail, raw))
            return out
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            out.frames.append(RejectedFrame(Reject.MALFORMED_JSON, str(exc)[:200], raw))
            return out
        if not isinstance(body, dict):
            detail = f"JSON {type(body).__name__}"
            out.frames.append(RejectedFrame(Reject.NOT_AN_OBJECT, detail, raw))
            return out
        if body.get("type") == "error" and "channel" not in body:
            out.frames.append(ControlFrame("error", body))
            return out
        try:
            message = parse_message(body)
        except AdvancedShapeError as exc:
            out.frames.append(RejectedFrame(Reject.INVALID_FIELD, str(exc), raw))
            return out
        if self.sequence is not None:
            if message.sequence_num <= self.sequence:
                out.repeated = True  # the same frame again (or an older one): nothing new
                return out
            out.lost = message.sequence_num > self.sequence + 1
        self.sequence = message.sequence_num
        try:
            if message.channel == "market_trades":
                self._trades(message.events, raw, now_us, out)
            elif message.channel == "heartbeats":
                self._heartbeats(message.events, now_us, out)
            elif message.channel == "subscriptions":
                out.frames.append(ControlFrame("subscriptions", body))
            else:
                detail = f"channel {message.channel[:60]!r}"
                out.frames.append(RejectedFrame(Reject.UNKNOWN_TYPE, detail, raw))
        except (AdvancedShapeError, _BadTime) as exc:
            reason = Reject.EVENT_TIME if isinstance(exc, _BadTime) else Reject.INVALID_FIELD
            out.frames.append(RejectedFrame(reason, f"{message.channel}: {exc}", raw))
        return out

    def _trades(
        self, events: list[dict[str, Any]], raw: bytes, now_us: int | None, out: Decoded
    ) -> None:
        decoded: list[TradeFrame] = []
        for event in events:
            _, trades = market_trades_of(event)
            for trade in trades:
                try:
                    decoded.append(ticker_record(trade, self.products, now_us, self.window))
                except _Unsubscribed as exc:
                    out.frames.append(
                        RejectedFrame(Reject.UNSUBSCRIBED_PRODUCT, str(exc), orjson.dumps(trade))
                    )
                except (ValueError, TypeError) as exc:
                    named = trade.get("product_id") if isinstance(trade, dict) else None
                    product = named if isinstance(named, str) and named in self.products else ""
                    reason = (
                        Reject.EVENT_TIME if isinstance(exc, _BadTime) else Reject.INVALID_FIELD
                    )
                    out.frames.append(
                        RejectedFrame(reason, f"market_trades: {exc}", orjson.dumps(trade), product)
                    )
        decoded.sort(key=lambda f: f.trade_id)  # Coinbase lists trades newest first
        for frame in decoded:
            if frame.trade_id > self.newest.get(frame.product_id, -1):
                self.newest[frame.product_id] = frame.trade_id
        out.frames.extend(decoded)

    def _heartbeats(self, events: list[dict[str, Any]], now_us: int | None, out: Decoded) -> None:
        for event in events:
            beat = parse_heartbeat(event)
            if self.counter is not None:
                if beat.counter <= self.counter:
                    continue
                if beat.counter > self.counter + 1:
                    out.lost = True
            self.counter = beat.counter
            out.alive = True
            micros = go_time_micros(beat.current_time)
            if self.window is not None and now_us is not None:
                self.window.check(micros, now_us)  # raises: the heartbeat is dead-lettered
            for product, newest in self.newest.items():
                out.frames.append(heartbeat_record(product, newest, micros))
