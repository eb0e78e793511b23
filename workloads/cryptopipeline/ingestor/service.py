"""The ingestor service: redundant feed connections -> the intake (trusted ids, sequencers)
-> one ordered outbox -> Kafka, with REST backfill of gaps, recovery from the log, probes and
metrics. The data path is in `_intake`, `_trusted` and `_gaps`; this module runs sessions.

A session is one producer and one set of connections. A Kafka delivery that fails for good
ends the session; the next one re-reads the log, so what landed is never repeated and what
did not is backfilled. SIGTERM ends the last session: stop reading, flush, exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from cryptopipeline.core import ensure_topics
from cryptopipeline.core.ops import OpsServer
from cryptopipeline.ingestor._advanced import backfiller_for, connections_for, http_verify
from cryptopipeline.ingestor._backfill import TradeBackfiller
from cryptopipeline.ingestor._connection import FeedConnection, time_window
from cryptopipeline.ingestor._decode import FeedFrame
from cryptopipeline.ingestor._gaps import GapFiller
from cryptopipeline.ingestor._intake import Health, Intake
from cryptopipeline.ingestor._metrics import IngestorMetrics
from cryptopipeline.ingestor._publisher import RawPublisher
from cryptopipeline.ingestor._recovery import last_published_trades
from cryptopipeline.ingestor._settings import IngestorSettings

log = logging.getLogger(__name__)


class _SessionOver(Exception):
    """Raised inside the reader group to end it: a stop was asked for, or Kafka failed."""


class Ingestor:
    """The ingestor program: probes, its topics, then one session after another until
    stopped (a session ends early only when Kafka fails)."""

    def __init__(self, settings: IngestorSettings, metrics: IngestorMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or IngestorMetrics(pipeline=settings.pipeline_name)
        self._health = Health()
        self._intake = Intake(settings, self.metrics, self._health)
        self._stuck: set[str] = set()
        self._connections: list[FeedConnection] = []
        self.ops: OpsServer | None = None

    # ---- probes -------------------------------------------------------------------------

    def live(self) -> tuple[bool, dict[str, Any]]:
        return True, {"sessions": self._health.sessions}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        health = self._health
        subscribed = [c.conn_id for c in self._connections if c.subscribed]
        error_is_current = health.last_error_at > health.last_subscribed_at
        stuck = sorted(self._intake.stuck_products()) if health.producing else []
        ok = health.producing and bool(subscribed) and not error_is_current and not stuck
        return ok, {
            "producing": health.producing,
            "subscribed_connections": subscribed,
            "last_exchange_error": health.last_exchange_error,
            "buffered_records": len(self._intake.outbox),
            "stuck_products": stuck,
        }

    # ---- the frame sink (the intake's), for whoever holds the ingestor ------------------

    def accept(self, frame: FeedFrame, connection: int, receive_ns: int) -> None:
        """Take one decoded frame as a connection would; never waits (see `full`)."""
        self._intake.accept(frame, connection, receive_ns)

    @property
    def full(self) -> bool:
        return self._intake.full

    async def room(self) -> None:
        await self._intake.room()

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
            on_refused=self._intake.refused_by_kafka,
        )
        try:
            await publisher.start()
            last = await last_published_trades(
                settings.kafka,
                settings.topics.raw,
                set(self._intake.keys),
                settings.ingest.recovery_scan_limit,
            )
        except Exception as exc:
            with contextlib.suppress(Exception):
                await publisher.stop()
            raise _KafkaUnavailable(str(exc)) from exc
        self._health.sessions += 1
        self._intake.begin_session(last)
        self._stuck = set()
        self._connections = connections_for(settings, self._intake, self.metrics, backfiller)
        self._health.producing = True
        gaps = GapFiller(self._intake, backfiller, self.metrics)
        try:
            async with asyncio.TaskGroup() as session:
                writer = session.create_task(self._write(publisher))
                try:
                    async with asyncio.TaskGroup() as readers:
                        for connection in self._connections:
                            readers.create_task(connection.run())
                        for key in self._intake.keys:
                            readers.create_task(gaps.run(key))
                        for product in self._intake.products:
                            readers.create_task(self._intake.confirm(product, backfiller))
                        readers.create_task(self._stuck_watch())
                        readers.create_task(self._watch(stop, publisher))
                except* _SessionOver:
                    pass
                self._intake.outbox.close()
                if publisher.failed.is_set():
                    writer.cancel()
        finally:
            self._health.producing = False
            self._connections = []
            if not publisher.failed.is_set():
                self._intake.carried_sent()  # flushed with the rest
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
        while (record := await self._intake.outbox.get()) is not None:
            await publisher.publish(record)

    async def _stuck_watch(self) -> None:
        """Once a second: log and gauge products entering or leaving the stuck state."""
        products = self._intake.products
        gauges = {p: self.metrics.stuck.labels(p) for p in products}
        while True:
            stuck = self._intake.stuck_products()
            for product in stuck - self._stuck:
                log.error(
                    "product stuck: trades arrive but none is published (see /readyz)",
                    extra={"product_id": product},
                )
            for product in products:
                gauges[product].set(1 if product in stuck else 0)
            self._stuck = stuck
            await asyncio.sleep(1.0)  # a periodic check, not a synchronisation


class _KafkaUnavailable(Exception):
    pass
