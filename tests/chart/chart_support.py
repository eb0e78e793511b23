"""Helpers of the chart tests: find Helm, render the chart, read the rendered objects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "cryptopipeline"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
KUBE_VERSION = "1.36.3"  # the version of the test control plane (k8s/testenv)
MONITORING = ("monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule")

sys.path.insert(0, str(REPO / "charts"))
import tools  # noqa: E402  (charts/tools.py: where Helm is)

from tooling import tool_missing  # noqa: E402

Doc = dict[str, Any]


def helm() -> Path:
    """The project's Helm build, or skip saying how to get it."""
    path = tools.helm_path()
    if path is None:
        tool_missing("chart-tools", f"helm {tools.HELM_VERSION} not built (charts/tools.py)")
    return path


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm()), *args], capture_output=True, text=True, timeout=120)


def template(
    *values: Path,
    release: str = "cp",
    namespace: str = "cryptopipeline-system",
    api_versions: tuple[str, ...] = MONITORING,
    include_crds: bool = False,
    sets: tuple[str, ...] = (),
) -> list[Doc]:
    """`helm template` the chart; the rendered objects, in order."""
    args = ["template", release, str(CHART), "--namespace", namespace,
            "--kube-version", KUBE_VERSION]  # fmt: skip
    for v in values:
        args += ["-f", str(v)]
    for api in api_versions:
        args += ["--api-versions", api]
    for s in sets:
        args += ["--set", s]
    if include_crds:
        args.append("--include-crds")
    done = run_helm(*args)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def by_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[Doc], kind: str) -> Doc:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"{len(found)} {kind}s"
    return found[0]


def rule_set(rules: list[Doc]) -> set[tuple[str, str, str]]:
    """RBAC rules flattened to (apiGroup, resource, verb), order and grouping aside."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }
