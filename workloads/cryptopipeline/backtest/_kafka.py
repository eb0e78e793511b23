"""A time range of a raw topic as backtest input: every record whose Kafka timestamp (the
exchange time, as the ingestor writes it) is in `[from, to)`, partition by partition."""

from __future__ import annotations

from collections.abc import AsyncIterator

from cryptopipeline.backtest._inputs import InputError, Progress
from cryptopipeline.core.kafka import (
    KafkaSettings,
    OffsetRange,
    new_consumer,
    partitions_of,
    read_ranges,
)


async def read_topic_range(
    bootstrap_servers: str,
    topic: str,
    from_ms: int,
    to_ms: int,
    progress: Progress | None = None,
    *,
    request_timeout_ms: int = 30_000,
) -> AsyncIterator[bytes]:
    """The raw bodies, oldest first within each partition (committed records only)."""
    # the command line's value as given: aiokafka judges it (a host alone means port 9092)
    kafka = KafkaSettings.model_construct(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=request_timeout_ms
    )
    consumer = new_consumer(kafka, "backtest")
    await consumer.start()
    try:
        tps = await partitions_of(consumer, topic)
        if not tps:
            raise InputError(f"topic {topic!r} does not exist or has no partitions")
        consumer.assign(tps)
        starts = await consumer.offsets_for_times(dict.fromkeys(tps, from_ms))
        stops = await consumer.offsets_for_times(dict.fromkeys(tps, to_ms))
        ends = await consumer.end_offsets(tps)
        ranges: list[OffsetRange] = []
        for tp in tps:
            first = starts[tp]
            if first is None:
                continue  # nothing at or after `from` in this partition
            last = stops[tp].offset if stops[tp] is not None else ends[tp]
            if last > first.offset:
                ranges.append((tp, first.offset, last))
        if progress is not None:
            progress.total = sum(stop - start for _, start, stop in ranges)
        async for record in read_ranges(consumer, ranges):
            if progress is not None:
                progress.done += 1
            yield record.value or b""
    finally:
        await consumer.stop()
