"""Helpers shared by the operator tests: admin clients, polling, the example resource."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
OPERATOR_SA = "system:serviceaccount:cryptopipeline-system:cryptopipeline-operator"
GROUP, VERSION, PLURAL = "cryptopipeline.io", "v1alpha1", "cryptopipelines"
T = TypeVar("T")


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def eventually(check: Callable[[], T], *, within: float = 30.0, every: float = 0.2) -> T:
    """Poll `check` until it returns a truthy value without raising; return that value."""
    deadline = time.monotonic() + within
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
            last = None
        except (AssertionError, ApiException, KeyError) as exc:
            last = exc
        time.sleep(every)
    if last is not None:
        raise AssertionError(f"not true within {within}s: {last}") from last
    raise AssertionError(f"not true within {within}s")


class Cluster:
    """Admin clients against the test API server, and small helpers the tests share."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.ext = client.ApiextensionsV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)

    def install_crd(self, crd: dict[str, Any]) -> None:
        try:
            self.ext.create_custom_resource_definition(crd)
        except ApiException as exc:
            if exc.status != 409:
                raise

        def established() -> bool:
            got = self.ext.read_custom_resource_definition(crd["metadata"]["name"])
            return any(
                c.type == "Established" and c.status == "True" for c in got.status.conditions or []
            )

        eventually(established, within=30)

    def create_namespace(self, name: str) -> None:
        try:
            self.core.create_namespace({"metadata": {"name": name}})
        except ApiException as exc:
            if exc.status != 409:
                raise

    def pipeline(self, namespace: str, name: str) -> dict[str, Any]:
        got: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
        return got

    def create_pipeline(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        made: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body
        )
        return made

    def condition(self, namespace: str, name: str, type_: str) -> dict[str, Any] | None:
        status = self.pipeline(namespace, name).get("status") or {}
        for cond in status.get("conditions") or []:
            if cond["type"] == type_:
                return dict(cond)
        return None

    def wait_condition(
        self, namespace: str, name: str, type_: str, status: str, reason: str | None = None,
        within: float = 60.0,
    ) -> dict[str, Any]:  # fmt: skip
        def check() -> dict[str, Any] | None:
            cond = self.condition(namespace, name, type_)
            if cond and cond["status"] == status and (reason is None or cond["reason"] == reason):
                return cond
            return None

        return eventually(check, within=within)

    def events(self, namespace: str) -> list[client.CoreV1Event]:
        return list(self.core.list_namespaced_event(namespace).items)


def example(name: str = "btc") -> dict[str, Any]:
    body = docs(K8S / "examples" / "pipeline.yaml")[0]
    body["metadata"]["name"] = name
    return body


def install_project(control_plane: Any) -> Cluster:
    """Admin access to `control_plane`, with the project's CRDs, kopf's peering CRDs, RBAC
    and ServiceAccount installed (and Strimzi's KafkaTopic CRD), as a user's install has."""
    from kubernetes import config

    cl = Cluster(config.new_client_from_config(config_file=str(control_plane.kubeconfig())))
    for path in (
        K8S / "crd" / "cryptopipelines.cryptopipeline.io.yaml",
        K8S / "testenv" / "crds" / "kafkatopics.kafka.strimzi.io.yaml",
    ):
        for crd in docs(path):
            cl.install_crd(crd)
    for doc in docs(K8S / "peering.yaml"):
        if doc["kind"] == "CustomResourceDefinition":
            cl.install_crd(doc)
    cl.create_namespace("cryptopipeline-system")
    for doc in docs(K8S / "rbac.yaml"):
        if doc["kind"] == "ServiceAccount":
            cl.core.create_namespaced_service_account("cryptopipeline-system", doc)
        elif doc["kind"] == "ClusterRole":
            cl.rbac.create_cluster_role(doc)
        elif doc["kind"] == "ClusterRoleBinding":
            cl.rbac.create_cluster_role_binding(doc)
    return cl
