"""ServiceMonitors when the Prometheus Operator's API exists; peering and the health endpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from typing import Any

import pytest
from kube_support import K8S, Cluster, docs, eventually, example

from cryptopipeline.localkafka._broker import free_port

pytestmark = pytest.mark.kube


def test_service_monitors_follow_the_crd(
    cluster: Cluster, namespace: str, run_operator: Any
) -> None:
    for crd in docs(K8S / "testenv" / "crds" / "servicemonitors.monitoring.coreos.com.yaml"):
        cluster.install_crd(crd)

    def monitors() -> dict[str, Any]:
        found = cluster.custom.list_namespaced_custom_object(
            "monitoring.coreos.com", "v1", namespace, "servicemonitors"
        )
        return {m["metadata"]["name"]: m for m in found["items"]}

    with run_operator() as runner:
        made = cluster.create_pipeline(namespace, example())
        found = eventually(lambda: len(monitors()) == 3 and monitors(), within=60)
        assert sorted(found) == ["btc-bot", "btc-ingestor", "btc-signaler"]
        signaler = found["btc-signaler"]
        assert signaler["metadata"]["ownerReferences"][0]["uid"] == made["metadata"]["uid"]
        assert signaler["spec"]["endpoints"] == [
            {"port": "metrics", "path": "/metrics", "interval": "30s"}
        ]
        assert signaler["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == (
            "signaler"
        )

        body = cluster.pipeline(namespace, "btc")
        body["spec"]["metrics"]["serviceMonitor"]["interval"] = "15s"
        cluster.custom.replace_namespaced_custom_object(
            "cryptopipeline.io", "v1alpha1", namespace, "cryptopipelines", "btc", body
        )
        eventually(
            lambda: monitors()["btc-bot"]["spec"]["endpoints"][0]["interval"] == "15s", within=30
        )
    assert runner.exception is None, runner.output


def test_peering_and_health_endpoint(cluster: Cluster, namespace: str, run_operator: Any) -> None:
    cluster.custom.create_namespaced_custom_object(
        "kopf.dev",
        "v1",
        namespace,
        "kopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "pipelines"}},
    )
    port = free_port()
    health = f"http://127.0.0.1:{port}/healthz"
    with run_operator("--peering", "pipelines", "--liveness", health) as runner:
        cluster.create_pipeline(namespace, example())
        eventually(lambda: len(cluster.apps.list_namespaced_deployment(namespace).items) == 3)

        def peers() -> dict[str, Any]:
            peering = cluster.custom.get_namespaced_custom_object(
                "kopf.dev", "v1", namespace, "kopfpeerings", "pipelines"
            )
            return dict(peering.get("status") or {})

        assert eventually(peers)  # this operator announced itself

        def healthy() -> bool:
            with urllib.request.urlopen(health, timeout=5) as response:
                return bool(response.status == 200)

        assert eventually(healthy)
    assert runner.exception is None, runner.output


def test_console_script_runs_the_operator(
    cluster: Cluster, namespace: str, operator_env: dict[str, str]
) -> None:
    """`cryptopipeline-operator` as its own process: converges, then stops on SIGTERM."""
    port = free_port()
    env = {**os.environ, **operator_env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cryptopipeline_operator.cli", "--standalone", "-n", namespace,
         "--liveness", f"http://127.0.0.1:{port}/healthz"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        cluster.create_pipeline(namespace, example())
        eventually(
            lambda: len(cluster.apps.list_namespaced_deployment(namespace).items) == 3, within=60
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]


def test_operator_manifest_is_accepted(cluster: Cluster) -> None:
    """k8s/operator.yaml passes the real API server's validation (server-side dry run)."""
    for doc in docs(K8S / "operator.yaml"):
        if doc["kind"] == "Deployment":
            cluster.apps.create_namespaced_deployment("cryptopipeline-system", doc, dry_run="All")
        else:
            cluster.core.create_namespaced_service("cryptopipeline-system", doc, dry_run="All")
