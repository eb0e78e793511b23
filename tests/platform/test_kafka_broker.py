"""The project's own Kafka: records round-trip on the real broker; topics are idempotent."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from cryptopipeline.core import KafkaSettings, TopicSpec, ensure_topics
from cryptopipeline.core.kafka import TopicCreationError

pytestmark = pytest.mark.kafka


async def _consume_all(settings: KafkaSettings, topic: str, expected: int) -> list[object]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[object] = []
    try:
        while len(records) < expected:
            batch = await consumer.getmany(timeout_ms=10_000)
            if not batch:
                break
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


async def test_records_round_trip_with_keys_headers_and_timestamps(
    kafka_settings: KafkaSettings, new_topic: str
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_settings.bootstrap_servers, acks="all", enable_idempotence=True
    )
    await producer.start()
    sent: dict[bytes, list[tuple[bytes, int]]] = {}
    try:
        for i in range(300):
            key = f"PRODUCT-{i % 3}".encode()
            value = f'{{"n":{i}}}'.encode()
            timestamp_ms = 1_700_000_000_000 + i
            await producer.send(
                new_topic,
                value=value,
                key=key,
                timestamp_ms=timestamp_ms,
                headers=[("receive_ns", str(i).encode())],
            )
            sent.setdefault(key, []).append((value, timestamp_ms))
        await producer.flush()
    finally:
        await producer.stop()

    records = await _consume_all(kafka_settings, new_topic, 300)

    assert len(records) == 300
    received: dict[bytes, list[tuple[bytes, int]]] = {}
    for record in records:
        received.setdefault(record.key, []).append((record.value, record.timestamp))  # type: ignore[attr-defined]
        value = record.value.decode()  # type: ignore[attr-defined]
        assert dict(record.headers)["receive_ns"].decode() == value[5:-1]  # type: ignore[attr-defined]
    assert received == sent  # every key's records, in the order produced, with their timestamps
    # keys map to partitions deterministically: one key never spans two partitions
    partitions_per_key: dict[bytes, set[int]] = {}
    for record in records:
        partitions_per_key.setdefault(record.key, set()).add(record.partition)  # type: ignore[attr-defined]
    assert all(len(parts) == 1 for parts in partitions_per_key.values())


async def test_ensure_topics_applies_settings_and_is_idempotent(
    kafka_settings: KafkaSettings,
) -> None:
    spec = TopicSpec(name=f"test_{uuid.uuid4().hex[:12]}", partitions=2, retention_ms=3_600_000)

    assert await ensure_topics(kafka_settings, [spec]) == [spec.name]
    assert await ensure_topics(kafka_settings, [spec]) == []

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    await admin.start()
    try:
        [topic] = await admin.describe_topics([spec.name])
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, spec.name, {"retention.ms": None})]
        )
    finally:
        await admin.close()
    assert sorted(p["partition"] for p in topic["partitions"]) == [0, 1]
    entries = {entry[0]: entry[1] for entry in responses[0].resources[0][4]}
    assert entries["retention.ms"] == "3600000"


async def test_impossible_topic_is_a_clear_error(kafka_settings: KafkaSettings) -> None:
    name = f"test_{uuid.uuid4().hex[:12]}"
    with pytest.raises(TopicCreationError, match=rf"{name}: InvalidReplicationFactor"):
        await ensure_topics(kafka_settings, [TopicSpec(name=name, replication_factor=3)])


async def test_a_partition_end_offset_is_visible_to_new_consumers(
    kafka_settings: KafkaSettings, new_topic: str
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(new_topic, b"x", key=b"k", partition=1)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(new_topic, p) for p in range(3)])
    finally:
        await consumer.stop()
    assert [ends[TopicPartition(new_topic, p)] for p in range(3)] == [0, 1, 0]
