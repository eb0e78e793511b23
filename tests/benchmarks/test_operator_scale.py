"""Operator at scale on the real API server: 200 CryptoPipelines (one per product) created at
once, and then one more alone.

The operator runs as its own process (`cryptopipeline-operator`, the ServiceAccount's
permissions, Strimzi mode). A player thread stands in for the kubelet and Strimzi's Topic
Operator, as the operator tests do (tests/operator/test_operator_reconcile.py): it marks
each Deployment available and each KafkaTopic ready as soon as it appears. Printed: the time
until every owned object exists, the time until every pipeline is Ready, the operator's
RSS, and, for one more pipeline created alone, the time until all its objects exist.
Asserted: correctness only (every object there, every pipeline Ready).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
from controlplane import ControlPlane, ControlPlaneUnavailable, User, binaries
from kube_support import OPERATOR_SA, Cluster, eventually, example, install_project

from cryptopipeline.localkafka._broker import free_port

pytestmark = pytest.mark.benchmark

PIPELINES = 200
OBJECTS_PER_PIPELINE = 3 * 3 + 4  # Deployment, ConfigMap, Service per workload; 4 KafkaTopics


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    try:
        bin_dir = binaries()
    except ControlPlaneUnavailable as exc:
        pytest.skip(f"no control plane: {exc}")
    cp = ControlPlane(home=tmp_path_factory.mktemp("k8s-scale"), bin_dir=bin_dir)
    cp.users.append(User("admin", uuid.uuid4().hex, ("system:masters",)))
    groups = ("system:serviceaccounts", "system:serviceaccounts:cryptopipeline-system")
    cp.users.append(User(OPERATOR_SA, uuid.uuid4().hex, groups))
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


class Player(threading.Thread):
    """The kubelet and Strimzi's Topic Operator, as fast as polling allows."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        super().__init__(daemon=True)
        self.cluster, self.namespace = cluster, namespace
        self.done: set[str] = set()
        self.halt = threading.Event()

    def run(self) -> None:
        cl, ns = self.cluster, self.namespace
        while not self.halt.is_set():
            for dep in _raw(cl.apps.list_namespaced_deployment(ns, _preload_content=False)):
                name, generation = dep["metadata"]["name"], dep["metadata"]["generation"]
                key = f"d/{name}/{generation}"
                if key in self.done:
                    continue
                replicas = dep["spec"]["replicas"]
                cl.apps.patch_namespaced_deployment_status(name, ns, {"status": {
                    "observedGeneration": generation, "replicas": replicas,
                    "updatedReplicas": replicas, "readyReplicas": replicas,
                    "availableReplicas": replicas,
                    "conditions": [{"type": "Available", "status": "True",
                                    "reason": "MinimumReplicasAvailable"}],
                }})  # fmt: skip
                self.done.add(key)
            topics = cl.custom.list_namespaced_custom_object(
                "kafka.strimzi.io", "v1beta2", ns, "kafkatopics")["items"]  # fmt: skip
            for topic in topics:
                key = f"t/{topic['metadata']['name']}"
                if key in self.done:
                    continue
                cl.custom.patch_namespaced_custom_object_status(
                    "kafka.strimzi.io", "v1beta2", ns, "kafkatopics", topic["metadata"]["name"],
                    {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                )  # fmt: skip
                self.done.add(key)
            self.halt.wait(0.2)


def _body(i: int) -> dict[str, Any]:
    body = example(name=f"p{i:03d}")
    product = f"C{i:03d}-USD"
    body["spec"]["products"] = [product]
    slug = product.lower().replace("-", "_")
    body["spec"]["kafka"]["topics"]["names"] = {
        "raw": slug, "deadLetter": f"{slug}_dlq", "tradeSignals": f"{slug}_trade_signals",
        "orders": f"{slug}_orders",
    }  # fmt: skip
    return body


def _raw(response: Any) -> list[dict[str, Any]]:
    """Items of a list call made with _preload_content=False (no model objects: cheap)."""
    items: list[dict[str, Any]] = json.loads(response.data)["items"]
    return items


OWNED = "app.kubernetes.io/managed-by=cryptopipeline-operator"


def _objects(cl: Cluster, ns: str) -> int:
    """Objects the operator made (by its label), so nothing else in the namespace counts."""
    kw: dict[str, Any] = {"label_selector": OWNED, "_preload_content": False}
    deps = len(_raw(cl.apps.list_namespaced_deployment(ns, **kw)))
    cms = len(_raw(cl.core.list_namespaced_config_map(ns, **kw)))
    svcs = len(_raw(cl.core.list_namespaced_service(ns, **kw)))
    topics = len(cl.custom.list_namespaced_custom_object(
        "kafka.strimzi.io", "v1beta2", ns, "kafkatopics")["items"])  # fmt: skip
    return deps + cms + svcs + topics


def _ready(cl: Cluster, ns: str) -> int:
    items = cl.custom.list_namespaced_custom_object(
        "cryptopipeline.io", "v1alpha1", ns, "cryptopipelines")["items"]  # fmt: skip
    return sum(
        1 for item in items
        for c in (item.get("status") or {}).get("conditions", [])
        if c.get("type") == "Ready" and c.get("status") == "True"
    )  # fmt: skip


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _alive(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _scenario(plane: ControlPlane) -> dict[str, float]:
    cl = install_project(plane)
    ns = f"scale-{uuid.uuid4().hex[:6]}"
    cl.create_namespace(ns)
    sa = next(u for u in plane.users if u.name == OPERATOR_SA)
    env = {
        **os.environ, "KUBECONFIG": str(plane.kubeconfig(sa)),
        "CRYPTOPIPELINE_OPERATOR__METRICS_PORT": "0",
    }  # fmt: skip
    health = f"http://127.0.0.1:{free_port()}/healthz"
    operator = subprocess.Popen(
        [sys.executable, "-m", "cryptopipeline_operator.cli", "--standalone", "-n", ns,
         "--liveness", health],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    player = Player(cl, ns)
    player.start()
    try:
        eventually(lambda: _alive(health), within=120)
        idle_rss = _rss_mb(operator.pid)
        started = time.monotonic()
        for i in range(PIPELINES):
            cl.create_pipeline(ns, _body(i))
        created = time.monotonic() - started
        eventually(lambda: _objects(cl, ns) == PIPELINES * OBJECTS_PER_PIPELINE,
                   within=1200, every=1.0)  # fmt: skip
        objects_s = time.monotonic() - started
        eventually(lambda: _ready(cl, ns) == PIPELINES, within=1200, every=1.0)
        ready_s = time.monotonic() - started
        busy_rss = _rss_mb(operator.pid)

        alone = time.monotonic()
        cl.create_pipeline(ns, _body(PIPELINES))
        eventually(lambda: _objects(cl, ns) == (PIPELINES + 1) * OBJECTS_PER_PIPELINE,
                   within=120, every=0.1)  # fmt: skip
        alone_s = time.monotonic() - alone
        eventually(lambda: _ready(cl, ns) == PIPELINES + 1, within=300, every=1.0)
    finally:
        player.halt.set()
        operator.send_signal(signal.SIGTERM)
        operator.wait(timeout=120)
    result = {
        "pipelines": PIPELINES, "created_s": round(created, 1),
        "all_objects_s": round(objects_s, 1), "all_ready_s": round(ready_s, 1),
        "rss_idle_mb": round(idle_rss), "rss_after_mb": round(busy_rss),
        "one_more_alone_objects_s": round(alone_s, 2),
    }  # fmt: skip
    print(
        f"\n{PIPELINES} CryptoPipelines created in {created:.1f} s; every owned object "
        f"({PIPELINES * OBJECTS_PER_PIPELINE}) after {objects_s:.1f} s; all Ready after "
        f"{ready_s:.1f} s; operator RSS {idle_rss:.0f} MB idle -> {busy_rss:.0f} MB; "
        f"one more pipeline alone: all {OBJECTS_PER_PIPELINE} objects in {alone_s:.2f} s"
    )
    return result


@pytest.mark.timeout(2400)
def test_two_hundred_pipelines_at_once_then_one_alone(benchmark: Any, plane: ControlPlane) -> None:
    result = benchmark.pedantic(_scenario, args=(plane,), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    assert result["pipelines"] == PIPELINES  # every one Ready: _scenario waited for it
