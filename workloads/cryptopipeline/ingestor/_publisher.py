"""Hand records to Kafka in order, bounded: at most N unacknowledged, then callers wait.

Idempotent producer with acks=all, so broker retries never duplicate. A delivery that fails
for good sets `failed`: the service then restarts its session from what the log holds.
A record Kafka refuses for what it is (its timestamp, its size) must not cause a restart
loop. A refused heartbeat goes to `on_refused` (the service dead-letters it); a refused dead
letter is counted and dropped, never retried. Kafka refuses a batch as a whole, and the
idempotent producer cannot go on after a refused batch (the next send fails with
OutOfOrderSequenceNumber), so a refusal still ends the session once: the trades that rode in
the refused batch are not in the log, and the next session backfills them from REST, as
after any failed delivery. A trade is never dead-lettered for a refusal: the edge only lets
through times Kafka accepts (`max_future_s` is kept below the topic's limit), so a refused
trade is always a batch-mate, and the backfill brings it back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from cryptopipeline.core import KafkaSettings
from cryptopipeline.core.kafka import new_producer
from cryptopipeline.ingestor._metrics import IngestorMetrics
from cryptopipeline.ingestor._outbox import OutRecord

log = logging.getLogger(__name__)

RECORD_REFUSALS: tuple[type[Exception], ...] = (
    InvalidTimestampError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
)
"""Errors about a record (or the batch it rode in), not about Kafka being unavailable."""

MAX_REQUEST_BYTES = 1_048_576
"""The producer's request limit (aiokafka's and Kafka's default); dead letters stay far below."""


class RawPublisher:
    def __init__(
        self,
        kafka: KafkaSettings,
        metrics: IngestorMetrics,
        *,
        max_buffered: int,
        linger_ms: int,
        delivery_timeout_ms: int,
        on_refused: Callable[[OutRecord, BaseException], None] | None = None,
    ) -> None:
        self._producer = new_producer(
            kafka,
            "ingestor",
            linger_ms=linger_ms,
            request_timeout_ms=delivery_timeout_ms,
            max_batch_size=256 * 1024,
            max_request_size=MAX_REQUEST_BYTES,
        )
        self._metrics = metrics
        self._on_refused = on_refused
        self._capacity = asyncio.Semaphore(max_buffered)
        self._buffered = 0
        self._published: dict[tuple[str, str], Any] = {}
        self._latency = metrics.produce_latency
        self.failed = asyncio.Event()
        self.failure: BaseException | None = None
        metrics.buffer_capacity.set(max_buffered)
        # read when scraped, not set twice per record on the hot path
        metrics.buffered_records.set_function(lambda: self._buffered)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        """Flush what is buffered (unless Kafka failed), then close the producer."""
        await self._producer.stop()

    @property
    def buffered(self) -> int:
        return self._buffered

    async def publish(self, record: OutRecord) -> None:
        """Append one record; waits while the buffer is full (the reader then stops reading)."""
        await self._capacity.acquire()
        self._buffered += 1
        try:
            delivery = await self._producer.send(
                record.topic,
                value=record.value,
                key=record.key.encode(),
                timestamp_ms=record.timestamp_ms,
                headers=list(record.headers),
            )
        except RECORD_REFUSALS as exc:  # refused before sending (the size check is local)
            self._settle()
            self._refused(record, exc)
            return
        except BaseException as exc:
            self._settle()
            self._fail(exc)
            raise
        delivery.add_done_callback(lambda future: self._acked(future, record))

    def _settle(self) -> None:
        self._buffered -= 1
        self._capacity.release()

    def _acked(self, future: asyncio.Future[object], record: OutRecord) -> None:
        self._settle()
        if future.cancelled():
            self._fail(asyncio.CancelledError())
            return
        error = future.exception()
        if error is not None:
            if isinstance(error, RECORD_REFUSALS):
                self._refused(record, error)
            else:
                self._fail(error)
            return
        product, kind = record.product, record.kind
        child = self._published.get((product, kind))
        if child is None:
            child = self._published[(product, kind)] = self._metrics.records_published.labels(
                product, kind
            )
        child.inc()
        self._latency.observe((time.time_ns() - record.receive_ns) / 1e9)

    def _refused(self, record: OutRecord, error: BaseException) -> None:
        self._metrics.kafka_refused.labels(record.product, record.kind).inc()
        if record.kind in ("trade", "backfill"):
            self._fail(error)  # not in the log: the next session backfills it
            return
        log.error(
            "Kafka refused a record; it goes to the dead-letter topic"
            if record.kind != "dead_letter" and self._on_refused is not None
            else "Kafka refused a dead-letter record; dropped (counted in kafka_refused_total)",
            extra={
                "product_id": record.product,
                "kind": record.kind,
                "bytes": len(record.value),
                "error": repr(error)[:300],
            },
        )
        if record.kind != "dead_letter" and self._on_refused is not None:
            self._on_refused(record, error)

    def _fail(self, error: BaseException) -> None:
        if not self.failed.is_set():
            self.failure = error
            self.failed.set()
            log.error("Kafka delivery failed", extra={"error": repr(error)})
