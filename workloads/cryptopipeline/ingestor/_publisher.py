"""Hand records to Kafka in order, bounded: at most N unacknowledged, then callers wait.

Idempotent producer with acks=all, so broker retries never duplicate. A delivery that fails
for good sets `failed`: the service then restarts its session from what the log holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from cryptopipeline.core import KafkaSettings
from cryptopipeline.ingestor._metrics import IngestorMetrics

log = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes]]


class RawPublisher:
    def __init__(
        self,
        kafka: KafkaSettings,
        metrics: IngestorMetrics,
        *,
        max_buffered: int,
        linger_ms: int,
        delivery_timeout_ms: int,
    ) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=kafka.bootstrap_servers,
            client_id=f"{kafka.client_id}-ingestor",
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            request_timeout_ms=delivery_timeout_ms,
            max_batch_size=256 * 1024,
        )
        self._metrics = metrics
        self._capacity = asyncio.Semaphore(max_buffered)
        self._buffered = 0
        self._published: dict[tuple[str, str], Any] = {}
        self._latency = metrics.produce_latency
        self.failed = asyncio.Event()
        self.failure: BaseException | None = None
        metrics.buffer_capacity.set(max_buffered)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        """Flush what is buffered (unless Kafka failed), then close the producer."""
        await self._producer.stop()

    @property
    def buffered(self) -> int:
        return self._buffered

    async def publish(
        self,
        topic: str,
        *,
        key: str,
        value: bytes,
        timestamp_ms: int | None,
        headers: Headers,
        product: str,
        kind: str,
        receive_ns: int,
    ) -> None:
        """Append one record; waits while the buffer is full (the reader then stops reading)."""
        await self._capacity.acquire()
        self._buffered += 1
        self._metrics.buffered_records.set(self._buffered)
        try:
            delivery = await self._producer.send(
                topic,
                value=value,
                key=key.encode(),
                timestamp_ms=timestamp_ms,
                headers=list(headers),
            )
        except BaseException as exc:
            self._settle()
            self._fail(exc)
            raise
        delivery.add_done_callback(lambda future: self._acked(future, product, kind, receive_ns))

    def _settle(self) -> None:
        self._buffered -= 1
        self._metrics.buffered_records.set(self._buffered)
        self._capacity.release()

    def _acked(self, future: asyncio.Future[object], product: str, kind: str, t0: int) -> None:
        self._settle()
        if future.cancelled():
            self._fail(asyncio.CancelledError())
            return
        error = future.exception()
        if error is not None:
            self._fail(error)
            return
        child = self._published.get((product, kind))
        if child is None:
            child = self._published[(product, kind)] = self._metrics.records_published.labels(
                product, kind
            )
        child.inc()
        self._latency.observe((time.time_ns() - t0) / 1e9)

    def _fail(self, error: BaseException) -> None:
        if not self.failed.is_set():
            self.failure = error
            self.failed.set()
            log.error("Kafka delivery failed", extra={"error": repr(error)})
