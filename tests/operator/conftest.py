"""Fixtures for the operator tests: a real control plane, the CRDs, clients and a running operator.

`control_plane` (session) starts etcd + kube-apiserver (tests/operator/controlplane.py)
with two identities: an admin (system:masters) for the tests, and the operator's
ServiceAccount name, bound to k8s/rbac.yaml's ClusterRole, so the operator runs with
exactly the permissions the project ships. Tests that need it are marked `kube`; without
Go to build the binaries they skip, saying why.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from controlplane import ControlPlane, ControlPlaneUnavailable, User, binaries
from kube_support import OPERATOR_SA, Cluster, install_project

from tooling import tool_missing


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kube: needs the real kube-apiserver + etcd the project builds (k8s/testenv)"
    )


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    try:
        bin_dir = binaries()
    except ControlPlaneUnavailable as exc:
        tool_missing("control-plane", f"no control plane: {exc}")
    plane = ControlPlane(home=tmp_path_factory.mktemp("k8s"), bin_dir=bin_dir)
    plane.users.append(User("admin", uuid.uuid4().hex, ("system:masters",)))
    plane.users.append(
        User(
            OPERATOR_SA,
            uuid.uuid4().hex,
            ("system:serviceaccounts", "system:serviceaccounts:cryptopipeline-system"),
        )
    )
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def cluster(control_plane: ControlPlane) -> Cluster:
    """Admin access, with the project's CRDs and RBAC installed (and Strimzi's KafkaTopic)."""
    return install_project(control_plane)


@pytest.fixture
def namespace(cluster: Cluster) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.create_namespace(name)
    return name


@pytest.fixture
def operator_env(control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment the operator runs with: the ServiceAccount's kubeconfig, fast timers."""
    sa = next(u for u in control_plane.users if u.name == OPERATOR_SA)
    env = {
        "KUBECONFIG": str(control_plane.kubeconfig(sa)),
        "CRYPTOPIPELINE_OPERATOR__DRIFT_INTERVAL_S": "2",
        "CRYPTOPIPELINE_OPERATOR__RETRY_INITIAL_S": "1",
        "CRYPTOPIPELINE_OPERATOR__RETRY_MAX_S": "5",
        "CRYPTOPIPELINE_OPERATOR__KAFKA_TIMEOUT_S": "5",
        "CRYPTOPIPELINE_OPERATOR__METRICS_PORT": "0",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def run_operator(namespace: str, operator_env: dict[str, str]) -> Callable[..., Any]:
    """A context manager running the real operator (kopf) for `namespace` in this process."""
    from kopf.testing import KopfRunner

    def start(*extra: str) -> KopfRunner:
        args = ["run", "--namespace", namespace, "--verbose"]
        if "--peering" not in extra:
            args.append("--standalone")
        args += [*extra, "-m", "cryptopipeline_operator.handlers"]
        return KopfRunner(args, timeout=120)

    return start
