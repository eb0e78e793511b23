"""The operator end to end: kopf running the real handlers as the operator's ServiceAccount
(k8s/rbac.yaml) against the real API server; Strimzi mode (KafkaTopics)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kube_support import GROUP, PLURAL, VERSION, Cluster, eventually, example
from kubernetes.client.exceptions import ApiException

from cryptopipeline_operator import CONFIG_HASH_ANNOTATION

pytestmark = pytest.mark.kube

WORKLOADS = ("ingestor", "signaler", "bot")
TOPICS = ("btc_usd", "btc_usd_dlq", "btc_usd_trade_signals", "btc_usd_orders")


def owned_by(obj: Any, uid: str) -> bool:
    refs = obj.metadata.owner_references or []
    return any(r.uid == uid and r.kind == "CryptoPipeline" and r.controller for r in refs)


def kafka_topics(cluster: Cluster, namespace: str) -> dict[str, dict[str, Any]]:
    found = cluster.custom.list_namespaced_custom_object(
        "kafka.strimzi.io", "v1beta2", namespace, "kafkatopics"
    )
    return {t["spec"]["topicName"]: t for t in found["items"]}


def children(cluster: Cluster, namespace: str) -> dict[str, str]:
    """kind/name -> resourceVersion of everything the operator made."""
    versions = {}
    for d in cluster.apps.list_namespaced_deployment(namespace).items:
        versions[f"Deployment/{d.metadata.name}"] = d.metadata.resource_version
    for c in cluster.core.list_namespaced_config_map(namespace).items:
        if c.metadata.name != "kube-root-ca.crt":
            versions[f"ConfigMap/{c.metadata.name}"] = c.metadata.resource_version
    for s in cluster.core.list_namespaced_service(namespace).items:
        versions[f"Service/{s.metadata.name}"] = s.metadata.resource_version
    for name, t in kafka_topics(cluster, namespace).items():
        versions[f"KafkaTopic/{name}"] = t["metadata"]["resourceVersion"]
    return versions


def make_available(cluster: Cluster, namespace: str, name: str) -> None:
    """Play the kubelet and the deployment controller: report every replica available."""
    dep = cluster.apps.read_namespaced_deployment(name, namespace)
    replicas = dep.spec.replicas
    cluster.apps.patch_namespaced_deployment_status(
        name,
        namespace,
        {
            "status": {
                "observedGeneration": dep.metadata.generation,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}
                ],
            }
        },
    )


def make_topics_ready(cluster: Cluster, namespace: str) -> None:
    """Play Strimzi's Topic Operator: mark every KafkaTopic Ready."""
    for topic in kafka_topics(cluster, namespace).values():
        cluster.custom.patch_namespaced_custom_object_status(
            "kafka.strimzi.io",
            "v1beta2",
            namespace,
            "kafkatopics",
            topic["metadata"]["name"],
            {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        )


def test_example_converges_to_ready(cluster: Cluster, namespace: str, run_operator: Any) -> None:
    with run_operator() as runner:
        made = cluster.create_pipeline(namespace, example())
        uid = made["metadata"]["uid"]

        def all_there() -> bool:
            return len(children(cluster, namespace)) == 3 * 3 + 4

        eventually(all_there, within=60)
        for workload in WORKLOADS:
            name = f"btc-{workload}"
            dep = cluster.apps.read_namespaced_deployment(name, namespace)
            cm = cluster.core.read_namespaced_config_map(name, namespace)
            svc = cluster.core.read_namespaced_service(name, namespace)
            for obj in (dep, cm, svc):
                assert owned_by(obj, uid), obj.metadata
                assert obj.metadata.labels["app.kubernetes.io/instance"] == "btc"
                assert obj.metadata.labels["app.kubernetes.io/managed-by"] == (
                    "cryptopipeline-operator"
                )
            container = dep.spec.template.spec.containers[0]
            assert container.command == [f"cryptopipeline-{workload}"]
            assert container.security_context.read_only_root_filesystem is True
            assert container.readiness_probe.http_get.path == "/readyz"
            assert dep.spec.template.metadata.annotations[CONFIG_HASH_ANNOTATION]
            assert svc.spec.ports[0].name == "metrics"
        topics = kafka_topics(cluster, namespace)
        assert sorted(topics) == sorted(TOPICS)
        for topic in topics.values():
            assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "cryptopipeline"
            assert topic["spec"]["partitions"] == 3
            assert topic["metadata"]["ownerReferences"][0]["uid"] == uid

        cluster.wait_condition(namespace, "btc", "TopicsReady", "False", "WaitingForTopicOperator")
        cluster.wait_condition(namespace, "btc", "WorkloadsAvailable", "False", "Progressing")
        cluster.wait_condition(namespace, "btc", "MigrationsApplied", "True", "NotConfigured")

        make_topics_ready(cluster, namespace)
        for workload in WORKLOADS:
            make_available(cluster, namespace, f"btc-{workload}")
        cluster.wait_condition(namespace, "btc", "Ready", "True", "Ready")
        status = cluster.pipeline(namespace, "btc")["status"]
        assert status["observedGeneration"] == 1
        assert status["workloads"]["signaler"]["availableReplicas"] == 1
        assert status["topicManagement"] == "strimzi"
        reasons = {e.reason for e in cluster.events(namespace)}
        assert "Ready" in reasons
    assert runner.exception is None, runner.output


def test_strategy_change_rolls_out_only_the_signaler_and_reapply_changes_nothing(
    cluster: Cluster, namespace: str, run_operator: Any
) -> None:
    with run_operator() as runner:
        cluster.create_pipeline(namespace, example())
        eventually(lambda: len(children(cluster, namespace)) == 13, within=60)
        cluster.wait_condition(namespace, "btc", "WorkloadsAvailable", "False")
        time.sleep(3)  # let a drift round pass
        before = children(cluster, namespace)
        hashes = {
            w: cluster.apps.read_namespaced_deployment(
                f"btc-{w}", namespace
            ).spec.template.metadata.annotations[CONFIG_HASH_ANNOTATION]
            for w in WORKLOADS
        }

        body = cluster.pipeline(namespace, "btc")
        body["spec"]["strategies"][0]["parameters"]["fast"] = 12
        cluster.custom.replace_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "btc", body
        )

        def signaler_rolled() -> bool:
            dep = cluster.apps.read_namespaced_deployment("btc-signaler", namespace)
            return (
                dep.spec.template.metadata.annotations[CONFIG_HASH_ANNOTATION] != hashes["signaler"]
            )

        eventually(signaler_rolled, within=30)
        cluster.wait_condition(namespace, "btc", "Ready", "False")
        eventually(lambda: cluster.pipeline(namespace, "btc")["status"]["observedGeneration"] == 2)
        time.sleep(5)  # two drift rounds
        after = children(cluster, namespace)
        changed = sorted(k for k in after if after[k] != before[k])
        assert changed == ["ConfigMap/btc-signaler", "Deployment/btc-signaler"]

        # the same resource again: nothing changes anywhere
        again = cluster.pipeline(namespace, "btc")
        cluster.custom.replace_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "btc", again
        )
        assert cluster.pipeline(namespace, "btc")["metadata"]["generation"] == 2
        time.sleep(5)
        assert children(cluster, namespace) == after
    assert runner.exception is None, runner.output


