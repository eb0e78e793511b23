"""Checkpoints of the signaler's per-partition state in a compacted Kafka topic.

Each checkpoint holds the next raw offset to read and the domain state (open candles,
indicator and strategy state) as of that offset. It is written in the same transaction as
the signals and the consumer offsets, so after any crash the three agree.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from cryptopipeline.core import KafkaSettings
from cryptopipeline.core.kafka import read_to_end

log = logging.getLogger(__name__)


def state_key(raw_topic: str, partition: int) -> bytes:
    return f"{raw_topic}:{partition}".encode()


async def load_checkpoints(kafka: KafkaSettings, state_topic: str) -> dict[bytes, dict[str, Any]]:
    """The latest committed checkpoint per key (reads the whole compacted topic)."""
    latest: dict[bytes, dict[str, Any]] = {}
    for record in await read_to_end(kafka, state_topic, "signaler-state"):
        if record.key is not None and record.value is not None:
            latest[record.key] = orjson.loads(record.value)
    return latest
