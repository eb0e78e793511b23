"""The Advanced Trade market-data feed at `/advanced-trade` on the simulator's port.

It is fed by the same market events as the Exchange feed, so one trade appears on both with
the same trade id, price, size and time. Served channels: `market_trades` (a snapshot of
the last 100 trades per product on subscribe, then one `update` per trade) and `heartbeats`
(once per simulated second, `heartbeat_counter` = simulated seconds since the market
started). Other public channels are refused with an error naming the simulator's limit;
`user` and `futures_balance_summary` need a JWT, and with `advanced_auth="required"` every
channel does. JWTs are checked as the order API checks them (ES256, a known key name as
`kid` and `sub`, a fresh nonce, `iss` "cdp", `nbf`/`exp`), without the REST-only `uri`.

`sequence_num` counts the messages of each connection from 0; it is assigned when a message
is queued, so a frame lost to fault injection leaves a gap a client can see, and a repeated
frame repeats its number. Faults (closes, stalls, drops, duplicates, malformed frames,
delays) are the Exchange feed's, applied by the same per-connection writer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from websockets.exceptions import ConnectionClosed

from cryptopipeline.coinbase._advanced_market import (
    ADVANCED_PRIVATE_CHANNELS,
    ADVANCED_PUBLIC_CHANNELS,
    AUTHENTICATION_FAILURE,
    AdvancedRequest,
    AdvancedShapeError,
    AdvancedTrade,
    envelope_prefix,
    error_message,
    format_go_time,
    format_timestamp_ns,
    heartbeats_event,
    market_trade,
    market_trades_event,
    parse_request,
    subscriptions_event,
)
from cryptopipeline.sim._auth import TokenCheck
from cryptopipeline.sim._events import MarketEvent, Trade
from cryptopipeline.sim._feed import Feed
from cryptopipeline.sim._frames import ReplyFrame, text_frame
from cryptopipeline.sim._subscriber import Subscriber

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

    from cryptopipeline.sim._ledger import TradeLedger

log = logging.getLogger("cryptopipeline.sim")

ADVANCED_PATH = "/advanced-trade"
"""Where the Advanced Trade feed listens on the simulator's port (the Exchange feed is `/`)."""

SERVED_CHANNELS = ("market_trades", "heartbeats")
SNAPSHOT_TRADES = 100
"""Trades per product in the `market_trades` snapshot (as many as Coinbase sends)."""
_EVERYONE = "*"  # the heartbeats channel is not per product


def trade_json(trade: Trade) -> AdvancedTrade:
    """A ledger trade as an Advanced Trade `market_trades` trade."""
    return market_trade(
        product_id=trade.product_id,
        trade_id=trade.trade_id,
        price=trade.price,
        size=trade.size,
        time=trade.time,
        maker_side=trade.maker_side,
    )


