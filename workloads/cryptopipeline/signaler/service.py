"""The signaler service: consume raw ticks, fold them through the domain engine per
partition, and commit signals, engine checkpoints and consumer offsets in one Kafka
transaction per batch. A crash at any point leaves either all three or none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from cryptopipeline.core import TopicSpec, ensure_topics
from cryptopipeline.core.ops import OpsServer
from cryptopipeline.core.records import TradeSignal
from cryptopipeline.signaler._engine import PartitionEngine
from cryptopipeline.signaler._metrics import SignalerMetrics
from cryptopipeline.signaler._settings import SignalerSettings
from cryptopipeline.signaler._state import load_checkpoints, state_key

log = logging.getLogger(__name__)


class Signaler:
    def __init__(self, settings: SignalerSettings, metrics: SignalerMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or SignalerMetrics(pipeline=settings.pipeline_name)
        self.engines: dict[int, PartitionEngine] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._running = False
        self.ops: OpsServer | None = None
        self.batches = 0
        self._positions: dict[TopicPartition, int] = {}
        self._uncommitted: dict[TopicPartition, OffsetAndMetadata] = {}
        self._last_commit = 0.0

    def live(self) -> tuple[bool, dict[str, Any]]:
        return True, {}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        return self._running, {"partitions": sorted(self.engines), "batches": self.batches}

    def _new_engine(self, checkpoint: dict[str, Any] | None) -> PartitionEngine:
        candles = self.settings.candles
        if checkpoint is None:
            return PartitionEngine(candles.intervals_s, candles.grace_s, self.settings.strategies)
        return PartitionEngine.restore(checkpoint["engine"], self.settings.strategies)

    async def _assign(self, consumer: AIOKafkaConsumer) -> None:
        """Own every raw partition; restore each engine from its checkpoint and seek to it.

        Manual assignment, not a consumer group's: one active signaler per pipeline, and a
        replacement fences its predecessor through the shared transactional id.
        """
        settings, options = self.settings, self.settings.signaler
        raw = settings.topics.raw
        await consumer._client.force_metadata_update()
        partitions = sorted(consumer.partitions_for_topic(raw) or ())
        if not partitions:
            raise RuntimeError(f"raw topic {raw!r} has no partitions")
        tps = [TopicPartition(raw, p) for p in partitions]
        consumer.assign(tps)
        checkpoints = await load_checkpoints(settings.kafka, options.state_topic)
        for tp in tps:
            checkpoint = checkpoints.get(state_key(raw, tp.partition))
            self.engines[tp.partition] = self._new_engine(checkpoint)
            if checkpoint is not None:
                consumer.seek(tp, int(checkpoint["offset"]))
            elif options.start_from == "earliest":
                await consumer.seek_to_beginning(tp)
            else:
                await consumer.seek_to_end(tp)
            log.info(
                "partition restored",
                extra={
                    "partition": tp.partition,
                    "from": checkpoint["offset"] if checkpoint else options.start_from,
                },
            )

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        options = settings.signaler
        self.ops = OpsServer(
            self.metrics.registry, live=self.live, ready=self.ready,
            host=settings.ops.host, port=settings.ops.port,
        )  # fmt: skip
        async with self.ops:
            defaults = settings.topic_defaults
            specs = [
                spec for spec in settings.topic_specs()
                if spec.name in (settings.topics.raw, settings.topics.trade_signals)
            ]  # fmt: skip
            specs += [
                TopicSpec(
                    name=options.dead_letter_topic,
                    partitions=defaults.partitions,
                    replication_factor=defaults.replication_factor,
                    retention_ms=defaults.retention_ms,
                ),
                TopicSpec(
                    name=options.state_topic,
                    partitions=1,
                    replication_factor=defaults.replication_factor,
                    retention_ms=-1,
                    extra_config={"cleanup.policy": "compact"},
                ),
            ]
            await ensure_topics(settings.kafka, specs)
            producer = AIOKafkaProducer(
                bootstrap_servers=settings.kafka.bootstrap_servers,
                client_id=f"{settings.kafka.client_id}-signaler",
                transactional_id=options.transactional_id,
                enable_idempotence=True,
                acks="all",
                linger_ms=0,
                # Right after a commit the broker may answer CONCURRENT_TRANSACTIONS while it
                # writes the markers; the default 100 ms backoff made that the p99 latency.
                retry_backoff_ms=5,
            )
            consumer = AIOKafkaConsumer(
                bootstrap_servers=settings.kafka.bootstrap_servers,
                client_id=f"{settings.kafka.client_id}-signaler",
                group_id=options.group_id,
                enable_auto_commit=False,
                isolation_level="read_committed",
                auto_offset_reset=options.start_from,
                max_poll_records=options.max_batch_records,
            )
            self._consumer = consumer
            await producer.start()  # fences and aborts a previous incarnation's transaction
            try:
                await consumer.start()
                try:
                    await self._assign(consumer)
                    self._running = True
                    await self._loop(stop, consumer, producer)
                finally:
                    self._running = False
                    await consumer.stop()
            finally:
                await producer.stop()

    async def _loop(
        self, stop: asyncio.Event, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer
    ) -> None:
        options = self.settings.signaler
        interval_s = options.checkpoint_interval_ms / 1000
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
                batch = fetch.result()
                if batch:
                    await self._process(batch, consumer, producer)
                elif self._uncommitted and time.monotonic() - self._last_commit >= interval_s:
                    await self._commit(producer, [], [])  # idle: checkpoint what was folded
                self._update_lag(consumer)
            await self._commit(producer, [], [])  # checkpoint what was folded since the last
        finally:
            stopped.cancel()

    async def _process(
        self,
        batch: dict[TopicPartition, list[Any]],
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
    ) -> None:
        """Fold one batch and commit its outputs; SIGTERM waits for this to finish."""
        started = time.monotonic()
        metrics = self.metrics
        dead_letters: list[tuple[bytes | None, str, str]] = []
        signals: list[TradeSignal] = []
        for tp, records in batch.items():
            engine = self.engines.get(tp.partition)
            if engine is None:  # never happens with manual assignment; refuse to guess
                raise RuntimeError(f"no engine for partition {tp.partition}")
            for record in records:
                out = engine.on_record(record.value)
                metrics.records.labels(out.kind).inc()
                if out.rejected is not None:
                    metrics.dead_letters.labels(out.rejected).inc()
                    where = f"{tp.partition}:{record.offset}"
                    dead_letters.append((record.value, out.rejected, where))
                for candle in out.candles:
                    metrics.candles.labels(candle.product_id, str(candle.interval_s)).inc()
                if out.late:
                    metrics.late_trades.labels(out.product).inc(out.late)
                signals.extend(out.signals)
            self._uncommitted[tp] = OffsetAndMetadata(records[-1].offset + 1, "")
            self._positions[tp] = records[-1].offset + 1
        if not self._uncommitted:
            return
        quiet = not signals and not dead_letters
        interval_s = self.settings.signaler.checkpoint_interval_ms / 1000
        if quiet and time.monotonic() - self._last_commit < interval_s:
            # Nothing to publish: carry the position on in memory. A crash replays from the
            # last checkpoint and, deterministic, reaches this same state and emits nothing.
            return
        await self._commit(producer, signals, dead_letters)
        metrics.latency.observe(time.monotonic() - started)

    async def _commit(
        self,
        producer: AIOKafkaProducer,
        signals: list[TradeSignal],
        dead_letters: list[tuple[bytes | None, str, str]],
    ) -> None:
        """One transaction: signals, dead letters, checkpoints and offsets, or none of them."""
        settings, metrics = self.settings, self.metrics
        offsets = self._uncommitted
        if not offsets:
            return
        async with producer.transaction():
            for signal in signals:
                await producer.send(
                    settings.topics.trade_signals,
                    value=signal.model_dump_json().encode(),
                    key=signal.product_id.encode(),
                )
            for raw_value, reason, where in dead_letters:
                await producer.send(
                    self.settings.signaler.dead_letter_topic,
                    value=raw_value or b"",
                    headers=[("reason", reason.encode()), ("source", where.encode())],
                )
            for tp, offset in offsets.items():
                engine = self.engines[tp.partition]
                checkpoint = {"offset": offset.offset, "engine": engine.snapshot()}
                await producer.send(
                    self.settings.signaler.state_topic,
                    key=state_key(settings.topics.raw, tp.partition),
                    value=orjson.dumps(checkpoint),
                )
            await producer.send_offsets_to_transaction(offsets, self.settings.signaler.group_id)
        self._uncommitted = {}
        self._last_commit = time.monotonic()
        self.batches += 1
        metrics.transactions.labels("committed").inc()
        for signal in signals:
            metrics.signals.labels(signal.product_id, signal.strategy, signal.action.value).inc()
            log.info(
                "signal",
                extra={
                    "product_id": signal.product_id,
                    "strategy": signal.strategy,
                    "action": signal.action.value,
                    "signal_id": signal.signal_id,
                },
            )

    def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        for tp, next_offset in self._positions.items():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                self.metrics.lag.labels(str(tp.partition)).set(max(highwater - next_offset, 0))
