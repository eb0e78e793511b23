"""Checkpoints of the signaler's per-partition state in a compacted Kafka topic.

Each checkpoint holds the next raw offset to read and the domain state (open candles,
indicator and strategy state) as of that offset. It is written in the same transaction as
the signals and the consumer offsets, so after any crash the three agree.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from cryptopipeline.core import KafkaSettings

log = logging.getLogger(__name__)


def state_key(raw_topic: str, partition: int) -> bytes:
    return f"{raw_topic}:{partition}".encode()


async def load_checkpoints(kafka: KafkaSettings, state_topic: str) -> dict[bytes, dict[str, Any]]:
    """The latest committed checkpoint per key (reads the whole compacted topic)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        client_id=f"{kafka.client_id}-signaler-state",
        enable_auto_commit=False,
        isolation_level="read_committed",
        group_id=None,
    )
    await consumer.start()
    latest: dict[bytes, dict[str, Any]] = {}
    try:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(state_topic) or set()
        tps = [TopicPartition(state_topic, p) for p in partitions]
        if not tps:
            return latest
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        quiet = 0
        while quiet < 3:  # the end offset may include transaction markers: stop when quiet
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                for record in records:
                    if record.key is not None and record.value is not None:
                        latest[record.key] = orjson.loads(record.value)
            done = all([await consumer.position(tp) >= ends[tp] for tp in tps])
            quiet = 3 if done else (quiet + 1 if not batch else 0)
    finally:
        await consumer.stop()
    return latest
