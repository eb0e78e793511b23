"""Finding a topic's partitions and reading offset ranges of them, up to the end.

Transaction markers and aborted records take offsets too, so a read_committed consumer may
stop short of a range's last offset with no record left to see: a partition is done when
the consumer's position reaches the range's end, not when the last record arrives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from cryptopipeline.core.kafka._clients import Kafka, new_consumer
from cryptopipeline.core.kafka._retry import ONCE, Retry

Record: TypeAlias = ConsumerRecord[bytes, bytes]
OffsetRange: TypeAlias = tuple[TopicPartition, int, int]
"""A partition and the offsets `[start, stop)` to read from it."""


async def partitions_of(
    consumer: AIOKafkaConsumer, topic: str, *, retry: Retry = ONCE
) -> list[TopicPartition]:
    """The topic's partitions in order, from metadata asked for now (a started consumer
    caches what it saw at start, before a topic made since existed); [] if it has none."""
    async for _ in retry.tries():
        # aiokafka has no public way to refresh a consumer's metadata: this is the one place
        # the project reaches into the client for it.
        await consumer._client.force_metadata_update()
        ids = consumer.partitions_for_topic(topic)
        if ids:
            return [TopicPartition(topic, p) for p in sorted(ids)]
    return []


async def read_ranges(
    consumer: AIOKafkaConsumer,
    ranges: Sequence[OffsetRange],
    *,
    max_records: int = 10_000,
    poll_ms: int = 1_000,
) -> AsyncIterator[Record]:
    """The records at offsets `[start, stop)` of each range, one partition after another,
    each in log order. The consumer must have the partitions assigned; all are positioned
    at their start first, so the fetcher reads ahead on every one of them."""
    wanted = [(tp, start, stop) for tp, start, stop in ranges if stop > start]
    for tp, start, _ in wanted:
        consumer.seek(tp, start)
    for tp, _, stop in wanted:
        while await consumer.position(tp) < stop:
            batch = await consumer.getmany(tp, timeout_ms=poll_ms, max_records=max_records)
            for record in batch.get(tp, ()):
                if record.offset >= stop:
                    break  # the position is past `stop` now: this partition is done
                yield record


async def assign_to_end(
    consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition]
) -> list[OffsetRange]:
    """Assign `tps` to the consumer; each one's range from its start to its end as of now."""
    consumer.assign(list(tps))
    starts = await consumer.beginning_offsets(tps)
    ends = await consumer.end_offsets(tps)
    return [(tp, starts[tp], ends[tp]) for tp in tps]


async def read_to_end(kafka: Kafka, topic: str, role: str, *, retry: Retry = ONCE) -> list[Record]:
    """Every committed record of `topic`, from each partition's start to its end as of the
    call, partition after partition, each in log order; [] when the topic has no partitions
    (`retry` says how long to wait for a topic created a moment ago to appear)."""
    consumer = new_consumer(kafka, role)
    await consumer.start()
    try:
        tps = await partitions_of(consumer, topic, retry=retry)
        if not tps:
            return []
        return [r async for r in read_ranges(consumer, await assign_to_end(consumer, tps))]
    finally:
        await consumer.stop()
