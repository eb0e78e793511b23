"""Session fixtures of the end-to-end tests: the product installed the way a user does it.

These tests need the one-node cluster of k8s/cluster/cluster.py and run inside its network
namespace: `make e2e` does both (`cluster.py run -- pytest tests/e2e`). Outside it they skip,
saying so; `make test` leaves them out by their `e2e` marker.

Installed once per session, in this order: the project's Kafka broker on the node address,
`helm install` of charts/cryptopipeline, coinbase-sim (k8s/cluster/manifests), then
`kubectl apply -f k8s/cluster/manifests/pipeline.yaml`.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_support import CHART, MANIFESTS, Cluster, poll, ready_pods

from cryptopipeline.localkafka import LocalKafka
from cryptopipeline.localkafka._broker import free_port

KAFKA_PORT = 9092  # on the node address, inside the cluster's own network namespace
RELEASE = "cp"
OPERATOR_PODS = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator"
SIM_PODS = "app.kubernetes.io/name=coinbase-sim"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    found = Cluster.from_env()
    if found is None:
        pytest.skip("needs the one-node cluster: run `make e2e` (k8s/cluster/cluster.py run)")
    return found


@pytest.fixture(scope="session")
def kafka_bootstrap(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The project's own broker, listening on the node address the pods reach."""
    broker = LocalKafka(
        home=tmp_path_factory.mktemp("kafka"), host=cluster.node_ip, port=KAFKA_PORT,
        controller_port=KAFKA_PORT + 1,
    )  # fmt: skip
    broker.start()
    try:
        asyncio.run(broker.wait_ready(within=180))
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def release(cluster: Cluster) -> dict[str, Any]:
    """`helm install` of the chart; the operator pod once it is Ready."""
    started = time.monotonic()
    done = cluster.helm("install", RELEASE, str(CHART), "--namespace", "default")
    assert done.returncode == 0, f"helm install failed:\n{done.stderr}"
    pod = ready_pods(cluster, OPERATOR_PODS)[0]
    cluster.record("helm install -> operator pod Ready", time.monotonic() - started)
    return pod


@pytest.fixture(scope="session")
def coinbase_sim(cluster: Cluster) -> str:
    """coinbase-sim as a Deployment + Service; the base URL of its pod (for the ground truth)."""
    docs = list(yaml.safe_load_all((MANIFESTS / "coinbase-sim.yaml").read_text()))
    container = docs[0]["spec"]["template"]["spec"]["containers"][0]
    # The market runs 20 times faster than the clock; Kafka refuses records stamped more
    # than an hour ahead of it (log.message.timestamp.after.max.ms), so it starts in the past.
    start = datetime.now(UTC) - timedelta(hours=12)
    container["env"].append(
        {"name": "COINBASE_SIM_START_TIME", "value": start.strftime("%Y-%m-%dT%H:%M:%SZ")}
    )
    started = time.monotonic()
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    pod = ready_pods(cluster, SIM_PODS)[0]
    cluster.record("coinbase-sim apply -> pod Ready", time.monotonic() - started)
    return f"http://{pod['status']['podIP']}:8765"


@pytest.fixture(scope="session")
def pipeline(
    cluster: Cluster, kafka_bootstrap: str, release: dict[str, Any], coinbase_sim: str
) -> dict[str, Any]:
    """The CryptoPipeline `btc`, applied with kubectl, once it reports Ready."""
    assert kafka_bootstrap == f"{cluster.node_ip}:{KAFKA_PORT}"
    started = time.monotonic()
    cluster.kubectl("apply", "-f", str(MANIFESTS / "pipeline.yaml"))

    def ready() -> dict[str, Any] | None:
        cpl: dict[str, Any] = cluster.kubectl_json("get", "cryptopipeline", "btc")
        conditions = cpl.get("status", {}).get("conditions", [])
        ok = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        return cpl if ok else None

    result: dict[str, Any] = poll("CryptoPipeline btc Ready", ready, within=300)
    cluster.record("kubectl apply pipeline -> CryptoPipeline Ready", time.monotonic() - started)
    return result


@pytest.fixture(scope="session")
def prometheus(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus finding the pods through kubernetes_sd_configs against this API
    server, with the chart's alert rules loaded; its base URL (127.0.0.1 in the namespace).
    Debian's Prometheus has no Kubernetes discovery, so the harness builds one that has."""
    binary = cluster.prometheus_bin
    home = tmp_path_factory.mktemp("prometheus")
    kubeconfig = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    (home / "token").write_text(kubeconfig["users"][0]["user"]["token"])
    (home / "token").chmod(0o600)
    server = kubeconfig["clusters"][0]["cluster"]
    config = {
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "rule_files": [str(CHART / "rules" / "cryptopipeline.rules.yaml")],
        "scrape_configs": [
            {
                "job_name": "cryptopipeline",
                "kubernetes_sd_configs": [
                    {
                        "role": "pod",
                        "api_server": server["server"],
                        "tls_config": {"ca_file": server["certificate-authority"]},
                        "authorization": {"credentials_file": str(home / "token")},
                        "namespaces": {"names": ["default"]},
                    }
                ],
                "relabel_configs": [
                    {
                        "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                        "regex": "ops|metrics",
                        "action": "keep",
                    },
                    {
                        "source_labels": [
                            "__meta_kubernetes_pod_label_app_kubernetes_io_component"
                        ],
                        "target_label": "component",
                    },
                    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                ],
            }
        ],
    }
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (home / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary, f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, (home / "prometheus.log").read_text()[-2000:]
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        poll("prometheus ready", ready, within=60)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
