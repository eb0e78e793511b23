"""Fixtures for ingestor tests against the real broker and the simulator."""

from __future__ import annotations

import uuid

import pytest

from cryptopipeline.core import KafkaSettings, TopicSpec, ensure_topics


@pytest.fixture
async def raw_topics(kafka_settings: KafkaSettings) -> tuple[str, str]:
    """A fresh raw topic and dead-letter topic for one test."""
    suffix = uuid.uuid4().hex[:10]
    raw, dlq = f"raw_{suffix}", f"dlq_{suffix}"
    await ensure_topics(kafka_settings, [TopicSpec(name=raw), TopicSpec(name=dlq)])
    return raw, dlq