class AdvancedFeed(Feed["AdvancedSubscriber"]):
    """Routes market events to Advanced Trade subscribers, framed per connection."""

    def __init__(
        self,
        exchange: Feed[Subscriber],
        *,
        keys: Mapping[str, EllipticCurvePublicKey],
        auth_required: bool,
    ) -> None:
        super().__init__(faults=exchange.faults, stats=exchange.stats, seed=exchange.seed)
        self.exchange = exchange
        self.tokens = TokenCheck(keys)
        self.auth_required = auth_required
        self.started_us: int | None = None
        self._last_heartbeat_s = -1
        self.auth_failures = 0

    def note_subscribe(self) -> None:
        self.exchange.note_subscribe()  # one count: the market may wait for N subscribes

    def publish(self, event: MarketEvent) -> None:
        if not self._index:
            return
        if self.started_us is None:
            self.started_us = event.at_us
        trade = event.trade
        if trade is not None:
            audience = self._index.get(("market_trades", trade.product_id))
            if audience:
                events = orjson.dumps([market_trades_event("update", [trade_json(trade)])])
                stamp = format_timestamp_ns(time.time_ns())
                for subscriber in audience:
                    assert isinstance(subscriber, AdvancedSubscriber)
                    subscriber.enqueue_message("market_trades", stamp, events)
        if "heartbeat" in event.channels:
            second = event.at_us // 1_000_000
            if second > self._last_heartbeat_s:
                self._last_heartbeat_s = second
                self._heartbeat(event.at_us)

    def _heartbeat(self, at_us: int) -> None:
        audience = self._index.get(("heartbeats", _EVERYONE))
        if not audience:
            return
        assert self.started_us is not None
        counter = max(0, (at_us - self.started_us) // 1_000_000)
        current = format_go_time(at_us, (at_us - self.started_us) / 1e6)
        events = orjson.dumps([heartbeats_event(current, counter)])
        stamp = format_timestamp_ns(time.time_ns())
        for subscriber in audience:
            assert isinstance(subscriber, AdvancedSubscriber)
            subscriber.enqueue_message("heartbeats", stamp, events)

    # -- authentication ----------------------------------------------------------------------

    def verify(self, token: str) -> str | None:
        """Why a subscribe's JWT is refused, or None when it is good."""
        return self.tokens.refusal(token)


class AdvancedSubscriber(Subscriber):
    """One Advanced Trade client: its subscriptions and its own `sequence_num`."""

    feed: AdvancedFeed

    def __init__(
        self,
        ws: ServerConnection,
        index: int,
        feed: AdvancedFeed,
        ledger: TradeLedger,
        *,
        paced: bool,
        max_queue: int,
        high_water: int,
    ) -> None:
        super().__init__(
            ws, index, feed, ledger, paced=paced, max_queue=max_queue, high_water=high_water
        )
        self.sequence_num = 0

    def enqueue_message(
        self, channel: str, stamp: str, events_json: bytes, *, control: bool = False
    ) -> None:
        """Frame one message with this connection's next sequence number and queue it."""
        if self.closed:
            return
        payload = envelope_prefix(channel, stamp, self.sequence_num) + events_json + b"}"
        self.sequence_num += 1
        frame = text_frame(payload)
        self.enqueue(ReplyFrame(frame) if control else frame)

    def _reply(self, channel: str, events: list[dict[str, Any]]) -> None:
        stamp = format_timestamp_ns(time.time_ns())
        self.enqueue_message(channel, stamp, orjson.dumps(events), control=True)

    def _refuse(self, message: str, why: str) -> None:
        self.feed.stats.bad_requests += 1
        log.info("refused an Advanced Trade request", extra={"why": why[:200]})
        self.send_control(error_message(message))

    def handle_text(self, raw: str | bytes) -> None:
        try:
            request = parse_request(raw)
        except AdvancedShapeError as exc:
            self._refuse(f"failure to parse subscription request: {exc}", str(exc))
            return
        self._apply_advanced(request)

    def _apply_advanced(self, request: AdvancedRequest) -> None:
        channel = request.channel
        known = channel in ADVANCED_PUBLIC_CHANNELS or channel in ADVANCED_PRIVATE_CHANNELS
        needs_jwt = self.feed.auth_required or channel in ADVANCED_PRIVATE_CHANNELS or not known
        if request.jwt is not None:
            why = self.feed.verify(request.jwt)
            if why is not None:
                self.feed.auth_failures += 1
                self._refuse(AUTHENTICATION_FAILURE, why)
                return
        elif needs_jwt:
            # Coinbase answers a private or unknown channel without credentials this way.
            self.feed.auth_failures += 1
            self._refuse(AUTHENTICATION_FAILURE, f"{channel}: no JWT")
            return
        if not known:
            self._refuse(f"unknown channel {channel[:40]!r}", "unknown channel")
            return
        if channel not in SERVED_CHANNELS and channel not in ADVANCED_PRIVATE_CHANNELS:
            self._refuse(
                f"coinbase-sim serves {', '.join(SERVED_CHANNELS)} only, not {channel}",
                "channel not simulated",
            )
            return
        products = request.product_ids
        for product in products:
            if not self.ledger.has_product(product):
                self._refuse(f"unknown product {product[:40]!r}", "unknown product")
                return
        if channel == "market_trades" and request.type == "subscribe" and not products:
            self._refuse("product_ids are required for market_trades", "no products")
            return
        if request.type == "subscribe":
            self._subscribe(channel, products)
        else:
            self._unsubscribe(channel, products)

    def _subscribe(self, channel: str, products: list[str]) -> None:
        current = self.channels.setdefault(channel, [])
        fresh = [p for p in products if p not in current]
        current.extend(fresh)
        if channel == "heartbeats":
            self.feed.add(self, channel, [_EVERYONE])
        elif channel == "market_trades":
            for product in fresh:
                recent = self.ledger.trades(product)[-SNAPSHOT_TRADES:]
                recent.reverse()  # newest first
                event = market_trades_event("snapshot", [trade_json(t) for t in recent])
                self._reply("market_trades", [event])
            self.feed.add(self, channel, fresh)
        self._reply("subscriptions", [subscriptions_event(self.channels)])
        if channel == "market_trades" and fresh:
            self.feed.note_subscribe()

    def _unsubscribe(self, channel: str, products: list[str]) -> None:
        current = self.channels.get(channel, [])
        gone = list(current) if not products else [p for p in products if p in current]
        self.feed.remove(self, channel, gone)
        remaining = [p for p in current if p not in gone]
        if channel == "heartbeats" or not remaining:
            self.channels.pop(channel, None)
            self.feed.remove(self, channel, [_EVERYONE])
        else:
            self.channels[channel] = remaining
        self._reply("subscriptions", [subscriptions_event(self.channels)])

    async def read_requests(self) -> None:
        try:
            async for raw in self.ws:
                if isinstance(raw, bytes):
                    self._refuse("binary frames are not supported", "binary frame")
                else:
                    self.handle_text(raw)
        except ConnectionClosed:
            pass
