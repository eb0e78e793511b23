"""The ingestor service: redundant feed connections -> sequencers -> one ordered outbox ->
Kafka, with REST backfill of gaps, recovery from the log, probes and metrics.

A session is one producer and one set of connections. A Kafka delivery that fails for good
ends the session; the next one re-reads the log, so what landed is never repeated and what
did not is backfilled. SIGTERM ends the last session: stop reading, flush, exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from cryptopipeline.core import ensure_topics
from cryptopipeline.core.ops import OpsServer
from cryptopipeline.ingestor._backfill import BackfillError, TradeBackfiller
from cryptopipeline.ingestor._connection import FeedConnection, RecentFrames
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
from cryptopipeline.ingestor._outbox import Outbox, OutRecord
from cryptopipeline.ingestor._publisher import RawPublisher
from cryptopipeline.ingestor._recovery import last_published_trades
from cryptopipeline.ingestor._sequencer import Gap, TradeSequencer
from cryptopipeline.ingestor._settings import IngestorSettings

log = logging.getLogger(__name__)

Key = tuple[str, Family]


class _SessionOver(Exception):
    """Raised inside the reader group to end it: a stop was asked for, or Kafka failed."""


@dataclass(slots=True)
class _Pending:
    frame: TradeFrame
    connection: int
    receive_ns: int
    backfill: bool


@dataclass
class _Health:
    sessions: int = 0
    producing: bool = False
    last_exchange_error: dict[str, Any] | None = None
    last_error_at: float = 0.0
    last_subscribed_at: float = 0.0
    logged_rejects: set[Reject] = field(default_factory=set)


class Ingestor:
    def __init__(self, settings: IngestorSettings, metrics: IngestorMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or IngestorMetrics(pipeline=settings.pipeline_name)
        families = [Family.TICKER] if "ticker" in settings.exchange.channels else []
        if "matches" in settings.exchange.channels:
            families.append(Family.MATCH)
        self._keys: list[Key] = [(p, f) for p in settings.exchange.products for f in families]
        self._products = list(settings.exchange.products)
        self._sequencers: dict[Key, TradeSequencer[_Pending]] = {}
        self._gap_signals: dict[Key, asyncio.Event] = {}
        self._last_heartbeat_us: dict[str, int] = {}
        self._last_heartbeat_trade: dict[str, int] = {}
        self._connections: list[FeedConnection] = []
        self._outbox = Outbox(settings.ingest.max_buffered_records)
        self._health = _Health()
        self.ops: OpsServer | None = None
        self._duplicates = {p: self.metrics.duplicates_dropped.labels(p) for p in self._products}
        self._pending_gauges = {p: self.metrics.pending_trades.labels(p) for p in self._products}

    # ---- probes -------------------------------------------------------------------------

    def live(self) -> tuple[bool, dict[str, Any]]:
        return True, {"sessions": self._health.sessions}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        health = self._health
        subscribed = [c.conn_id for c in self._connections if c.subscribed]
        error_is_current = health.last_error_at > health.last_subscribed_at
        ok = health.producing and bool(subscribed) and not error_is_current
        return ok, {
            "producing": health.producing,
            "subscribed_connections": subscribed,
            "last_exchange_error": health.last_exchange_error,
            "buffered_records": len(self._outbox),
        }

    # ---- lifecycle ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Serve probes and ingest until `stop` is set; then flush and return."""
        settings = self.settings
        self.ops = OpsServer(
            self.metrics.registry,
            live=self.live,
            ready=self.ready,
            host=settings.ops.host,
            port=settings.ops.port,
        )
        async with self.ops:
            mine = {settings.topics.raw, settings.topics.dead_letter}
            topics = [spec for spec in settings.topic_specs() if spec.name in mine]
            if not await self._retry(stop, lambda: ensure_topics(settings.kafka, topics)):
                return
            async with httpx.AsyncClient(
                base_url=settings.exchange.rest_url,
                timeout=httpx.Timeout(10.0),
                headers={"User-Agent": "cryptopipeline-ingestor"},
            ) as http:
                backfiller = TradeBackfiller(http)
                while not stop.is_set():
                    try:
                        await self._session(stop, backfiller)
                    except _KafkaUnavailable as exc:
                        log.error("Kafka unavailable; retrying", extra={"error": str(exc)})
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(2.0):
                                await stop.wait()

    async def _retry(self, stop: asyncio.Event, step: Callable[[], Awaitable[object]]) -> bool:
        """Run a start-up step (topic creation) until it succeeds; False if stopped first."""
        while not stop.is_set():
            try:
                await step()
                return True
            except Exception as exc:
                log.error("start-up step failed; retrying", extra={"error": str(exc)})
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(2.0):
                        await stop.wait()
        return False

    async def _session(self, stop: asyncio.Event, backfiller: TradeBackfiller) -> None:
        settings = self.settings
        publisher = RawPublisher(
            settings.kafka,
            self.metrics,
            max_buffered=settings.ingest.max_buffered_records,
            linger_ms=settings.ingest.linger_ms,
            delivery_timeout_ms=settings.ingest.kafka_delivery_timeout_ms,
        )
        try:
            await publisher.start()
            last = await last_published_trades(
                settings.kafka,
                settings.topics.raw,
                set(self._keys),
                settings.ingest.recovery_scan_limit,
            )
        except Exception as exc:
            with contextlib.suppress(Exception):
                await publisher.stop()
            raise _KafkaUnavailable(str(exc)) from exc
        self._health.sessions += 1
        self._outbox = Outbox(settings.ingest.max_buffered_records)
        self._sequencers = {
            key: TradeSequencer(
                next_id=(last[key] + 1) if key in last else None,
                max_pending=settings.ingest.max_pending_trades,
            )
            for key in self._keys
        }
        self._gap_signals = {key: asyncio.Event() for key in self._keys}
        recent = RecentFrames()
        self._connections = [
            FeedConnection(i, settings.exchange, settings.ingest, self, self.metrics, recent)
            for i in range(settings.exchange.connections)
        ]
        self._health.producing = True
        try:
            async with asyncio.TaskGroup() as session:
                writer = session.create_task(self._write(publisher))
                try:
                    async with asyncio.TaskGroup() as readers:
                        for connection in self._connections:
                            readers.create_task(connection.run())
                        for key in self._keys:
                            readers.create_task(self._gap_worker(key, backfiller))
                        readers.create_task(self._watch(stop, publisher))
                except* _SessionOver:
                    pass
                self._outbox.close()
                if publisher.failed.is_set():
                    writer.cancel()
        finally:
            self._health.producing = False
            self._connections = []
            if publisher.failed.is_set():
                self.metrics.kafka_failures.inc()
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(5):
                        await publisher.stop()
            else:
                await publisher.stop()  # flushes every buffered record
        if publisher.failed.is_set():
            raise _KafkaUnavailable(repr(publisher.failure))

    async def _watch(self, stop: asyncio.Event, publisher: RawPublisher) -> None:
        stopped = asyncio.ensure_future(stop.wait())
        failed = asyncio.ensure_future(publisher.failed.wait())
        try:
            await asyncio.wait([stopped, failed], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            failed.cancel()
        raise _SessionOver

    async def _write(self, publisher: RawPublisher) -> None:
        while (record := await self._outbox.get()) is not None:
            await publisher.publish(
                record.topic,
                key=record.key,
                value=record.value,
                timestamp_ms=record.timestamp_ms,
                headers=record.headers,
                product=record.product,
                kind=record.kind,
                receive_ns=record.receive_ns,
            )

    # ---- the data path ------------------------------------------------------------------

    @property
    def full(self) -> bool:
        """The outbox is at its bound: readers must wait for `room()` (backpressure)."""
        return self._outbox.full

    async def room(self) -> None:
        await self._outbox.room()

    def accept(self, frame: FeedFrame, connection: int, receive_ns: int) -> None:
        """Take one decoded frame from a connection; never waits (see `full`)."""
        if isinstance(frame, TradeFrame):
            self._on_trade(_Pending(frame, connection, receive_ns, backfill=False))
        elif isinstance(frame, HeartbeatFrame):
            self._on_heartbeat(frame, connection, receive_ns)
        elif isinstance(frame, ControlFrame):
            self._on_control(frame, connection)
        else:
            self._dead_letter(frame, connection, receive_ns)

    def _on_trade(self, pending: _Pending) -> None:
        frame = pending.frame
        key = (frame.product_id, frame.family)
        sequencer = self._sequencers.get(key)
        if sequencer is None:  # e.g. a match while only ticker is configured
            self._dead_letter(
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
            self._emit_trade(ready)
        if sequencer.pending:  # only a gap makes trades wait: the common path skips all this
            self._gap_signals[key].set()
            self._pending_gauges[frame.product_id].set(sequencer.pending)
        elif offer.ready and len(offer.ready) > 1:  # a gap just closed
            self._pending_gauges[frame.product_id].set(0)

    def _emit_trade(self, pending: _Pending) -> None:
        frame = pending.frame
        self._outbox.put(
            OutRecord(
                topic=self.settings.topics.raw,
                key=frame.product_id,
                value=frame.raw,
                timestamp_ms=frame.time_ms,
                headers=_headers(pending.receive_ns, pending.connection, pending.backfill),
                product=frame.product_id,
                kind="backfill" if pending.backfill else "trade",
                receive_ns=pending.receive_ns,
            )
        )

    def _on_heartbeat(self, frame: HeartbeatFrame, connection: int, receive_ns: int) -> None:
        product = frame.product_id
        self._last_heartbeat_trade[product] = max(
            frame.last_trade_id, self._last_heartbeat_trade.get(product, -1)
        )
        for key in self._keys:
            sequencer = self._sequencers[key]
            if key[0] == product and sequencer.gap_to(frame.last_trade_id) is not None:
                self._gap_signals[key].set()
        if frame.time_us <= self._last_heartbeat_us.get(product, -1):
            return  # the same heartbeat from another socket, or an older one
        self._last_heartbeat_us[product] = frame.time_us
        self._outbox.put(
            OutRecord(
                topic=self.settings.topics.raw,
                key=product,
                value=frame.raw,
                timestamp_ms=frame.time_us // 1000,
                headers=_headers(receive_ns, connection, False),
                product=product,
                kind="heartbeat",
                receive_ns=receive_ns,
            )
        )

    def _on_control(self, frame: ControlFrame, connection: int) -> None:
        if frame.type == "subscriptions":
            self._health.last_subscribed_at = time.monotonic()
            log.info(
                "subscribed",
                extra={"connection": connection, "channels": frame.body.get("channels")},
            )
            return
        self.metrics.exchange_errors.inc()
        self._health.last_exchange_error = frame.body
        self._health.last_error_at = time.monotonic()
        log.error("the exchange sent an error", extra={"connection": connection, **_safe(frame)})

    def _dead_letter(self, frame: RejectedFrame, connection: int, receive_ns: int) -> None:
        self.metrics.dead_letters.labels(frame.product, frame.reason.value).inc()
        if frame.reason not in self._health.logged_rejects:  # once per kind, with a sample
            self._health.logged_rejects.add(frame.reason)
            log.warning(
                "rejected a frame; it goes to the dead-letter topic (logged once per reason)",
                extra={
                    "reason": frame.reason.value,
                    "detail": frame.detail,
                    "sample": frame.raw[:300].decode("utf-8", "replace"),
                },
            )
        self._outbox.put(
            OutRecord(
                topic=self.settings.topics.dead_letter,
                key="",
                value=frame.raw,
                timestamp_ms=None,
                headers=(
                    *_headers(receive_ns, connection, False),
                    ("reason", frame.reason.value.encode()),
                    ("detail", frame.detail.encode("utf-8", "replace")[:500]),
                ),
                product=frame.product,
                kind="dead_letter",
                receive_ns=receive_ns,
            )
        )

    # ---- gaps ---------------------------------------------------------------------------

    def _current_gap(self, key: Key) -> Gap | None:
        sequencer = self._sequencers[key]
        gap = sequencer.gap()
        if gap is None and key[0] in self._last_heartbeat_trade:
            gap = sequencer.gap_to(self._last_heartbeat_trade[key[0]])
        return gap

    async def _gap_worker(self, key: Key, backfiller: TradeBackfiller) -> None:
        """Fill the gaps of one product and family: wait for a slower socket, then REST."""
        product, family = key
        signal = self._gap_signals[key]
        sequencer = self._sequencers[key]
        ingest = self.settings.ingest
        attempts = 0
        while True:
            await signal.wait()
            signal.clear()
            if not sequencer.overflowing:
                await asyncio.sleep(ingest.gap_grace_s)  # a deliberate grace period
            gap = self._current_gap(key)
            if gap is None:
                attempts = 0
                continue
            if attempts == 0:
                self.metrics.gaps.labels(product).inc()
                log.info(
                    "trade-id gap; backfilling",
                    extra={"product_id": product, "first": gap.first, "last": gap.last},
                )
            try:
                trades = await backfiller.fetch(product, family, gap)
            except BackfillError as exc:
                log.warning("backfill failed", extra={"product_id": product, "error": str(exc)})
                trades = []
            now = time.time_ns()
            for trade in trades:
                offer = sequencer.offer(trade.trade_id, _Pending(trade, -1, now, backfill=True))
                if not offer.duplicate:
                    self.metrics.trades_backfilled.labels(product).inc()
                for ready in offer.ready:
                    self._emit_trade(ready)
            still = self._current_gap(key)
            if still is not None and still.first == gap.first:
                attempts += 1
                if attempts >= ingest.gap_attempts:
                    self._give_up(key, still)
                    attempts = 0
            else:
                attempts = 0
            self.metrics.pending_trades.labels(product).set(sequencer.pending)
            if self._current_gap(key) is not None:
                signal.set()
            await self._outbox.room()

    def _give_up(self, key: Key, gap: Gap) -> None:
        product = key[0]
        self.metrics.trades_unfilled.labels(product).inc(gap.size)
        log.error(
            "gap could not be filled by any socket or by REST; skipping it",
            extra={"product_id": product, "first": gap.first, "last": gap.last},
        )
        for ready in self._sequencers[key].give_up(gap):
            self._emit_trade(ready)


class _KafkaUnavailable(Exception):
    pass


def _headers(receive_ns: int, connection: int, backfill: bool) -> tuple[tuple[str, bytes], ...]:
    return (
        ("receive_time_ns", str(receive_ns).encode()),
        ("connection_id", str(connection).encode()),
        ("backfill", b"true" if backfill else b"false"),
    )


def _safe(frame: ControlFrame) -> dict[str, str]:
    return {
        "exchange_message": str(frame.body.get("message", ""))[:200],
        "exchange_reason": str(frame.body.get("reason", ""))[:200],
    }