def test_deleted_deployment_comes_back_and_drift_is_corrected(
    cluster: Cluster, namespace: str, run_operator: Any
) -> None:
    with run_operator() as runner:
        cluster.create_pipeline(namespace, example())
        eventually(lambda: len(children(cluster, namespace)) == 13, within=60)
        old = cluster.apps.read_namespaced_deployment("btc-bot", namespace).metadata.uid
        cluster.apps.delete_namespaced_deployment("btc-bot", namespace)

        def recreated() -> bool:
            dep = cluster.apps.read_namespaced_deployment("btc-bot", namespace)
            return bool(dep.metadata.uid != old)

        eventually(recreated, within=20)

        cluster.apps.patch_namespaced_deployment(
            "btc-ingestor", namespace, {"spec": {"template": {"spec": {"containers": [
                {"name": "ingestor", "image": "someone/else:latest"}]}}}},
        )  # fmt: skip

        def image_restored() -> bool:
            dep = cluster.apps.read_namespaced_deployment("btc-ingestor", namespace)
            return bool(dep.spec.template.spec.containers[0].image == "cryptopipeline:0.1.0")

        eventually(image_restored, within=20)
        cm = cluster.core.read_namespaced_config_map("btc-signaler", namespace)
        cluster.core.patch_namespaced_config_map(
            "btc-signaler", namespace, {"data": {"CRYPTOPIPELINE_STRATEGIES": "[]"}}
        )
        eventually(
            lambda: (
                cluster.core.read_namespaced_config_map("btc-signaler", namespace).data == cm.data
            ),
            within=20,
        )
    assert runner.exception is None, runner.output


def test_delete_removes_owned_objects_and_keeps_topics(
    cluster: Cluster, namespace: str, run_operator: Any
) -> None:
    with run_operator() as runner:
        cluster.create_pipeline(namespace, example())
        eventually(lambda: len(children(cluster, namespace)) == 13, within=60)
        cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "btc")

        def gone() -> bool:
            try:
                cluster.pipeline(namespace, "btc")
            except ApiException as exc:
                return exc.status == 404
            return False

        eventually(gone, within=30)
        left = children(cluster, namespace)
        assert sorted(left) == sorted(f"KafkaTopic/{t}" for t in TOPICS)
        for topic in kafka_topics(cluster, namespace).values():
            assert not topic["metadata"].get("ownerReferences")  # orphaned: GC leaves them
    assert runner.exception is None, runner.output


def test_delete_policy_delete_removes_kafka_topics(
    cluster: Cluster, namespace: str, run_operator: Any
) -> None:
    body = example()
    body["spec"]["kafka"]["topics"]["deletionPolicy"] = "Delete"
    with run_operator() as runner:
        cluster.create_pipeline(namespace, body)
        eventually(lambda: len(children(cluster, namespace)) == 13, within=60)
        cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "btc")
        eventually(lambda: children(cluster, namespace) == {}, within=30)
    assert runner.exception is None, runner.output
