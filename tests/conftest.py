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
from cryptopipeline.ksql._server import RunningKsqlServer
from cryptopipeline.localkafka import LocalKafka
from cryptopipeline.localkafka._broker import free_port
from tooling import tool_missing

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


KSQLDB_SKIP = (
    "no ksqlDB server: ../shared/ksqldb is absent; set CRYPTOPIPELINE_KSQL__URL (and "
    "CRYPTOPIPELINE_TEST_BOOTSTRAP, the Kafka that server uses) to run these on any real ksqlDB"
)


@pytest.fixture(scope="session")
def ksqldb_server(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningKsqlServer]:
    """A real ksqlDB server reading the test Kafka, started once per test run.

    Built from ../shared/ksqldb into ~/.cache/cryptopipeline/ksqldb (once; the test set-up
    builds it before pytest), or the server named by CRYPTOPIPELINE_KSQL__URL.
    """
    from cryptopipeline.ksql import _server

    external = os.environ.get("CRYPTOPIPELINE_KSQL__URL")
    if external:
        yield _server.RunningKsqlServer(external.rstrip("/"), None)
        return
    if not _server.is_built() and not (_server.SOURCE_DIR / "build.sh").is_file():
        tool_missing("ksqldb", KSQLDB_SKIP)
    home = _server.ensure_built()
    server = _server.LocalKsqlServer(
        home=home,
        work_dir=tmp_path_factory.mktemp("ksqldb"),
        bootstrap_servers=kafka_bootstrap,
        service_id=f"cp_test_{uuid.uuid4().hex[:6]}_",
    )
    server.start()
    try:
        server.wait_ready(within_s=180)
        yield _server.RunningKsqlServer(server.url, server.log_file)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ksqldb_url(ksqldb_server: RunningKsqlServer) -> str:
    """URL of the real ksqlDB server (see `ksqldb_server`)."""
    return ksqldb_server.url
