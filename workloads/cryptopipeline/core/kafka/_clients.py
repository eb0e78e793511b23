"""Consumers and producers built from `KafkaSettings`: one place that names clients
(`<client_id>-<role>`), applies the request timeout and states the project's defaults
(manual offset commits, read_committed; idempotent producers with acks=all)."""

from __future__ import annotations

from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from cryptopipeline.core.settings import KafkaSettings

Kafka = KafkaSettings | str
"""Settings, or a bootstrap list as a user gave it on a command line (aiokafka, not
`KafkaSettings`' stricter check, judges it: a host without a port means :9092)."""


def as_settings(kafka: Kafka) -> KafkaSettings:
    """`kafka` as settings: a bare bootstrap list gets the default client id and timeout."""
    if isinstance(kafka, KafkaSettings):
        return kafka
    return KafkaSettings.model_construct(bootstrap_servers=kafka)


def new_consumer(
    kafka: Kafka,
    role: str,
    *topics: str,
    group_id: str | None = None,
    isolation_level: Literal["read_committed", "read_uncommitted"] = "read_committed",
    **options: Any,
) -> AIOKafkaConsumer:
    """An unstarted consumer named `<client_id>-<role>` that commits offsets only when told
    (`options` are aiokafka's, e.g. `auto_offset_reset`, and override these defaults)."""
    settings = as_settings(kafka)
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": f"{settings.client_id}-{role}",
        "request_timeout_ms": settings.request_timeout_ms,
        "group_id": group_id,
        "enable_auto_commit": False,
        "isolation_level": isolation_level,
    }
    return AIOKafkaConsumer(*topics, **(config | options))


def new_producer(kafka: Kafka, role: str, **options: Any) -> AIOKafkaProducer:
    """An unstarted idempotent producer (acks=all) named `<client_id>-<role>` (`options` are
    aiokafka's, e.g. `linger_ms` or `transactional_id`, and override these defaults)."""
    settings = as_settings(kafka)
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": f"{settings.client_id}-{role}",
        "request_timeout_ms": settings.request_timeout_ms,
        "acks": "all",
        "enable_idempotence": True,
    }
    return AIOKafkaProducer(**(config | options))
