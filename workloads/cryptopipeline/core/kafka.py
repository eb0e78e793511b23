"""Kafka connection settings and idempotent topic creation through the admin API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.errors import CoordinatorNotAvailableError, NotCoordinatorError, for_code
from pydantic import BaseModel, Field, field_validator

log = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36


class KafkaSettings(BaseModel):
    """Where Kafka is and how clients identify themselves."""

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Comma-separated host:port list."
    )
    client_id: str = "cryptopipeline"
    request_timeout_ms: int = Field(default=30_000, ge=1_000)

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {server.strip()!r}")
        return value


class TopicSpec(BaseModel):
    """A topic and the settings it is created with."""

    name: str = Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")
    partitions: int = Field(default=3, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    retention_ms: int = Field(
        default=7 * 24 * 3600 * 1000, ge=-1, description="-1 keeps records forever."
    )
    extra_config: dict[str, str] = Field(default_factory=dict)

    def config(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), **self.extra_config}


class TopicCreationError(RuntimeError):
    """The broker refused to create a topic for a reason other than it already existing."""


async def ensure_topics(settings: KafkaSettings, topics: Iterable[TopicSpec]) -> list[str]:
    """Create each topic that does not exist yet; return the names actually created.

    Creating an existing topic is not an error: that is what makes this safe to call on
    every start and from every replica.
    """
    specs = list(topics)
    if not specs:
        return []
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id}-admin",
        request_timeout_ms=settings.request_timeout_ms,
    )
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(
                    name=spec.name,
                    num_partitions=spec.partitions,
                    replication_factor=spec.replication_factor,
                    topic_configs=spec.config(),
                )
                for spec in specs
            ]
        )
    finally:
        await admin.close()
    created: list[str] = []
    failures: list[str] = []
    for topic_error in response.topic_errors:
        name, code = topic_error[0], topic_error[1]
        message = topic_error[2] if len(topic_error) > 2 else None
        if code == 0:
            created.append(name)
        elif code != _TOPIC_ALREADY_EXISTS:
            failures.append(f"{name}: {for_code(code).__name__} {message or ''}".rstrip())
    if failures:
        raise TopicCreationError("could not create topics: " + "; ".join(failures))
    for name in created:
        log.info("created topic", extra={"topic": name})
    return created


async def wait_for_coordinators(
    settings: KafkaSettings,
    *,
    group_ids: Iterable[str] = (),
    transactional_ids: Iterable[str] = (),
    within: float = 60.0,
) -> None:
    """Wait until the broker names a coordinator for each consumer group and transactional id.

    A fresh broker creates `__consumer_offsets` and `__transaction_state` on the first
    FindCoordinator request and answers "not available" until they are ready; a client
    started in that window logs the refusal at ERROR. The local runner asks first, so a
    normal start shows no ERROR lines (a later refusal is then a real one).
    """
    client = AIOKafkaClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id}-coordinators",
        request_timeout_ms=settings.request_timeout_ms,
    )
    await client.bootstrap()
    wanted = [(CoordinationType.GROUP, key) for key in group_ids]
    wanted += [(CoordinationType.TRANSACTION, key) for key in transactional_ids]
    try:
        async with asyncio.timeout(within):
            for kind, key in wanted:
                while True:
                    try:
                        await client.coordinator_lookup(kind, key)
                        break
                    except (CoordinatorNotAvailableError, NotCoordinatorError):
                        await asyncio.sleep(0.2)  # the broker is creating its internal topic
    finally:
        await client.close()
