"""Pure builders for a pipeline's topics: their names, and the Strimzi KafkaTopics that
declare them in strimzi mode (in direct mode the reconciler creates them through Kafka's
API instead)."""

from __future__ import annotations

from cryptopipeline_operator._manifests import STRIMZI_API, Manifest, Pipeline, metadata


def topic_resource_name(pipeline: Pipeline, topic: str) -> str:
    """A KafkaTopic's name: Kubernetes names allow no `_`, so the topic goes in spec."""
    cleaned = "".join(c if c.isalnum() or c in "-." else "-" for c in topic.lower()).strip("-.")
    return f"{pipeline.name}-{cleaned}"[:253]


def topic_config(pipeline: Pipeline) -> dict[str, str]:
    return {"retention.ms": str(pipeline.spec.kafka.topics.retention_ms)}


def kafka_topic(pipeline: Pipeline, topic: str) -> Manifest:
    """A Strimzi KafkaTopic for one pipeline topic, labelled with its Kafka cluster."""
    topics = pipeline.spec.kafka.topics
    meta = metadata(pipeline, topic_resource_name(pipeline, topic), "topic")
    meta["labels"]["strimzi.io/cluster"] = pipeline.spec.kafka.strimzi_cluster or ""
    return {
        "apiVersion": STRIMZI_API,
        "kind": "KafkaTopic",
        "metadata": meta,
        "spec": {
            "topicName": topic,
            "partitions": topics.partitions,
            "replicas": topics.replicas,
            "config": topic_config(pipeline),
        },
    }


def topic_names(pipeline: Pipeline) -> list[str]:
    return list(dict.fromkeys(pipeline.spec.kafka.topics.names.all()))


def topic_manifests(pipeline: Pipeline) -> list[Manifest]:
    """KafkaTopics in strimzi mode; none in direct mode (topics go through Kafka's API)."""
    if pipeline.spec.kafka.management != "strimzi":
        return []
    return [kafka_topic(pipeline, topic) for topic in topic_names(pipeline)]
