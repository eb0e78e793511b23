"""Deleting what a CryptoPipeline owns when the resource goes (kopf's finalizer).

Owned objects are deleted explicitly (not left to the garbage collector) so deletion is
complete even where no controller-manager runs. Topics go only when the resource's
deletionPolicy is Delete; KafkaTopics kept by Retain lose their owner reference first, so
the collector cannot take them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from cryptopipeline_operator._kafka import TopicAdmin, TopicError
from cryptopipeline_operator._kube import Kube
from cryptopipeline_operator._manifests import (
    MANAGED_BY,
    SERVICE_MONITOR_API,
    STRIMZI_API,
    Pipeline,
)
from cryptopipeline_operator._settings import OperatorSettings
from cryptopipeline_operator._spec import PipelineSpec
from cryptopipeline_operator._topics import topic_names


async def tear_down(
    kube: Kube, topics: TopicAdmin, settings: OperatorSettings, body: Mapping[str, Any]
) -> None:
    """Delete what the resource owns; topics only when deletionPolicy is Delete."""
    meta = body["metadata"]
    spec = PipelineSpec.from_body(body.get("spec"))
    pipeline = Pipeline(name=meta["name"], namespace=meta["namespace"], spec=spec)
    selector = {
        "app.kubernetes.io/instance": pipeline.name,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }
    keep_topics = spec.kafka.topics.deletion_policy == "Retain"
    if spec.kafka.management == "strimzi" and await kube.serves(STRIMZI_API, "KafkaTopic"):
        for topic in await kube.list(STRIMZI_API, "KafkaTopic", pipeline.namespace, selector):
            name = topic["metadata"]["name"]
            if keep_topics:
                await kube.merge_patch(
                    STRIMZI_API,
                    "KafkaTopic",
                    pipeline.namespace,
                    name,
                    {"metadata": {"ownerReferences": None}},
                )
            else:
                await kube.delete(STRIMZI_API, "KafkaTopic", pipeline.namespace, name)
    elif not keep_topics:
        try:
            await topics.delete(spec.kafka.bootstrap, topic_names(pipeline))
        except TopicError as exc:
            raise kopf.TemporaryError(
                f"deleting topics: {exc}", delay=settings.retry_initial_s
            ) from None
    kinds = [("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "ConfigMap")]
    if await kube.serves(SERVICE_MONITOR_API, "ServiceMonitor"):
        kinds.append((SERVICE_MONITOR_API, "ServiceMonitor"))
    for api_version, kind in kinds:
        for obj in await kube.list(api_version, kind, pipeline.namespace, selector):
            if _owned_by(obj, meta.get("uid")):
                await kube.delete(api_version, kind, pipeline.namespace, obj["metadata"]["name"])


def _owned_by(obj: Mapping[str, Any], uid: Any) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in refs)
