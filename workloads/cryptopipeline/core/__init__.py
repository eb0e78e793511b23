"""What every CryptoPipeline program shares: typed settings (`core.settings`), the Kafka
toolkit (`core.kafka`), logs, the ops endpoints (`core.ops`) and the labels every metric
carries (`core.metrics`).

Programs build one settings object at their edge and pass it down; nothing here reads
`os.environ` deep in the code. Importing this package loads no Kafka client: the Kafka
names below are loaded from `core.kafka` when first used, so pure code may use the settings.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cryptopipeline.core.logs import configure_logging
from cryptopipeline.core.settings import (
    KafkaSettings,
    OpsSettings,
    PipelineSettings,
    TopicDefaults,
    TopicNames,
    TopicSpec,
)

if TYPE_CHECKING:
    from cryptopipeline.core.kafka import ensure_topics, wait_for_coordinators

_FROM_KAFKA = frozenset({"ensure_topics", "wait_for_coordinators"})

__all__ = [
    "KafkaSettings",
    "OpsSettings",
    "PipelineSettings",
    "TopicDefaults",
    "TopicNames",
    "TopicSpec",
    "configure_logging",
    "ensure_topics",
    "wait_for_coordinators",
]


def __getattr__(name: str) -> Any:
    if name in _FROM_KAFKA:
        return getattr(importlib.import_module("cryptopipeline.core.kafka"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
