"""The ingestor service: redundant feed connections -> sequencers -> one ordered outbox ->
Kafka, with REST backfill of gaps, recovery from the log, probes and metrics.

A session is one producer and one set of connections. A Kafka delivery that fails for good
ends the session; the next one re-reads the log, so what landed is never repeated and what
did not is backfilled. SIGTERM ends the last session: stop reading, flush, exit.

A trade id (or a heartbeat's `last_trade_id`) more than `max_trade_id_jump` above the
highest id trusted for its product is a suspect: it waits aside, never touching a sequencer,
until the exchange's REST API confirms that such a trade exists; unconfirmed, it is
dead-lettered and counted. One forged frame can then neither skip a gap nor make every real
trade after it look like a duplicate.
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
from cryptopipeline.ingestor._advanced import backfiller_for, connections_for, http_verify
from cryptopipeline.ingestor._backfill import BackfillError, TradeBackfiller
from cryptopipeline.ingestor._connection import FeedConnection, time_window
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

_REST_LAG_IDS = 1_000
"""A suspect id is confirmed if it is at most this far above REST's newest trade id: REST
may trail the feed by a moment (a second of the busiest product is far fewer trades), and a
forged jump is far more than this (max_trade_id_jump, 100,000 by default)."""


class _SessionOver(Exception):
    """Raised inside the reader group to end it: a stop was asked for, or Kafka failed."""


@dataclass(slots=True)
class _Pending:
    frame: TradeFrame
    connection: int
    receive_ns: int
    backfill: bool


@dataclass(slots=True)
class _Suspect:
    """A trade or heartbeat whose id is implausibly far ahead, waiting for REST to confirm."""

    trade_id: int
    trade: _Pending | None
    heartbeat: HeartbeatFrame | None
    connection: int
    receive_ns: int


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
        self._families = families
        self._products = list(settings.exchange.products)
        self._sequencers: dict[Key, TradeSequencer[_Pending]] = {}
        self._gap_signals: dict[Key, asyncio.Event] = {}
        self._last_heartbeat_us: dict[str, int] = {}
        self._last_heartbeat_trade: dict[str, int] = {}
        self._trusted: dict[str, int] = {}  # per product: the highest trade id known real
        self._suspects: dict[str, list[_Suspect]] = {p: [] for p in self._products}
        self._suspect_signals: dict[str, asyncio.Event] = {}
        self._jump = settings.ingest.max_trade_id_jump
        self._seen_ns: dict[str, int] = {}  # per product: last trade frame received
        # per product: the first trade frame received since the product last released one
        self._waiting_ns: dict[str, int] = {}
        self._stuck: set[str] = set()
        self._carried: list[OutRecord] = []  # dead letters of refused records, kept until sent
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
        stuck = sorted(self._stuck_products()) if health.producing else []
        ok = health.producing and bool(subscribed) and not error_is_current and not stuck
        return ok, {
            "producing": health.producing,
            "subscribed_connections": subscribed,
            "last_exchange_error": health.last_exchange_error,
            "buffered_records": len(self._outbox),
            "stuck_products": stuck,
        }

    def _stuck_products(self) -> set[str]:
        """Products that receive trades but released none for `stuck_after_s`, or whose
        suspect ids have waited that long for confirmation."""
        limit = int(self.settings.ingest.stuck_after_s * 1e9)
        now = time.time_ns()
        stuck = set()
        for product in self._products:
            # Trades kept arriving for `limit` and none went out. Not "now - last release": a
            # quiet product's next trade, held a moment by a gap, is not stuck.
            waiting = self._waiting_ns.get(product)
            if waiting is not None and self._seen_ns[product] - waiting > limit:
                stuck.add(product)
            suspects = self._suspects[product]
            if suspects and now - suspects[0].receive_ns > limit:
                stuck.add(product)
        return stuck

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
                verify=http_verify(settings),
            ) as http:
                backfiller = backfiller_for(settings, http, time_window(settings.ingest))
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
            on_refused=self._refused_by_kafka,
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
        for carried in self._carried:  # a refusal ended the last session before they went
            self._outbox.put(carried)
        self._sequencers = {
            key: TradeSequencer(
                next_id=(last[key] + 1) if key in last else None,
                max_pending=settings.ingest.max_pending_trades,
            )
            for key in self._keys
        }
        self._gap_signals = {key: asyncio.Event() for key in self._keys}
        self._trusted = {}
        for (product, _), trade_id in last.items():
            self._trusted[product] = max(trade_id, self._trusted.get(product, -1))
        self._suspects = {p: [] for p in self._products}
        self._suspect_signals = {p: asyncio.Event() for p in self._products}
        self._seen_ns = {}
        self._waiting_ns = {}
        self._stuck = set()
        self._connections = connections_for(settings, self, self.metrics, backfiller)
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
                        for product in self._products:
                            readers.create_task(self._confirm_worker(product, backfiller))
                        readers.create_task(self._stuck_watch())
                        readers.create_task(self._watch(stop, publisher))
                except* _SessionOver:
                    pass
                self._outbox.close()
                if publisher.failed.is_set():
                    writer.cancel()
        finally:
            self._health.producing = False
            self._connections = []
            if not publisher.failed.is_set():
                self._carried = []  # flushed with the rest
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
            await publisher.publish(record)

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
        product, trade_id = frame.product_id, frame.trade_id
        self._seen_ns[product] = pending.receive_ns
        self._waiting_ns.setdefault(product, pending.receive_ns)
        trusted = self._trusted.get(product)
        if trusted is None or trade_id > trusted:
            if trusted is not None and trade_id - trusted > self._jump:
                self._suspect(product, _Suspect(trade_id, pending, None, pending.connection,
                                                pending.receive_ns))  # fmt: skip
                return
            self._trusted[product] = trade_id
        key = (product, frame.family)
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
        self._waiting_ns.pop(frame.product_id, None)
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
        trusted = self._trusted.get(product)
        if trusted is not None and frame.last_trade_id - trusted > self._jump:
            self._suspect(
                product, _Suspect(frame.last_trade_id, None, frame, connection, receive_ns)
            )
            return
        self._last_heartbeat_trade[product] = max(
            frame.last_trade_id, self._last_heartbeat_trade.get(product, -1)
        )
        for family in self._families:  # this product's keys only: every key, per heartbeat,
            key = (product, family)  # cost O(products^2) a second
            if self._sequencers[key].gap_to(frame.last_trade_id) is not None:
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
                extra={"connection": connection, "channels": str(frame.body.get("channels"))[:500]},
            )
            return
        self.metrics.exchange_errors.inc()
        self._health.last_exchange_error = {"type": "error", **_safe(frame)}
        self._health.last_error_at = time.monotonic()
        log.error("the exchange sent an error", extra={"connection": connection, **_safe(frame)})

    def _dead_letter(
        self,
        frame: RejectedFrame,
        connection: int,
        receive_ns: int,
        extra: tuple[tuple[str, bytes], ...] = (),
    ) -> OutRecord:
        """Count, log once per reason, and write `frame` to the dead-letter topic, its value cut
        to `dead_letter_max_bytes` (headers `original_bytes` and `truncated` say so)."""
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
        raw, limit = frame.raw, self.settings.ingest.dead_letter_max_bytes
        record = OutRecord(
            topic=self.settings.topics.dead_letter,
            key="",
            value=raw[:limit],
            timestamp_ms=None,
            headers=(
                *_headers(receive_ns, connection, False),
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
        self._outbox.put(record)
        return record

    def _refused_by_kafka(self, record: OutRecord, error: BaseException) -> None:
        """Kafka refused a raw record for what it is: dead-letter it (never a restart loop);
        the dead letter survives the session restart the refusal may force."""
        dead = self._dead_letter(
            RejectedFrame(
                Reject.KAFKA_REFUSED, f"{type(error).__name__}: {error}"[:400], record.value,
                record.product,
            ),
            int(dict(record.headers).get("connection_id", b"-1")),
            record.receive_ns,
            (("kind", record.kind.encode()), ("timestamp_ms", str(record.timestamp_ms).encode())),
        )  # fmt: skip
        self._carried.append(dead)

    # ---- implausible ids ----------------------------------------------------------------

    def _suspect(self, product: str, suspect: _Suspect) -> None:
        suspects = self._suspects[product]
        if len(suspects) >= self.settings.ingest.max_pending_trades:
            self._reject_suspect(product, suspect, "too many suspects wait for confirmation")
            return
        if not suspects:
            log.warning(
                "trade id implausibly far ahead; confirming over REST before trusting it",
                extra={
                    "product_id": product,
                    "trade_id": suspect.trade_id,
                    "trusted": self._trusted.get(product),
                    "max_trade_id_jump": self._jump,
                },
            )
        suspects.append(suspect)
        self._suspect_signals[product].set()

    def _reject_suspect(self, product: str, suspect: _Suspect, why: str) -> None:
        self.metrics.implausible_ids.labels(product).inc()
        frame = suspect.trade.frame if suspect.trade is not None else suspect.heartbeat
        assert frame is not None
        log.warning(
            "implausible trade id dead-lettered",
            extra={"product_id": product, "trade_id": suspect.trade_id, "why": why},
        )
        self._dead_letter(
            RejectedFrame(
                Reject.IMPLAUSIBLE_TRADE_ID,
                f"id {suspect.trade_id} vs trusted {self._trusted.get(product)}: {why}",
                frame.raw,
                product,
            ),
            suspect.connection,
            suspect.receive_ns,
        )

    async def _confirm_worker(self, product: str, backfiller: TradeBackfiller) -> None:
        """Ask REST for the newest trade id; let confirmed suspects in, dead-letter the rest."""
        signal = self._suspect_signals[product]
        while True:
            await signal.wait()
            signal.clear()
            if not self._suspects[product]:
                continue
            try:
                latest = await backfiller.latest_trade_id(product)
            except BackfillError as exc:
                log.warning(
                    "cannot confirm a suspect trade id yet (the product waits)",
                    extra={"product_id": product, "error": str(exc)[:300]},
                )
                await asyncio.sleep(max(self.settings.ingest.gap_grace_s, 0.5))
                signal.set()
                continue
            suspects, self._suspects[product] = self._suspects[product], []
            for suspect in sorted(suspects, key=lambda s: s.trade_id):
                if latest is not None and suspect.trade_id <= latest + _REST_LAG_IDS:
                    self._trusted[product] = max(
                        suspect.trade_id, self._trusted.get(product, suspect.trade_id)
                    )
                    if suspect.trade is not None:
                        self._on_trade(suspect.trade)
                    elif suspect.heartbeat is not None:
                        self._on_heartbeat(
                            suspect.heartbeat, suspect.connection, suspect.receive_ns
                        )
                else:
                    self._reject_suspect(
                        product, suspect, f"the exchange's newest trade id is {latest}"
                    )
            await self._outbox.room()

    async def _stuck_watch(self) -> None:
        """Once a second: log and gauge products entering or leaving the stuck state."""
        gauges = {p: self.metrics.stuck.labels(p) for p in self._products}
        while True:
            stuck = self._stuck_products()
            for product in stuck - self._stuck:
                log.error(
                    "product stuck: trades arrive but none is published (see /readyz)",
                    extra={"product_id": product},
                )
            for product in self._products:
                gauges[product].set(1 if product in stuck else 0)
            self._stuck = stuck
            await asyncio.sleep(1.0)  # a periodic check, not a synchronisation

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
