"""What every CryptoPipeline program shares: typed Kafka settings, topic management, logs,
the labels every metric carries (`core.metrics`), the ops endpoints (`core.ops`), start-up
and SIGTERM handling (`core.service`) and the records the programs write (`core.records`).

Programs build one settings object at their edge and pass it down; nothing here reads
`os.environ` deep in the code.
"""

from cryptopipeline.core.kafka import KafkaSettings, TopicSpec, ensure_topics
from cryptopipeline.core.logs import configure_logging
from cryptopipeline.core.settings import PipelineSettings, TopicDefaults, TopicNames

__all__ = [
    "KafkaSettings",
    "PipelineSettings",
    "TopicDefaults",
    "TopicNames",
    "TopicSpec",
    "configure_logging",
    "ensure_topics",
]
