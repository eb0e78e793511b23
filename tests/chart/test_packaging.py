"""The Dockerfile, .dockerignore, Tiltfile and kind config, checked without Docker or Tilt
(neither runs here): they name only programs, files and names that exist."""

from __future__ import annotations

import re
import subprocess
import tomllib

import yaml
from chart_support import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()
TILTFILE = (REPO / "Tiltfile").read_text()
SCRIPTS = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    lines = [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def test_dockerfile_is_multi_stage_slim_and_non_root() -> None:
    instr = _instructions()
    stages = [arg for op, arg in instr if op == "FROM"]
    assert [s.split(" AS ")[-1] for s in stages] == ["build", "runtime", "dev"]
    assert re.search(r"ARG PYTHON=python:3\.11-slim", DOCKERFILE)
    runtime = DOCKERFILE.split("AS runtime", 1)[1].split("AS dev", 1)[0]
    assert "USER 10001:10001" in runtime and "COPY --from=build /opt/venv /opt/venv" in runtime
    assert DOCKERFILE.rstrip().splitlines()[-1].startswith("ENV PATH")
    assert "USER 10001:10001" in DOCKERFILE.split("AS dev", 1)[1]  # dev ends non-root too
    assert not any(op == "ENTRYPOINT" for op, _ in instr)  # the pod's command selects


def test_every_program_the_image_names_is_a_console_script() -> None:
    named = set(re.findall(r"\b(?:cryptopipeline(?:-[a-z]+)?|coinbase-sim)\b", DOCKERFILE))
    assert named <= SCRIPTS, named - SCRIPTS
    loop = re.search(r"for prog in (.*?); do", re.sub(r"\\\n", " ", DOCKERFILE))
    assert loop is not None
    assert set(loop.group(1).split()) == SCRIPTS  # every program runs in the dev image


def test_dockerignore_lets_in_exactly_what_the_dockerfile_copies() -> None:
    allowed = {ln[1:].rstrip("/") for ln in (REPO / ".dockerignore").read_text().splitlines()
               if ln.startswith("!")}  # fmt: skip
    copied = {
        src.rstrip("/")
        for op, arg in _instructions() if op == "COPY" and "--from" not in arg
        for src in arg.replace("--chown=10001:10001", "").split()[:-1]
    }  # fmt: skip
    assert copied == allowed
    for path in allowed:
        assert (REPO / path).exists(), path


def test_dev_run_is_valid_posix_shell() -> None:
    assert subprocess.run(["sh", "-n", str(REPO / "docker" / "dev-run")]).returncode == 0


def test_tiltfile_and_kind_config_agree() -> None:
    kind = yaml.safe_load((REPO / "k8s" / "kind" / "kind-config.yaml").read_text())
    assert kind["kind"] == "Cluster" and kind["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert f"allow_k8s_contexts('kind-{kind['name']}')" in TILTFILE
    for path in re.findall(r"'((?:charts|k8s|workloads|operator)/[^' %]*)'", TILTFILE):
        assert (REPO / path).exists(), path
    assert "target='dev'" in TILTFILE and "live_update" in TILTFILE
    # the resource names Tilt refers to are the chart's and the example's
    assert "dev-cryptopipeline-operator" in TILTFILE
    example = yaml.safe_load((REPO / "k8s" / "examples" / "pipeline.yaml").read_text())
    assert f"k8s_resource('{example['metadata']['name']}'" in TILTFILE
    kafka = list(
        yaml.safe_load_all((REPO / "charts" / "dev" / "kafka-single-node.yaml").read_text())
    )
    assert {d["kind"] for d in kafka} == {"Kafka", "KafkaNodePool"}
    assert example["spec"]["kafka"]["strimziCluster"] == next(
        d["metadata"]["name"] for d in kafka if d["kind"] == "Kafka"
    )
