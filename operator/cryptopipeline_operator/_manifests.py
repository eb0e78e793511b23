"""Pure manifest builders: a CryptoPipeline's spec in, the Kubernetes objects it owns out.

No I/O here: the reconciler applies what these return (server-side apply), and the tests
compare manifests. Every object carries the common labels; owner references are added by
the caller (`kopf.adopt`). Each workload's configuration lives in its own ConfigMap whose
content hash is an annotation of the Deployment's pod template, so a change restarts only
the workloads it concerns. Secrets are never read here: the bot gets the Coinbase key from
its Secret by reference (a read-only file or `secretKeyRef` env), never as a value.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final, Literal

from cryptopipeline.core.settings import OPS_PORTS  # each workload's ops port: probes, /metrics
from cryptopipeline_operator._spec import PipelineSpec, WorkloadSpec

Manifest = dict[str, Any]
Workload = Literal["ingestor", "signaler", "bot"]
WORKLOADS: Final[tuple[Workload, ...]] = ("ingestor", "signaler", "bot")

MANAGED_BY: Final = "cryptopipeline-operator"
CONFIG_HASH_ANNOTATION: Final = "cryptopipeline.io/config-hash"
COINBASE_KEY_DIR: Final = "/var/run/secrets/cryptopipeline/coinbase"
STRIMZI_API: Final = "kafka.strimzi.io/v1beta2"
SERVICE_MONITOR_API: Final = "monitoring.coreos.com/v1"

#: Requests and limits used when the resource gives none.
DEFAULT_RESOURCES: Final[dict[str, dict[str, str]]] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}
#: The bot's broker mode for each CryptoPipeline bot mode.
BROKER_MODES: Final = {"paper": "paper", "live": "coinbase"}
_RUN_AS: Final = 10001


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Which resource the objects belong to: its name and namespace, and its spec."""

    name: str
    namespace: str
    spec: PipelineSpec


