"""The signaler service: consume raw ticks, fold them through the domain engine per
partition, and commit signals, engine checkpoints and consumer offsets in one Kafka
transaction per partition and batch. A crash at any point leaves either all three or none.

Replicas share the raw partitions through Kafka's consumer-group protocol; each partition
has its own transactional producer, so whoever owns a partition fences its previous owner
(signaler/_partitions.py). Run one replica or as many as the raw topic has partitions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from cryptopipeline.core import TopicSpec
from cryptopipeline.core.kafka import ensure_topics, new_consumer
from cryptopipeline.core.ops import OpsServer
from cryptopipeline.signaler._metrics import SignalerMetrics
from cryptopipeline.signaler._partitions import Partitions
from cryptopipeline.signaler._settings import SignalerSettings

log = logging.getLogger(__name__)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Give partitions back (committing their work) and take new ones, never mid-batch."""

    def __init__(self, partitions: Partitions, consumer: AIOKafkaConsumer) -> None:
        self.partitions = partitions
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.partitions.lock:
            await self.partitions.give_back(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        async with self.partitions.lock:
            await self.partitions.take(self.consumer, assigned)


class Signaler:
    def __init__(self, settings: SignalerSettings, metrics: SignalerMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or SignalerMetrics(pipeline=settings.pipeline_name)
        self.partitions = Partitions(settings, self.metrics)
        self._running = False
        self.ops: OpsServer | None = None

    @property
    def batches(self) -> int:
        """Commit rounds so far (each one transaction per partition with work)."""
        return self.partitions.commits

    def live(self) -> tuple[bool, dict[str, Any]]:
        return True, {}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        owned = sorted(self.partitions.owned)
        return self._running, {"partitions": owned, "batches": self.batches}

    def _topic_specs(self) -> list[TopicSpec]:
        settings, options = self.settings, self.settings.signaler
        defaults = settings.topic_defaults
        specs = [
            spec for spec in settings.topic_specs()
            if spec.name in (settings.topics.raw, settings.topics.trade_signals)
        ]  # fmt: skip
        return [
            *specs,
            defaults.spec(options.dead_letter_topic),
            TopicSpec(
                name=options.state_topic,
                partitions=1,
                replication_factor=defaults.replication_factor,
                retention_ms=-1,
                extra_config={"cleanup.policy": "compact"},
            ),
        ]

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        options = settings.signaler
        self.ops = OpsServer(
            self.metrics.registry, live=self.live, ready=self.ready,
            host=settings.ops.host, port=settings.ops.port,
        )  # fmt: skip
        async with self.ops:
            await ensure_topics(settings.kafka, self._topic_specs())
            consumer = new_consumer(
                settings.kafka, "signaler",
                group_id=options.group_id,
                auto_offset_reset=options.start_from,
                max_poll_records=options.max_batch_records,
            )  # fmt: skip
            await consumer.start()
            try:
                consumer.subscribe(
                    [settings.topics.raw], listener=_Rebalance(self.partitions, consumer)
                )
                self._running = True
                await self._loop(stop, consumer)
            finally:
                self._running = False
                try:
                    async with self.partitions.lock:
                        await self.partitions.commit()  # what was folded since the last
                finally:
                    await consumer.stop()  # leaves the group: the others take over at once
                    await self.partitions.close()

    async def _loop(self, stop: asyncio.Event, consumer: AIOKafkaConsumer) -> None:
        options = self.settings.signaler
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                fetch = asyncio.ensure_future(
                    consumer.getmany(
                        timeout_ms=max(options.batch_wait_ms, 1),
                        max_records=options.max_batch_records,
                    )
                )
                await asyncio.wait([fetch, stopped], return_when=asyncio.FIRST_COMPLETED)
                if not fetch.done():
                    fetch.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await fetch
                    break
                async with self.partitions.lock:
                    await self._process(fetch.result())
                    self.partitions.update_lag(consumer)
        finally:
            stopped.cancel()

    async def _process(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """Fold one batch and commit its outputs; SIGTERM waits for this to finish."""
        started = time.monotonic()
        partitions = self.partitions
        for tp, records in batch.items():
            if records:
                partitions.fold(tp, records)
        if not partitions.has_uncommitted():
            return
        interval_s = self.settings.signaler.checkpoint_interval_ms / 1000
        if not partitions.has_output() and time.monotonic() - partitions.last_commit < interval_s:
            # Nothing to publish: carry the position on in memory. A crash replays from the
            # last checkpoint and, deterministic, reaches this same state and emits nothing.
            return
        await partitions.commit()
        if batch:
            self.metrics.latency.observe(time.monotonic() - started)
