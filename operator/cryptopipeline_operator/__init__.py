"""The CryptoPipeline operator: reconciles the CryptoPipeline custom resource into
Deployments, ConfigMaps, Services, topics and ksqlDB migrations (kopf; docs/operator.md).

Public here: the pure builders (spec in, manifests out), the `Condition` type, and the
`Reconciler` that applies them through injected Kubernetes, Kafka and ksqlDB clients;
`handlers` registers the kopf handlers, `cli.main` runs them.
"""

from cryptopipeline_operator._conditions import Condition
from cryptopipeline_operator._manifests import (
    CONFIG_HASH_ANNOTATION,
    WORKLOADS,
    Pipeline,
    config_hash,
    config_map,
    deployment,
    labels,
    service,
    service_monitor,
    workload_config,
    workload_manifests,
)
from cryptopipeline_operator._reconcile import KNOWN_STRATEGIES, Outcome, Reconciler
from cryptopipeline_operator._settings import OperatorSettings
from cryptopipeline_operator._spec import GROUP, KIND, PLURAL, VERSION, PipelineSpec
from cryptopipeline_operator._topics import kafka_topic, topic_manifests

__all__ = [
    "CONFIG_HASH_ANNOTATION",
    "GROUP",
    "KIND",
    "KNOWN_STRATEGIES",
    "PLURAL",
    "VERSION",
    "WORKLOADS",
    "Condition",
    "OperatorSettings",
    "Outcome",
    "Pipeline",
    "PipelineSpec",
    "Reconciler",
    "config_hash",
    "config_map",
    "deployment",
    "kafka_topic",
    "labels",
    "service",
    "service_monitor",
    "topic_manifests",
    "workload_config",
    "workload_manifests",
]