def labels(pipeline: Pipeline, component: str) -> dict[str, str]:
    """The labels every object of a pipeline carries (`component`: ingestor, topic, ...)."""
    return {
        "app.kubernetes.io/name": "cryptopipeline",
        "app.kubernetes.io/instance": pipeline.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "cryptopipeline",
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def selector(pipeline: Pipeline, component: str) -> dict[str, str]:
    """The immutable subset of labels a Deployment and its Service select pods by."""
    return {
        "app.kubernetes.io/name": "cryptopipeline",
        "app.kubernetes.io/instance": pipeline.name,
        "app.kubernetes.io/component": component,
    }


def workload_name(pipeline: Pipeline, workload: Workload) -> str:
    return f"{pipeline.name}-{workload}"


def _metadata(pipeline: Pipeline, name: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": pipeline.namespace, "labels": labels(pipeline, component)}


# --- configuration -------------------------------------------------------------------


def _common_config(pipeline: Pipeline, workload: Workload) -> dict[str, str]:
    spec = pipeline.spec
    topics = spec.kafka.topics
    return {
        "CRYPTOPIPELINE_PIPELINE_NAME": pipeline.name,  # the `pipeline` label of its metrics
        "CRYPTOPIPELINE_KAFKA__BOOTSTRAP_SERVERS": spec.kafka.bootstrap,
        "CRYPTOPIPELINE_KAFKA__CLIENT_ID": f"{pipeline.name}-{workload}",
        "CRYPTOPIPELINE_TOPICS__RAW": topics.names.raw,
        "CRYPTOPIPELINE_TOPICS__DEAD_LETTER": topics.names.dead_letter,
        "CRYPTOPIPELINE_TOPICS__TRADE_SIGNALS": topics.names.trade_signals,
        "CRYPTOPIPELINE_TOPICS__ORDERS": topics.names.orders,
        "CRYPTOPIPELINE_TOPIC_DEFAULTS__PARTITIONS": str(topics.partitions),
        "CRYPTOPIPELINE_TOPIC_DEFAULTS__REPLICATION_FACTOR": str(topics.replicas),
        "CRYPTOPIPELINE_TOPIC_DEFAULTS__RETENTION_MS": str(topics.retention_ms),
        # every interface: the kubelet probes and Prometheus scrapes the pod IP; the bot's
        # private routes need the token from bot.killTokenSecret (docs/operator.md)
        "CRYPTOPIPELINE_OPS__HOST": "0.0.0.0",
        "CRYPTOPIPELINE_OPS__PORT": str(OPS_PORTS[workload]),
        "CRYPTOPIPELINE_LOG_FORMAT": "json",
    }


def workload_config(pipeline: Pipeline, workload: Workload) -> dict[str, str]:
    """The non-secret environment of one workload, as its ConfigMap holds it."""
    spec = pipeline.spec
    config = _common_config(pipeline, workload)
    products = ",".join(spec.products)
    if workload == "ingestor":
        config |= {
            "CRYPTOPIPELINE_EXCHANGE__FEED": spec.exchange.feed,
            "CRYPTOPIPELINE_EXCHANGE__WS_URL": spec.exchange.ws_url,
            "CRYPTOPIPELINE_EXCHANGE__REST_URL": spec.exchange.rest_url,
            "CRYPTOPIPELINE_EXCHANGE__PRODUCTS": products,
            "CRYPTOPIPELINE_EXCHANGE__CHANNELS": ",".join(spec.exchange.channels),
            "CRYPTOPIPELINE_EXCHANGE__CONNECTIONS": str(spec.exchange.connections),
        }
    elif workload == "signaler":
        # Replicas of one pipeline share a consumer group and per-partition transactional ids;
        # other pipelines on the same Kafka must not join their group.
        ident = f"cryptopipeline.{pipeline.namespace}.{pipeline.name}.signaler"
        config["CRYPTOPIPELINE_SIGNALER__GROUP_ID"] = ident
        config["CRYPTOPIPELINE_SIGNALER__TRANSACTIONAL_ID"] = ident
        config["CRYPTOPIPELINE_CANDLES__INTERVALS_S"] = ",".join(
            str(i) for i in spec.candles.intervals_seconds
        )
        if spec.strategies is not None:
            config["CRYPTOPIPELINE_STRATEGIES"] = json.dumps(
                [s.model_dump(mode="json") for s in spec.strategies],
                sort_keys=True,
                separators=(",", ":"),
            )
    else:
        config["CRYPTOPIPELINE_BROKER__MODE"] = BROKER_MODES[spec.bot.mode]
        config["CRYPTOPIPELINE_TRADING__PRODUCTS"] = products
        risk = spec.bot.risk.model_dump(exclude_none=True)
        for field, value in sorted(risk.items()):
            config[f"CRYPTOPIPELINE_RISK__{field.upper()}"] = str(value)
    return config


def config_hash(data: dict[str, str]) -> str:
    """A stable digest of a ConfigMap's data (the pod-template annotation)."""
    encoded = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def config_map(pipeline: Pipeline, workload: Workload) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(pipeline, workload_name(pipeline, workload), workload),
        "data": workload_config(pipeline, workload),
    }


# --- workloads -----------------------------------------------------------------------


def _resources(spec: WorkloadSpec) -> dict[str, dict[str, str]]:
    if spec.resources is None:
        return {kind: dict(values) for kind, values in DEFAULT_RESOURCES.items()}
    given = spec.resources.model_dump()
    return {
        kind: {k: str(v) for k, v in values.items()} for kind, values in given.items() if values
    }


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "ops"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _bot_key(pipeline: Pipeline) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(env, volumes) giving the bot the Coinbase key from its Secret, by reference only:
    the key file mounted read-only, or key name and private key as `secretKeyRef` env."""
    ref = pipeline.spec.bot.coinbase_key_secret
    if ref is None:
        return [], []
    if ref.key_file_key:
        env: list[dict[str, Any]] = [
            {"name": "CRYPTOPIPELINE_BROKER__KEY_FILE", "value": f"{COINBASE_KEY_DIR}/key.json"}
        ]
        volume = {
            "name": "coinbase-key",
            "secret": {
                "secretName": ref.name,
                "defaultMode": 0o440,
                "items": [{"key": ref.key_file_key, "path": "key.json"}],
            },
        }
        return env, [volume]
    env = [  # valueFrom: the value stays in the Secret
        {
            "name": name,
            "valueFrom": {"secretKeyRef": {"name": ref.name, "key": key, "optional": False}},
        }
        for name, key in (
            ("CRYPTOPIPELINE_BROKER__KEY_NAME", ref.key_name_key),
            ("CRYPTOPIPELINE_BROKER__PRIVATE_KEY", ref.private_key_key),
        )
    ]
    return env, []


def _rollout(workload: Workload) -> dict[str, Any]:
    if workload == "signaler":
        return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    return {"type": "Recreate"}


def _bot_kill_token(pipeline: Pipeline) -> list[dict[str, Any]]:
    """The bot's ops token from its Secret, by reference (`secretKeyRef`); none: the bot's
    kill, release and portfolio routes are disabled (its ops port listens on every
    interface here, for the kubelet and Prometheus)."""
    ref = pipeline.spec.bot.kill_token_secret
    if ref is None:
        return []
    return [
        {
            "name": "CRYPTOPIPELINE_OPS__KILL_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key, "optional": False}},
        }
    ]


def deployment(pipeline: Pipeline, workload: Workload) -> Manifest:
    """One workload's Deployment, non-root with a read-only root. The ingestor and the bot are
    single writers (Recreate: an old and a new pod never overlap); signaler replicas share
    the raw partitions and fence each other per partition, so they roll one at a time."""
    spec = pipeline.spec
    own: WorkloadSpec = getattr(spec.workloads, workload)
    name = workload_name(pipeline, workload)
    env: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    if workload == "bot":
        key_env, key_volumes = _bot_key(pipeline)
        env += key_env + _bot_kill_token(pipeline)
        volumes += key_volumes
        if key_volumes:
            mounts.append({"name": "coinbase-key", "mountPath": COINBASE_KEY_DIR, "readOnly": True})
    # Extra env from the resource wins over the operator's (same name replaces).
    extra = {item.name: item.value for item in own.env}
    env = [item for item in env if item["name"] not in extra]
    env += [{"name": key, "value": value} for key, value in extra.items()]
    container: dict[str, Any] = {
        "name": workload,
        "image": spec.workloads.image,
        "imagePullPolicy": spec.workloads.image_pull_policy,
        "command": [f"cryptopipeline-{workload}"],
        "envFrom": [{"configMapRef": {"name": name}}],
        "ports": [{"name": "ops", "containerPort": OPS_PORTS[workload], "protocol": "TCP"}],
        "livenessProbe": _probe("/healthz", period=10, failures=3),
        "readinessProbe": _probe("/readyz", period=5, failures=2),
        "startupProbe": _probe("/healthz", period=2, failures=30),
        "resources": _resources(own),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    if env:
        container["env"] = env
    template_annotations = {
        CONFIG_HASH_ANNOTATION: config_hash(workload_config(pipeline, workload))
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(pipeline, name, workload),
        "spec": {
            "replicas": own.replicas,
            "revisionHistoryLimit": 3,
            "strategy": _rollout(workload),
            "selector": {"matchLabels": selector(pipeline, workload)},
            "template": {
                "metadata": {
                    "labels": labels(pipeline, workload),
                    "annotations": template_annotations,
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": _RUN_AS,
                        "runAsGroup": _RUN_AS,
                        "fsGroup": _RUN_AS,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def service(pipeline: Pipeline, workload: Workload) -> Manifest:
    """The metrics Service of a workload (ClusterIP, port `metrics`)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(pipeline, workload_name(pipeline, workload), workload),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(pipeline, workload),
            "ports": [
                {
                    "name": "metrics",
                    "port": OPS_PORTS[workload],
                    "targetPort": "ops",
                    "protocol": "TCP",
                }
            ],
        },
    }


