"""Waiting for a broker that is starting: until it answers at all, and until it names the
coordinators of consumer groups and transactional ids."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.errors import CoordinatorNotAvailableError, KafkaError, NotCoordinatorError

from cryptopipeline.core.kafka._clients import Kafka, as_settings
from cryptopipeline.core.kafka._retry import UNTIL_TIMEOUT
from cryptopipeline.core.settings import KafkaSettings


async def wait_for_broker(kafka: Kafka, *, attempt_timeout_ms: int = 5_000) -> None:
    """Return once the broker answers a metadata request; callers bound it with a timeout.
    Polled (a port not yet listening sends no event); each refusal is logged by aiokafka."""
    settings = as_settings(kafka)
    async for _ in UNTIL_TIMEOUT.tries():
        client = AIOKafkaClient(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=f"{settings.client_id}-probe",
            request_timeout_ms=attempt_timeout_ms,
        )
        try:
            await client.bootstrap()
            return
        except (KafkaError, OSError):
            continue
        finally:
            await client.close()


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
                async for _ in UNTIL_TIMEOUT.tries():
                    try:
                        await client.coordinator_lookup(kind, key)
                        break
                    except (CoordinatorNotAvailableError, NotCoordinatorError):
                        continue  # the broker is creating its internal topic
    finally:
        await client.close()
