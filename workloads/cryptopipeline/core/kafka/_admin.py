"""Topics through Kafka's admin API: idempotent creation, deletion of those that exist."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from cryptopipeline.core.settings import KafkaSettings, TopicSpec

log = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36


class TopicCreationError(RuntimeError):
    """The broker refused to create a topic for a reason other than it already existing."""


def _admin(settings: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id}-admin",
        request_timeout_ms=settings.request_timeout_ms,
    )


async def ensure_topics(settings: KafkaSettings, topics: Iterable[TopicSpec]) -> list[str]:
    """Create each topic that does not exist yet; return the names actually created.

    Creating an existing topic is not an error: that is what makes this safe to call on
    every start and from every replica.
    """
    specs = list(topics)
    if not specs:
        return []
    admin = _admin(settings)
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


async def delete_topics(settings: KafkaSettings, names: Sequence[str]) -> list[str]:
    """Delete those of `names` that exist (a missing one is not an error); the deleted."""
    admin = _admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [name for name in names if name in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
    return doomed
