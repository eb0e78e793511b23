"""The CryptoPipeline operator: reconciles the CryptoPipeline custom resource into
Deployments, ConfigMaps, Services, topics and ksqlDB migrations (kopf; docs/operator.md).

The builders (spec in, manifests out) and the condition logic are pure and public here;
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
    kafka_topic,
    labels,
    service,
    service_monitor,
    topic_manifests,
    workload_config,
    workload_manifests,
)
from cryptopipeline_operator._reconcile import KNOWN_STRATEGIES, Outcome, Reconciler
from cryptopipeline_operator._settings import OperatorSettings
from cryptopipeline_operator._spec import GROUP, KIND, PLURAL, VERSION, PipelineSpec

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
