"""Fixtures of the chart tests: the real control plane of tests/operator, started for them.

The operator tests' helpers (tests/operator/controlplane.py, kube_support.py) are imported,
not copied; this session fixture starts its own etcd + kube-apiserver (with no operator
identity: the chart's objects are applied as the admin).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
from controlplane import ControlPlane, ControlPlaneUnavailable, User, binaries

from tooling import tool_missing


@pytest.fixture(scope="session")
def chart_control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    try:
        bin_dir = binaries()
    except ControlPlaneUnavailable as exc:
        tool_missing("control-plane", f"no control plane: {exc}")
    plane = ControlPlane(home=tmp_path_factory.mktemp("chart-k8s"), bin_dir=bin_dir)
    plane.users.append(User("admin", uuid.uuid4().hex, ("system:masters",)))
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()
