"""A time range of a raw topic as backtest input: every record whose Kafka timestamp (the
exchange time, as the ingestor writes it) is in `[from, to)`, partition by partition."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition

from cryptopipeline.backtest._inputs import InputError, Progress


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
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        client_id="cryptopipeline-backtest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        request_timeout_ms=request_timeout_ms,
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # as the bot's order log reader does
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        if not partitions:
            raise InputError(f"topic {topic!r} does not exist or has no partitions")
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        starts = await consumer.offsets_for_times(dict.fromkeys(tps, from_ms))
        stops = await consumer.offsets_for_times(dict.fromkeys(tps, to_ms))
        ends = await consumer.end_offsets(tps)
        ranges: list[tuple[TopicPartition, int, int]] = []
        for tp in tps:
            first = starts[tp]
            if first is None:
                continue  # nothing at or after `from` in this partition
            last = stops[tp].offset if stops[tp] is not None else ends[tp]
            if last > first.offset:
                ranges.append((tp, first.offset, last))
        if progress is not None:
            progress.total = sum(stop - start for _, start, stop in ranges)
        for tp, start, stop in ranges:
            consumer.seek(tp, start)
            position = start
            while position < stop:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=10_000)
                records = batch.get(tp, [])
                if not records and await consumer.position(tp) >= stop:
                    break  # transaction markers take offsets too
                for record in records:
                    if record.offset >= stop:
                        position = stop
                        break
                    position = record.offset + 1
                    if progress is not None:
                        progress.done += 1
                    yield record.value or b""
    finally:
        await consumer.stop()
