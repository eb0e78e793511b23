"""Topics through Kafka's admin API (direct mode): created and deleted by the core's Kafka
toolkit, each call bounded in time. Errors come back as `TopicError` with the reason."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aiokafka.errors import KafkaError

from cryptopipeline.core.kafka import (
    KafkaSettings,
    TopicCreationError,
    TopicSpec,
    delete_topics,
    ensure_topics,
)


class TopicError(RuntimeError):
    """Kafka could not be reached or refused; `reason` is a CamelCase condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class TopicAdmin(Protocol):
    """What the reconciler needs from Kafka (a fake in unit tests)."""

    async def ensure(self, bootstrap: str, topics: Sequence[TopicSpec]) -> list[str]: ...

    async def delete(self, bootstrap: str, names: Sequence[str]) -> None: ...


@dataclass(frozen=True, slots=True)
class KafkaTopicAdmin:
    """The real thing: aiokafka's admin client, each call bounded by `timeout_s`."""

    timeout_s: float = 20.0
    client_id: str = "cryptopipeline-operator"

    def _settings(self, bootstrap: str) -> KafkaSettings:
        timeout_ms = max(1_000, int(self.timeout_s * 1000))
        return KafkaSettings(
            bootstrap_servers=bootstrap, client_id=self.client_id, request_timeout_ms=timeout_ms
        )

    async def ensure(self, bootstrap: str, topics: Sequence[TopicSpec]) -> list[str]:
        """Create missing topics; existing ones are left as they are."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await ensure_topics(self._settings(bootstrap), topics)
        except TimeoutError:
            raise TopicError(
                "KafkaUnreachable", f"no answer from Kafka at {bootstrap} in {self.timeout_s:g}s"
            ) from None
        except KafkaError as exc:
            raise TopicError("KafkaUnreachable", f"Kafka at {bootstrap}: {exc!r}") from None
        except TopicCreationError as exc:  # the broker refused
            raise TopicError("TopicCreationFailed", str(exc)) from None

    async def delete(self, bootstrap: str, names: Sequence[str]) -> None:
        """Delete topics that exist; missing ones are not an error."""
        try:
            async with asyncio.timeout(self.timeout_s):
                await delete_topics(self._settings(bootstrap), names)
        except TimeoutError:
            raise TopicError("KafkaUnreachable", f"no answer from Kafka at {bootstrap}") from None
        except KafkaError as exc:
            raise TopicError("KafkaUnreachable", f"Kafka at {bootstrap}: {exc!r}") from None
