"""The rendered chart applied to a real kube-apiserver: every object validated by Kubernetes.

For the default values and each ci/ value set: the chart's CRDs are created, then every
rendered object is server-side applied for real with strict field validation (an unknown
or misspelt field is an error, not silently pruned). The Prometheus Operator's CRDs are
installed first (test-only copies), so the ServiceMonitor and PrometheusRule are checked
too. Then RBAC is checked the way the API server authorizes: the chart's ServiceAccount may
do what the operator needs, and nothing cluster-wide that a namespaced install withholds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chart_support import CHART, CI_VALUES, REPO, Doc, by_kind, template
from controlplane import ControlPlane
from kube_support import Cluster, docs
from kubernetes import client, config, dynamic
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.kube

MONITORING_CRDS = [
    REPO / "k8s" / "testenv" / "crds" / "servicemonitors.monitoring.coreos.com.yaml",
    Path(__file__).parent / "crds" / "prometheusrules.monitoring.coreos.com.yaml",
]


@pytest.fixture(scope="module")
def cluster(chart_control_plane: ControlPlane) -> Cluster:
    api = config.new_client_from_config(config_file=str(chart_control_plane.kubeconfig()))
    cl = Cluster(api)
    for path in MONITORING_CRDS:
        for crd in docs(path):
            cl.install_crd(crd)
    return cl


def apply(cl: Cluster, doc: Doc, *, dry_run: bool = False) -> dict[str, Any]:
    """Server-side apply with strict field validation; the API server's answer."""
    resources = dynamic.DynamicClient(cl.api).resources
    res = resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
    meta = doc["metadata"]
    path = res.path(name=meta["name"], namespace=meta.get("namespace") if res.namespaced else None)
    query = [("fieldManager", "chart-test"), ("fieldValidation", "Strict"), ("force", "true")]
    if dry_run:
        query.append(("dryRun", "All"))
    headers = {"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"}
    method, url, headers, body, _ = cl.api.param_serialize(
        "PATCH", path, query_params=query, header_params=headers, body=json.dumps(doc),
        auth_settings=["BearerToken"],
    )  # fmt: skip
    resp = cl.api.call_api(method, url, header_params=headers, body=body)
    resp.read()
    text = resp.data.decode()
    if resp.status >= 400:
        exc = ApiException(status=resp.status, reason=resp.reason)
        exc.body = text
        raise exc
    answer: dict[str, Any] = json.loads(text)
    return answer


def install(cl: Cluster, values: Path | None, release: str, namespace: str) -> list[Doc]:
    """What `helm install` does, minus Helm's bookkeeping: CRDs, namespaces, then objects."""
    rendered = template(*([values] if values else []), release=release, namespace=namespace,
                        include_crds=True)  # fmt: skip
    for crd in by_kind(rendered, "CustomResourceDefinition"):
        cl.install_crd(crd)
    objects = [d for d in rendered if d["kind"] != "CustomResourceDefinition"]
    for ns in {namespace} | {d["metadata"].get("namespace") for d in objects} - {None}:
        cl.create_namespace(ns)
    for doc in objects:
        try:
            stored = apply(cl, doc)
        except ApiException as exc:
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']} rejected: {exc.body}")
        assert stored["kind"] == doc["kind"]
    return objects


def can(cl: Cluster, user: str, verb: str, group: str, resource: str, ns: str | None) -> bool:
    review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=user, groups=["system:serviceaccounts"],
        resource_attributes=client.V1ResourceAttributes(
            verb=verb, group=group, resource=resource, namespace=ns),
    ))  # fmt: skip
    got = client.AuthorizationV1Api(cl.api).create_subject_access_review(review)
    return bool(got.status.allowed)


CASES = [(None, "default"), *((p, p.stem.removesuffix("-values")) for p in CI_VALUES)]


@pytest.mark.parametrize(("values", "release"), CASES, ids=[c[1] for c in CASES])
def test_rendered_chart_is_accepted_by_the_api_server(
    cluster: Cluster, values: Path | None, release: str
) -> None:
    namespace = f"cp-{release}"
    objects = install(cluster, values, release, namespace)
    kinds = {d["kind"] for d in objects}
    assert {"Deployment", "ClusterRole", "ClusterRoleBinding"} <= kinds
    # applying the same objects again changes nothing (idempotent install/upgrade)
    for doc in objects:
        before = dynamic.DynamicClient(cluster.api).resources.get(
            api_version=doc["apiVersion"], kind=doc["kind"]
        )
        got = before.get(name=doc["metadata"]["name"], namespace=doc["metadata"].get("namespace"))
        version = got.metadata.resourceVersion
        assert apply(cluster, doc)["metadata"]["resourceVersion"] == version, doc["kind"]


def test_the_pipeline_from_values_is_a_valid_cryptopipeline(cluster: Cluster) -> None:
    install(cluster, CHART / "ci" / "pipeline-values.yaml", "pipeline", "cp-pipeline")
    stored = cluster.pipeline("cp-pipeline", "btc")
    assert stored["spec"]["products"] == ["BTC-USD", "ETH-USD"]


def test_an_invalid_pipeline_from_values_is_rejected_by_the_crd(cluster: Cluster) -> None:
    (doc,) = by_kind(
        template(CHART / "ci" / "pipeline-values.yaml", release="bad", namespace="cp-bad",
                 sets=("pipeline.spec.bot.mode=live",)),
        "CryptoPipeline",
    )  # fmt: skip
    cluster.create_namespace("cp-bad")
    with pytest.raises(ApiException) as err:
        apply(cluster, doc, dry_run=True)
    assert err.value.status == 422
    assert "coinbaseKeySecret" in str(err.value.body)


def test_the_charts_service_account_may_do_what_the_operator_needs(cluster: Cluster) -> None:
    install(cluster, None, "rbac", "cp-rbac")
    sa = "system:serviceaccount:cp-rbac:rbac-cryptopipeline-operator"
    for verb, group, resource in [
        ("watch", "cryptopipeline.io", "cryptopipelines"),
        ("patch", "cryptopipeline.io", "cryptopipelines/status"),
        ("create", "apps", "deployments"),
        ("delete", "", "configmaps"),
        ("create", "monitoring.coreos.com", "servicemonitors"),
        ("create", "kafka.strimzi.io", "kafkatopics"),
        ("get", "", "secrets"),
        ("create", "", "events"),
        ("patch", "kopf.dev", "clusterkopfpeerings"),
    ]:
        assert can(cluster, sa, verb, group, resource, "anywhere"), (verb, resource)
    denied = [
        ("list", "", "secrets"),
        ("update", "", "secrets"),
        ("create", "", "pods"),
        ("update", "apps", "deployments/scale"),
        ("create", "rbac.authorization.k8s.io", "clusterroles"),
    ]
    for verb, group, resource in denied:
        assert not can(cluster, sa, verb, group, resource, "anywhere"), (verb, resource)


def test_a_namespaced_install_grants_nothing_elsewhere(cluster: Cluster) -> None:
    install(cluster, CHART / "ci" / "namespaced-values.yaml", "namespaced", "cp-namespaced")
    sa = "system:serviceaccount:cp-namespaced:cpl-operator-sa"
    assert can(cluster, sa, "create", "apps", "deployments", "trading-a")
    assert can(cluster, sa, "get", "", "secrets", "trading-b")
    assert not can(cluster, sa, "create", "apps", "deployments", "default")
    assert not can(cluster, sa, "get", "", "secrets", "kube-system")
    assert can(cluster, sa, "list", "apiextensions.k8s.io", "customresourcedefinitions", None)
