"""A real single-node Apache Kafka (KRaft) for this machine: fetched from Maven, started, stopped.

Used by `cryptopipeline kafka`, the local run command and the test fixtures; production
clusters are Strimzi's or the user's own.
"""

from cryptopipeline.localkafka._broker import BrokerError, LocalKafka, wait_until_ready
from cryptopipeline.localkafka._maven import KAFKA_VERSION, fetch_kafka

__all__ = ["KAFKA_VERSION", "BrokerError", "LocalKafka", "fetch_kafka", "wait_until_ready"]