def service_monitor(pipeline: Pipeline, workload: Workload) -> Manifest:
    """A Prometheus Operator ServiceMonitor scraping the workload's metrics Service."""
    return {
        "apiVersion": SERVICE_MONITOR_API,
        "kind": "ServiceMonitor",
        "metadata": _metadata(pipeline, workload_name(pipeline, workload), workload),
        "spec": {
            "selector": {"matchLabels": selector(pipeline, workload)},
            "namespaceSelector": {"matchNames": [pipeline.namespace]},
            "endpoints": [
                {
                    "port": "metrics",
                    "path": "/metrics",
                    "interval": pipeline.spec.metrics.service_monitor.interval,
                }
            ],
        },
    }


# --- topics --------------------------------------------------------------------------


def topic_resource_name(pipeline: Pipeline, topic: str) -> str:
    """A KafkaTopic's name: Kubernetes names allow no `_`, so the topic goes in spec."""
    cleaned = "".join(c if c.isalnum() or c in "-." else "-" for c in topic.lower()).strip("-.")
    return f"{pipeline.name}-{cleaned}"[:253]


def topic_config(pipeline: Pipeline) -> dict[str, str]:
    return {"retention.ms": str(pipeline.spec.kafka.topics.retention_ms)}


def kafka_topic(pipeline: Pipeline, topic: str) -> Manifest:
    """A Strimzi KafkaTopic for one pipeline topic, labelled with its Kafka cluster."""
    topics = pipeline.spec.kafka.topics
    meta = _metadata(pipeline, topic_resource_name(pipeline, topic), "topic")
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


# --- everything ----------------------------------------------------------------------


def workload_manifests(pipeline: Pipeline, *, service_monitors: bool) -> list[Manifest]:
    """ConfigMaps, Deployments, Services (and ServiceMonitors if the CRD exists)."""
    out: list[Manifest] = []
    monitors = service_monitors and pipeline.spec.metrics.service_monitor.enabled
    for workload in WORKLOADS:
        out += [
            config_map(pipeline, workload),
            deployment(pipeline, workload),
            service(pipeline, workload),
        ]
        if monitors:
            out.append(service_monitor(pipeline, workload))
    return out


def topic_manifests(pipeline: Pipeline) -> list[Manifest]:
    """KafkaTopics in strimzi mode; none in direct mode (topics go through Kafka's API)."""
    if pipeline.spec.kafka.management != "strimzi":
        return []
    return [kafka_topic(pipeline, topic) for topic in topic_names(pipeline)]
