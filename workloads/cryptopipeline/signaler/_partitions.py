"""The raw partitions one signaler replica owns: per partition, a domain engine, its pending
outputs, and a transactional producer whose id names the partition.

Scale-out keeps exactly once by giving every raw partition its own transactional id
(`{prefix}-{topic}-{partition}`), the way Kafka Streams did before KIP-447. aiokafka's
`send_offsets_to_transaction` carries no consumer-group generation, so the broker cannot
fence a zombie by group membership; it fences by transactional id instead. Whoever takes a
partition starts that partition's producer first — which aborts the previous owner's open
transaction and fences it for good — and only then reads the partition's checkpoint. A
replica that finds itself fenced drops the partition (the new owner has it) and carries on
with the rest. docs/signaler.md tells the story with the failure cases.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerFenced
from aiokafka.structs import OffsetAndMetadata

from cryptopipeline.core.kafka import new_producer
from cryptopipeline.records import TradeSignal
from cryptopipeline.signaler._engine import PartitionEngine
from cryptopipeline.signaler._metrics import SignalerMetrics
from cryptopipeline.signaler._settings import SignalerSettings
from cryptopipeline.signaler._state import load_checkpoints, state_key

log = logging.getLogger(__name__)

DeadLetter = tuple[bytes | None, str, str]  # raw value, reason, "partition:offset"


@dataclass
class OwnedPartition:
    """One raw partition while this replica owns it."""

    tp: TopicPartition
    engine: PartitionEngine
    producer: AIOKafkaProducer
    next_offset: int | None = None  # after the last record folded; None: nothing folded yet
    committed_offset: int | None = None
    signals: list[TradeSignal] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    @property
    def uncommitted(self) -> bool:
        return self.next_offset is not None and self.next_offset != self.committed_offset


def transactional_id(prefix: str, tp: TopicPartition) -> str:
    """Stable per raw partition: its next owner fences the last one, whoever they are."""
    return f"{prefix}-{tp.topic}-{tp.partition}"


class Partitions:
    """Take, fold into, commit and give back raw partitions. Not thread-safe: one event loop,
    and the caller holds `lock` around every call so a rebalance never meets a half batch."""

    def __init__(self, settings: SignalerSettings, metrics: SignalerMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.owned: dict[int, OwnedPartition] = {}
        self.lock = asyncio.Lock()
        self.last_commit = time.monotonic()
        self.commits = 0

    def _producer(self, tp: TopicPartition) -> AIOKafkaProducer:
        settings = self.settings
        return new_producer(
            settings.kafka,
            f"signaler-{tp.partition}",
            transactional_id=transactional_id(settings.signaler.transactional_id, tp),
            linger_ms=0,
            # Right after a commit the broker may answer CONCURRENT_TRANSACTIONS while it
            # writes the markers; the default 100 ms backoff made that the p99 latency.
            retry_backoff_ms=5,
        )

    def _engine(self, checkpoint: dict[str, Any] | None) -> PartitionEngine:
        candles, strategies = self.settings.candles, self.settings.strategies
        if checkpoint is None:
            return PartitionEngine(candles.intervals_s, candles.grace_s, strategies)
        return PartitionEngine.restore(checkpoint["engine"], strategies)

    async def take(self, consumer: AIOKafkaConsumer, tps: Iterable[TopicPartition]) -> None:
        """Own `tps`: fence their previous owners, restore each engine, seek to its checkpoint."""
        fresh = sorted((tp for tp in tps if tp.partition not in self.owned),
                       key=lambda tp: tp.partition)  # fmt: skip
        if not fresh:
            return
        producers = {tp.partition: self._producer(tp) for tp in fresh}
        # Fence first: once these return, no earlier owner can commit to these partitions.
        await asyncio.gather(*(p.start() for p in producers.values()))
        options = self.settings.signaler
        checkpoints = await load_checkpoints(self.settings.kafka, options.state_topic)
        for tp in fresh:
            checkpoint = checkpoints.get(state_key(tp.topic, tp.partition))
            owned = OwnedPartition(tp, self._engine(checkpoint), producers[tp.partition])
            if checkpoint is not None:
                owned.committed_offset = owned.next_offset = int(checkpoint["offset"])
                consumer.seek(tp, owned.next_offset)
            elif options.start_from == "earliest":
                await consumer.seek_to_beginning(tp)
            else:
                await consumer.seek_to_end(tp)
            self.owned[tp.partition] = owned
            log.info("partition taken", extra={
                "partition": tp.partition,
                "from": checkpoint["offset"] if checkpoint else options.start_from,
            })  # fmt: skip

    async def give_back(self, tps: Iterable[TopicPartition], *, commit: bool = True) -> None:
        """Stop owning `tps`: commit what was folded (unless `commit` is False), then close."""
        leaving = [self.owned[tp.partition] for tp in tps if tp.partition in self.owned]
        if commit:
            await self.commit(leaving)
        for owned in leaving:
            self.owned.pop(owned.tp.partition, None)
            with contextlib.suppress(KeyError):  # no lag reported yet for this partition
                self.metrics.lag.remove(str(owned.tp.partition))
        await asyncio.gather(*(owned.producer.stop() for owned in leaving))
        for owned in leaving:
            log.info("partition given back", extra={"partition": owned.tp.partition})

    def fold(self, tp: TopicPartition, records: list[Any]) -> bool:
        """Fold records of one partition; False if this replica no longer owns it."""
        owned = self.owned.get(tp.partition)
        if owned is None:
            return False  # fetched before a rebalance took it away: its new owner reads it
        if owned.next_offset is not None and records and records[0].offset < owned.next_offset:
            # Fetched before the seek to the checkpoint: already folded, never fold twice.
            records = [r for r in records if r.offset >= owned.next_offset]
            if not records:
                return True
        metrics = self.metrics
        for record in records:
            out = owned.engine.on_record(record.value)
            metrics.records.labels(out.kind).inc()
            if out.rejected is not None:
                metrics.dead_letters.labels(out.rejected).inc()
                where = f"{tp.partition}:{record.offset}"
                owned.dead_letters.append((record.value, out.rejected, where))
            for candle in out.candles:
                metrics.candles.labels(candle.product_id, str(candle.interval_s)).inc()
            if out.late:
                metrics.late_trades.labels(out.product).inc(out.late)
            owned.signals.extend(out.signals)
        owned.next_offset = records[-1].offset + 1
        return True

    def has_output(self) -> bool:
        return any(o.signals or o.dead_letters for o in self.owned.values())

    def has_uncommitted(self) -> bool:
        return any(o.uncommitted for o in self.owned.values())

    async def commit(self, which: Iterable[OwnedPartition] | None = None) -> None:
        """One transaction per owned partition with uncommitted work, run side by side."""
        pending = [o for o in (self.owned.values() if which is None else which) if o.uncommitted]
        if not pending:
            return
        results = await asyncio.gather(*(self._commit_one(o) for o in pending),
                                       return_exceptions=True)  # fmt: skip
        fenced = [o for o, r in zip(pending, results, strict=True) if isinstance(r, ProducerFenced)]
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, ProducerFenced):
                raise result
        if fenced:
            await self._lost(fenced)
        self.last_commit = time.monotonic()
        self.commits += 1

    async def _commit_one(self, owned: OwnedPartition) -> None:
        """Signals, dead letters, the checkpoint and the consumer offset, or none of them."""
        settings, options = self.settings, self.settings.signaler
        offset = owned.next_offset
        assert offset is not None
        signals, dead_letters = owned.signals, owned.dead_letters
        producer = owned.producer
        async with producer.transaction():
            for signal in signals:
                await producer.send(
                    settings.topics.trade_signals,
                    value=signal.model_dump_json().encode(),
                    key=signal.product_id.encode(),
                )
            for raw_value, reason, where in dead_letters:
                await producer.send(
                    options.dead_letter_topic,
                    value=raw_value or b"",
                    headers=[("reason", reason.encode()), ("source", where.encode())],
                )
            checkpoint = {"offset": offset, "engine": owned.engine.snapshot()}
            await producer.send(
                options.state_topic,
                key=state_key(owned.tp.topic, owned.tp.partition),
                value=orjson.dumps(checkpoint),
            )
            await producer.send_offsets_to_transaction(
                {owned.tp: OffsetAndMetadata(offset, "")}, options.group_id
            )
        owned.committed_offset = offset
        owned.signals, owned.dead_letters = [], []
        self.metrics.transactions.labels("committed").inc()
        for signal in signals:
            self.metrics.signals.labels(
                signal.product_id, signal.strategy, signal.action.value
            ).inc()
            log.info("signal", extra={
                "product_id": signal.product_id, "strategy": signal.strategy,
                "action": signal.action.value, "signal_id": signal.signal_id,
            })  # fmt: skip

    async def _lost(self, fenced: list[OwnedPartition]) -> None:
        """Another replica took these partitions and fenced us: its checkpoint is the truth."""
        for owned in fenced:
            self.metrics.transactions.labels("fenced").inc()
            log.warning(
                "partition fenced by its new owner; dropping what was folded since the last "
                "checkpoint (the new owner folds it again)",
                extra={"partition": owned.tp.partition},
            )
        await self.give_back([o.tp for o in fenced], commit=False)

    async def close(self) -> None:
        await self.give_back([o.tp for o in list(self.owned.values())], commit=False)

    def update_lag(self, consumer: AIOKafkaConsumer) -> None:
        for owned in self.owned.values():
            highwater = consumer.highwater(owned.tp)
            if highwater is not None and owned.next_offset is not None:
                lag = max(highwater - owned.next_offset, 0)
                self.metrics.lag.labels(str(owned.tp.partition)).set(lag)
