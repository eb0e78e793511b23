"""The chart with the project's Helm: lint, render, schema, RBAC and CRDs in sync with k8s/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from chart_support import (
    CHART,
    CI_VALUES,
    KUBE_VERSION,
    REPO,
    by_kind,
    one,
    rule_set,
    run_helm,
    template,
)  # fmt: skip

VALUE_SETS = [None, *CI_VALUES]
IDS = ["default", *(p.stem for p in CI_VALUES)]


def test_ci_folder_has_at_least_two_value_sets() -> None:
    assert len(CI_VALUES) >= 2


@pytest.mark.parametrize("values", VALUE_SETS, ids=IDS)
def test_helm_lint_passes(values: Path | None) -> None:
    args = ["lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION]
    if values:
        args += ["-f", str(values)]
    done = run_helm(*args)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("values", VALUE_SETS, ids=IDS)
def test_every_object_carries_the_chart_labels(values: Path | None) -> None:
    docs = template(*([values] if values else []))
    assert docs
    for doc in docs:
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "cryptopipeline", doc["metadata"]
        assert labels.get("app.kubernetes.io/managed-by") == "Helm", doc["metadata"]


def test_defaults_install_the_operator_hardened() -> None:
    docs = template()
    deploy = one(docs, "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["cryptopipeline-operator"]
    assert "--peering=cryptopipeline-operator" in container["args"]
    assert container["image"] == "cryptopipeline:0.1.0"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert one(docs, "ClusterKopfPeering")["metadata"]["name"] == "cryptopipeline-operator"
    assert not by_kind(docs, "CryptoPipeline")


def test_rbac_is_exactly_the_operators_rbac_from_k8s() -> None:
    """Cluster-wide install: the ClusterRole grants what k8s/rbac.yaml grants, no more."""
    shipped = next(
        d for d in yaml.safe_load_all((REPO / "k8s" / "rbac.yaml").read_text())
        if d and d["kind"] == "ClusterRole"
    )  # fmt: skip
    role = one(template(), "ClusterRole")
    assert rule_set(role["rules"]) == rule_set(shipped["rules"])
    binding = one(template(), "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_namespaced_install_grants_namespaced_rights_only_through_roles() -> None:
    docs = template(CHART / "ci" / "namespaced-values.yaml")
    cluster_role = one(docs, "ClusterRole")
    cluster_resources = {r for _, r, _ in rule_set(cluster_role["rules"])}
    assert cluster_resources == {"customresourcedefinitions", "namespaces"}
    roles = by_kind(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["trading-a", "trading-b"]
    shipped = next(
        d for d in yaml.safe_load_all((REPO / "k8s" / "rbac.yaml").read_text())
        if d and d["kind"] == "ClusterRole"
    )  # fmt: skip
    for role in roles:  # never more than the cluster-wide rules grant
        assert rule_set(role["rules"]) <= rule_set(shipped["rules"])
    args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=trading-a" in args and "--namespace=trading-b" in args
    assert sorted(p["metadata"]["namespace"] for p in by_kind(docs, "KopfPeering")) == [
        "trading-a", "trading-b",
    ]  # fmt: skip
    assert not by_kind(docs, "ClusterKopfPeering")


def test_crd_copies_equal_k8s() -> None:
    """charts/cryptopipeline/crds/ is a copy of k8s/ (make chart-crds refreshes it)."""
    copy = CHART / "crds" / "cryptopipelines.cryptopipeline.io.yaml"
    source = REPO / "k8s" / "crd" / "cryptopipelines.cryptopipeline.io.yaml"
    assert copy.read_bytes() == source.read_bytes()
    check = subprocess.run([sys.executable, str(REPO / "charts" / "sync_crds.py"), "--check"],
                           capture_output=True, text=True)  # fmt: skip
    assert check.returncode == 0, check.stdout
    crds = [d for d in template(include_crds=True) if d["kind"] == "CustomResourceDefinition"]
    assert sorted(d["metadata"]["name"] for d in crds) == [
        "clusterkopfpeerings.kopf.dev", "cryptopipelines.cryptopipeline.io",
        "kopfpeerings.kopf.dev",
    ]  # fmt: skip


def test_dashboards_are_configmaps_for_grafanas_sidecar() -> None:
    maps = by_kind(template(), "ConfigMap")
    files = sorted((CHART / "dashboards").glob("*.json"))
    assert len(maps) == len(files) == 5
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((key, text),) = cm["data"].items()
        assert json.loads(text) == json.loads((CHART / "dashboards" / key).read_text())
    custom = by_kind(template(CHART / "ci" / "namespaced-values.yaml"), "ConfigMap")
    assert {c["metadata"]["namespace"] for c in custom} == {"monitoring"}
    assert {c["metadata"]["labels"]["grafana_dashboard"] for c in custom} == {"cryptopipeline"}


def test_prometheus_rule_only_where_the_prometheus_operator_is() -> None:
    rules_file = yaml.safe_load((CHART / "rules" / "cryptopipeline.rules.yaml").read_text())
    rule = one(template(), "PrometheusRule")
    assert rule["spec"]["groups"] == rules_file["groups"]
    assert not by_kind(template(api_versions=()), "PrometheusRule")
    assert not by_kind(template(api_versions=()), "ServiceMonitor")
    assert one(template(), "ServiceMonitor")["spec"]["endpoints"][0]["port"] == "metrics"


def test_prometheus_rule_options() -> None:
    docs = template(CHART / "ci" / "pipeline-values.yaml")
    rule = one(docs, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    alerts = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    shipped = yaml.safe_load((CHART / "rules" / "cryptopipeline.rules.yaml").read_text())
    assert len(alerts) == sum(len(g["rules"]) for g in shipped["groups"])  # every rule, once
    assert all(a["labels"]["team"] == "trading" and a["labels"]["severity"] for a in alerts)
    docs = template(CHART / "ci" / "namespaced-values.yaml")
    names = {r["alert"] for g in one(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]}
    assert "CryptoPipelineOperatorRetrying" not in names
    assert "CryptoPipelineKillSwitchOn" in names


def test_a_first_pipeline_from_values() -> None:
    docs = template(CHART / "ci" / "pipeline-values.yaml")
    pipeline = one(docs, "CryptoPipeline")
    assert pipeline["apiVersion"] == "cryptopipeline.io/v1alpha1"
    assert pipeline["metadata"] == {**pipeline["metadata"], "name": "btc",
                                    "namespace": "cryptopipeline-system"}  # fmt: skip
    assert pipeline["spec"]["products"] == ["BTC-USD", "ETH-USD"]


def test_minimal_values_leave_out_the_optional_parts() -> None:
    docs = template(CHART / "ci" / "minimal-values.yaml")
    assert sorted(d["kind"] for d in docs) == [
        "ClusterRole", "ClusterRoleBinding", "Deployment", "ServiceAccount",
    ]  # fmt: skip
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--standalone" in container["args"]
    assert container["image"].startswith("cryptopipeline@sha256:")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("image.pullPolicy=Sometimes", "'/image/pullPolicy': value must be one of"),
        ("operator.replicas=-1", "'/operator/replicas': minimum"),
        ("operator.watchNamespaces[0]=Bad_NS", "'/operator/watchNamespaces/0'"),
        ("pipeline.name=a-name-that-is-far-too-long-for-a-cryptopipeline", "'/pipeline/name'"),
        ("prometheusRule.disabledAlerts[0]=NoSuchAlert", "'/prometheusRule/disabledAlerts/0'"),
        ("operator.driftIntervalSeconds=0", "'/operator/driftIntervalSeconds'"),
        ("metrics.serviceMonitor.interval=soon", "'/metrics/serviceMonitor/interval'"),
        ("operatr.replicas=2", "additional properties 'operatr' not allowed"),
    ],
)
def test_schema_rejects_wrong_values_with_a_clear_message(setting: str, message: str) -> None:
    args = ["template", "cp", str(CHART), "--kube-version", KUBE_VERSION, "--set", setting]
    done = run_helm(*args)
    assert done.returncode != 0
    assert "values don't meet the specifications" in done.stderr
    assert message in done.stderr, done.stderr
