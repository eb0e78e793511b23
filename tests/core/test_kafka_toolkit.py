"""The Kafka toolkit (`core.kafka`) on the real broker: reading to the end through
transactions, offset ranges, topics that appear late, deleting topics."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from cryptopipeline.core.kafka import (
    NEW_TOPIC,
    KafkaSettings,
    TopicSpec,
    delete_topics,
    ensure_topics,
    new_consumer,
    new_producer,
    partitions_of,
    read_ranges,
    read_to_end,
)

pytestmark = pytest.mark.kafka


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def test_read_to_end_sees_committed_records_only_and_stops_at_the_end(
    kafka_settings: KafkaSettings,
) -> None:
    topic = _name("toolkit_txn")
    await ensure_topics(kafka_settings, [TopicSpec(name=topic, partitions=2)])
    producer = new_producer(kafka_settings, "tests", transactional_id=_name("tx"))
    await producer.start()
    try:
        async with producer.transaction():
            for n in range(6):
                await producer.send(topic, f"kept-{n}".encode(), partition=n % 2)
        await producer.begin_transaction()
        await producer.send(topic, b"aborted", partition=0)
        await producer.abort_transaction()
        async with producer.transaction():  # its commit marker is each partition's last offset
            await producer.send(topic, b"kept-last", partition=1)
    finally:
        await producer.stop()

    records = await asyncio.wait_for(read_to_end(kafka_settings, topic, "tests"), 30)

    assert [(r.partition, r.value) for r in records] == [
        (0, b"kept-0"), (0, b"kept-2"), (0, b"kept-4"),
        (1, b"kept-1"), (1, b"kept-3"), (1, b"kept-5"), (1, b"kept-last"),
    ]  # fmt: skip


async def test_read_ranges_reads_start_to_stop_of_each_partition(
    kafka_settings: KafkaSettings,
) -> None:
    topic = _name("toolkit_range")
    await ensure_topics(kafka_settings, [TopicSpec(name=topic, partitions=2)])
    producer = new_producer(kafka_settings, "tests")
    await producer.start()
    try:
        for n in range(10):
            await producer.send(topic, str(n).encode(), partition=0)
            await producer.send(topic, str(100 + n).encode(), partition=1)
        await producer.flush()
    finally:
        await producer.stop()
    consumer = new_consumer(kafka_settings, "tests")
    await consumer.start()
    try:
        tp0, tp1 = await partitions_of(consumer, topic)
        consumer.assign([tp0, tp1])
        values = [r.value async for r in read_ranges(consumer, [(tp1, 7, 9), (tp0, 2, 4)])]
        empty = [r async for r in read_ranges(consumer, [(tp0, 5, 5)])]
    finally:
        await consumer.stop()
    assert values == [b"107", b"108", b"2", b"3"]
    assert empty == []


async def test_a_missing_topic_reads_empty_and_a_new_one_is_waited_for(
    kafka_settings: KafkaSettings,
) -> None:
    assert await read_to_end(kafka_settings, _name("toolkit_missing"), "tests") == []

    topic = _name("toolkit_late")

    async def create_late() -> None:
        await asyncio.sleep(0.5)
        await ensure_topics(kafka_settings, [TopicSpec(name=topic, partitions=1)])

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(create_late())
        consumer = new_consumer(kafka_settings, "tests")
        await consumer.start()
        try:
            tps = await partitions_of(consumer, topic, retry=NEW_TOPIC)
        finally:
            await consumer.stop()
    assert [tp.partition for tp in tps] == [0]


async def test_delete_topics_deletes_those_that_exist(kafka_settings: KafkaSettings) -> None:
    topic, missing = _name("toolkit_doomed"), _name("toolkit_never")
    await ensure_topics(kafka_settings, [TopicSpec(name=topic, partitions=1)])
    assert await delete_topics(kafka_settings, [topic, missing]) == [topic]
