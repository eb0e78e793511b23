"""The ingestor's data path: decoded frames from every connection in, records for Kafka out,
through one ordered outbox.

Trades pass the trusted-id check (`_trusted`), then their product's sequencer, which
releases each trade id once and in order; heartbeats are written once per exchange time and
tell the gap filler (`_gaps`) how far the trades should reach; control frames update the
health the readiness probe reports; everything else goes to the dead-letter topic with its
reason. Nothing here waits: `full` and `room()` give the readers backpressure.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptopipeline.ingestor._backfill import TradeBackfiller
from cryptopipeline.ingestor._decode import (
    ControlFrame,
    Family,
    FeedFrame,
    HeartbeatFrame,
    Reject,
    RejectedFrame,
    TradeFrame,
)
from cryptopipeline.ingestor._metrics import IngestorMetrics
from cryptopipeline.ingestor._outbox import Outbox, OutRecord, Pending, ingest_headers
from cryptopipeline.ingestor._sequencer import TradeSequencer
from cryptopipeline.ingestor._settings import IngestorSettings
from cryptopipeline.ingestor._trusted import Suspect, TrustedIds

log = logging.getLogger(__name__)

Key = tuple[str, Family]


@dataclass
class Health:
    """What the probes report, kept across sessions."""

    sessions: int = 0
    producing: bool = False
    last_exchange_error: dict[str, Any] | None = None
    last_error_at: float = 0.0
    last_subscribed_at: float = 0.0
    logged_rejects: set[Reject] = field(default_factory=set)


class Intake:
    """The frame sink of every connection (`FrameSink`); one per ingestor, reset per session
    by `begin_session`. Heartbeat high-water marks and refused records' dead letters outlive
    a session."""

    def __init__(
        self, settings: IngestorSettings, metrics: IngestorMetrics, health: Health
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.health = health
        families = [Family.TICKER] if "ticker" in settings.exchange.channels else []
        if "matches" in settings.exchange.channels:
            families.append(Family.MATCH)
        self.keys: list[Key] = [(p, f) for p in settings.exchange.products for f in families]
        self._families = families
        self.products = list(settings.exchange.products)
        self.sequencers: dict[Key, TradeSequencer[Pending]] = {}
        self.gap_signals: dict[Key, asyncio.Event] = {}
        self._last_heartbeat_us: dict[str, int] = {}
        self.last_heartbeat_trade: dict[str, int] = {}
        self._ids = TrustedIds(self.products, settings.ingest, metrics, self)
        self._seen_ns: dict[str, int] = {}  # per product: last trade frame received
        # per product: the first trade frame received since the product last released one
        self._waiting_ns: dict[str, int] = {}
        self._carried: list[OutRecord] = []  # dead letters of refused records, kept until sent
        self.outbox = Outbox(settings.ingest.max_buffered_records)
        self._duplicates = {p: metrics.duplicates_dropped.labels(p) for p in self.products}
        self._pending_gauges = {p: metrics.pending_trades.labels(p) for p in self.products}

    def begin_session(self, last: Mapping[Key, int]) -> None:
        """Start from what the log holds: `last` is the last published trade id per key."""
        ingest = self.settings.ingest
        self.outbox = Outbox(ingest.max_buffered_records)
        for carried in self._carried:  # a refusal ended the last session before they went
            self.outbox.put(carried)
        self.sequencers = {
            key: TradeSequencer(
                next_id=(last[key] + 1) if key in last else None,
                max_pending=ingest.max_pending_trades,
            )
            for key in self.keys
        }
        self.gap_signals = {key: asyncio.Event() for key in self.keys}
        self._ids.reset(last)
        self._seen_ns = {}
        self._waiting_ns = {}

    def carried_sent(self) -> None:
        """The session flushed: the carried dead letters reached Kafka with the rest."""
        self._carried = []

    async def confirm(self, product: str, backfiller: TradeBackfiller) -> None:
        """The session's worker confirming `product`'s suspect ids over REST."""
        await self._ids.confirm(product, backfiller)

    def stuck_products(self) -> set[str]:
        """Products that receive trades but released none for `stuck_after_s`, or whose
        suspect ids have waited that long for confirmation."""
        limit = int(self.settings.ingest.stuck_after_s * 1e9)
        now = time.time_ns()
        stuck = set()
        for product in self.products:
            # Trades kept arriving for `limit` and none went out. Not "now - last release": a
            # quiet product's next trade, held a moment by a gap, is not stuck.
            waiting = self._waiting_ns.get(product)
            if waiting is not None and self._seen_ns[product] - waiting > limit:
                stuck.add(product)
            waiting = self._ids.oldest_waiting_ns(product)
            if waiting is not None and now - waiting > limit:
                stuck.add(product)
        return stuck

    # ---- the frame sink -----------------------------------------------------------------

    @property
    def full(self) -> bool:
        """The outbox is at its bound: readers must wait for `room()` (backpressure)."""
        return self.outbox.full

    async def room(self) -> None:
        await self.outbox.room()

    def accept(self, frame: FeedFrame, connection: int, receive_ns: int) -> None:
        """Take one decoded frame from a connection; never waits (see `full`)."""
        if isinstance(frame, TradeFrame):
            self.on_trade(Pending(frame, connection, receive_ns, backfill=False))
        elif isinstance(frame, HeartbeatFrame):
            self.on_heartbeat(frame, connection, receive_ns)
        elif isinstance(frame, ControlFrame):
            self._on_control(frame, connection)
        else:
            self.dead_letter(frame, connection, receive_ns)

    def on_trade(self, pending: Pending) -> None:
        frame = pending.frame
        product, trade_id = frame.product_id, frame.trade_id
        self._seen_ns[product] = pending.receive_ns
        self._waiting_ns.setdefault(product, pending.receive_ns)
        if not self._ids.admits(product, trade_id):
            self._ids.hold(product, Suspect(trade_id, pending, None, pending.connection,
                                            pending.receive_ns))  # fmt: skip
            return
        key = (product, frame.family)
        sequencer = self.sequencers.get(key)
        if sequencer is None:  # e.g. a match while only ticker is configured
            self.dead_letter(
                RejectedFrame(
                    Reject.UNKNOWN_TYPE, f"unsubscribed {frame.family}", frame.raw, frame.product_id
                ),
                pending.connection,
                pending.receive_ns,
            )
            return
        offer = sequencer.offer(frame.trade_id, pending)
        if offer.duplicate:
            self._duplicates[frame.product_id].inc()
            return
        for ready in offer.ready:
            self.emit_trade(ready)
        if sequencer.pending:  # only a gap makes trades wait: the common path skips all this
            self.gap_signals[key].set()
            self._pending_gauges[frame.product_id].set(sequencer.pending)
        elif offer.ready and len(offer.ready) > 1:  # a gap just closed
            self._pending_gauges[frame.product_id].set(0)

    def emit_trade(self, pending: Pending) -> None:
        frame = pending.frame
        self._waiting_ns.pop(frame.product_id, None)
        self.outbox.put(
            OutRecord(
                topic=self.settings.topics.raw,
                key=frame.product_id,
                value=frame.raw,
                timestamp_ms=frame.time_ms,
                headers=ingest_headers(pending.receive_ns, pending.connection, pending.backfill),
                product=frame.product_id,
                kind="backfill" if pending.backfill else "trade",
                receive_ns=pending.receive_ns,
            )
        )

    def on_heartbeat(self, frame: HeartbeatFrame, connection: int, receive_ns: int) -> None:
        product = frame.product_id
        if self._ids.implausible(product, frame.last_trade_id):
            self._ids.hold(
                product, Suspect(frame.last_trade_id, None, frame, connection, receive_ns)
            )
            return
        self.last_heartbeat_trade[product] = max(
            frame.last_trade_id, self.last_heartbeat_trade.get(product, -1)
        )
        for family in self._families:  # this product's keys only: every key, per heartbeat,
            key = (product, family)  # cost O(products^2) a second
            if self.sequencers[key].gap_to(frame.last_trade_id) is not None:
                self.gap_signals[key].set()
        if frame.time_us <= self._last_heartbeat_us.get(product, -1):
            return  # the same heartbeat from another socket, or an older one
        self._last_heartbeat_us[product] = frame.time_us
        self.outbox.put(
            OutRecord(
                topic=self.settings.topics.raw,
                key=product,
                value=frame.raw,
                timestamp_ms=frame.time_us // 1000,
                headers=ingest_headers(receive_ns, connection, False),
                product=product,
                kind="heartbeat",
                receive_ns=receive_ns,
            )
        )

    def _on_control(self, frame: ControlFrame, connection: int) -> None:
        if frame.type == "subscriptions":
            self.health.last_subscribed_at = time.monotonic()
            log.info(
                "subscribed",
                extra={"connection": connection, "channels": str(frame.body.get("channels"))[:500]},
            )
            return
        self.metrics.exchange_errors.inc()
        self.health.last_exchange_error = {"type": "error", **_safe(frame)}
        self.health.last_error_at = time.monotonic()
        log.error("the exchange sent an error", extra={"connection": connection, **_safe(frame)})

    # ---- dead letters -------------------------------------------------------------------

    def dead_letter(
        self,
        frame: RejectedFrame,
        connection: int,
        receive_ns: int,
        extra: tuple[tuple[str, bytes], ...] = (),
    ) -> OutRecord:
        """Count, log once per reason, and write `frame` to the dead-letter topic, its value cut
        to `dead_letter_max_bytes` (headers `original_bytes` and `truncated` say so)."""
        self.metrics.dead_letters.labels(frame.product, frame.reason.value).inc()
        if frame.reason not in self.health.logged_rejects:  # once per kind, with a sample
            self.health.logged_rejects.add(frame.reason)
            log.warning(
                "rejected a frame; it goes to the dead-letter topic (logged once per reason)",
                extra={
                    "reason": frame.reason.value,
                    "detail": frame.detail,
                    "sample": frame.raw[:300].decode("utf-8", "replace"),
                },
            )
        raw, limit = frame.raw, self.settings.ingest.dead_letter_max_bytes
        record = OutRecord(
            topic=self.settings.topics.dead_letter,
            key="",
            value=raw[:limit],
            timestamp_ms=None,
            headers=(
                *ingest_headers(receive_ns, connection, False),
                ("reason", frame.reason.value.encode()),
                ("detail", frame.detail.encode("utf-8", "replace")[:500]),
                ("original_bytes", str(len(raw)).encode()),
                ("truncated", b"true" if len(raw) > limit else b"false"),
                *extra,
            ),
            product=frame.product,
            kind="dead_letter",
            receive_ns=receive_ns,
        )
        self.outbox.put(record)
        return record

    def refused_by_kafka(self, record: OutRecord, error: BaseException) -> None:
        """Kafka refused a raw record for what it is: dead-letter it (never a restart loop);
        the dead letter survives the session restart the refusal may force."""
        dead = self.dead_letter(
            RejectedFrame(
                Reject.KAFKA_REFUSED, f"{type(error).__name__}: {error}"[:400], record.value,
                record.product,
            ),
            int(dict(record.headers).get("connection_id", b"-1")),
            record.receive_ns,
            (("kind", record.kind.encode()), ("timestamp_ms", str(record.timestamp_ms).encode())),
        )  # fmt: skip
        self._carried.append(dead)


def _safe(frame: ControlFrame) -> dict[str, str]:
    return {
        "exchange_message": str(frame.body.get("message", ""))[:200],
        "exchange_reason": str(frame.body.get("reason", ""))[:200],
    }
