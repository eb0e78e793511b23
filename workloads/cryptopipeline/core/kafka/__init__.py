"""The Kafka toolkit every program uses: clients built from `KafkaSettings`, topic
administration, partitions of a topic, reading to the end, and the retry policy.

The only package that reaches into aiokafka's private parts (`_reading.partitions_of`);
a test keeps every other module out of them. Importing it loads aiokafka, so pure
packages never do (`cryptopipeline.core` itself loads it only when asked).
"""

from cryptopipeline.core.kafka._admin import TopicCreationError, delete_topics, ensure_topics
from cryptopipeline.core.kafka._clients import Kafka, as_settings, new_consumer, new_producer
from cryptopipeline.core.kafka._reading import (
    OffsetRange,
    Record,
    assign_to_end,
    partitions_of,
    read_ranges,
    read_to_end,
)
from cryptopipeline.core.kafka._retry import NEW_TOPIC, ONCE, UNTIL_TIMEOUT, Retry
from cryptopipeline.core.kafka._waiting import wait_for_broker, wait_for_coordinators
from cryptopipeline.core.settings import KafkaSettings, TopicSpec

__all__ = [
    "NEW_TOPIC",
    "ONCE",
    "UNTIL_TIMEOUT",
    "Kafka",
    "KafkaSettings",
    "OffsetRange",
    "Record",
    "Retry",
    "TopicCreationError",
    "TopicSpec",
    "as_settings",
    "assign_to_end",
    "delete_topics",
    "ensure_topics",
    "new_consumer",
    "new_producer",
    "partitions_of",
    "read_ranges",
    "read_to_end",
    "wait_for_broker",
    "wait_for_coordinators",
]
