"""Session fixtures shared by every test: the real Kafka broker the project starts itself.

Set CRYPTOPIPELINE_TEST_BOOTSTRAP=host:port to run the Kafka tests against a broker that
is already running instead of starting one.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cryptopipeline.core import KafkaSettings, TopicSpec, ensure_topics
from cryptopipeline.localkafka import LocalKafka
from cryptopipeline.localkafka._broker import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """bootstrap.servers of a real single-node Kafka, started once per test run."""
    external = os.environ.get("CRYPTOPIPELINE_TEST_BOOTSTRAP")
    if external:
        yield external
        return
    broker = LocalKafka(
        home=tmp_path_factory.mktemp("kafka"), port=free_port(), controller_port=free_port()
    )
    broker.start()
    try:
        asyncio.run(broker.wait_ready(within=180))
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_bootstrap, client_id="tests")


@pytest.fixture
async def new_topic(kafka_settings: KafkaSettings) -> AsyncIterator[str]:
    """A fresh three-partition topic for one test, so tests never see each other's records."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    await ensure_topics(kafka_settings, [TopicSpec(name=name, partitions=3)])
    yield name
