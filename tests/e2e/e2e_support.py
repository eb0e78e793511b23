"""Helpers of the end-to-end tests: kubectl, helm, Kafka reads and the simulator's truth.

The tests run inside the cluster's network namespace (k8s/cluster/cluster.py run), so pod
IPs, the node address and the local Kafka broker are all reachable from here; nothing of
this leaves that namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

import kafka_support

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = REPO_ROOT / "k8s" / "cluster" / "manifests"
CHART = REPO_ROOT / "charts" / "cryptopipeline"
NAMESPACE = "default"

Records = kafka_support.Records


@dataclass(frozen=True)
class Cluster:
    """The running one-node cluster, as k8s/cluster/cluster.py describes it."""

    kubeconfig: str
    kubectl_bin: str
    helm_bin: str
    image: str
    node_ip: str
    home: str
    prometheus_bin: str

    @classmethod
    def from_env(cls) -> Cluster | None:
        raw = os.environ.get("CRYPTOPIPELINE_E2E")
        if not raw:
            return None
        env = json.loads(raw)
        return cls(
            env["kubeconfig"],
            env["kubectl"],
            env["helm"],
            env["image"],
            env["node_ip"],
            env["home"],
            env["prometheus"],
        )

    def record(self, what: str, seconds: float) -> None:
        """Note a duration in .work/cluster/timings.txt (kept after the cluster is down)."""
        with open(Path(self.home) / "timings.txt", "a") as out:
            out.write(f"{what}: {seconds:.1f}s\n")

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None) -> str:
        done = subprocess.run(
            [self.kubectl_bin, f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True, text=True, input=stdin, timeout=120,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stderr.strip()}")
        return done.stdout if done.returncode == 0 else done.stderr

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def helm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.helm_bin, f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip


def poll(what: str, probe: Callable[[], Any], within: float = 180, every: float = 0.5) -> Any:
    """Wait for `probe()` to return something truthy; the cluster has no event to await."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {within:.0f}s (last: {last!r})")


def pods(cluster: Cluster, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.kubectl_json("get", "pods", "-l", selector)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def pod_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def ready_pods(cluster: Cluster, selector: str, count: int = 1) -> list[dict[str, Any]]:
    """The selector's pods once `count` of them are Ready (and none is terminating)."""

    def probe() -> list[dict[str, Any]] | None:
        found = pods(cluster, selector)
        return found if len(found) == count and all(map(pod_ready, found)) else None

    result: list[dict[str, Any]] = poll(f"{count} Ready pod(s) {selector}", probe)
    return result


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


async def read_topic(
    bootstrap: str, topic: str, until: Callable[[Records], bool], within: float = 180
) -> Records:
    """Read `topic` from the start until `until(records)` holds (fails after `within` s)."""
    return await kafka_support.read_topic(bootstrap, topic, until, within)


def trade_ids(records: Records, product: str) -> list[int]:
    """The ticker trade ids of `product` in log order (one product, one partition)."""
    ids = []
    for record in records:
        body = orjson.loads(record.value or b"{}")
        if body.get("type") == "ticker" and body.get("product_id") == product:
            ids.append(int(body["trade_id"]))
    return ids


def values(records: Records) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records if r.value]
