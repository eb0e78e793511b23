"""Each default has one home in `core.settings`; what cannot import it (the CRD's YAML)
is held to it here, and what can is checked to really read it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cryptopipeline.bot._settings import BotSettings
from cryptopipeline.core.settings import (
    DEFAULT_TOPIC_SETTINGS,
    DEFAULT_TOPICS,
    OPS_PORTS,
    PipelineSettings,
    TopicSpec,
)
from cryptopipeline.ingestor._settings import IngestorSettings
from cryptopipeline.ksql._settings import MigrationVariables
from cryptopipeline.localrun import LocalRunOptions
from cryptopipeline.signaler._settings import SignalerSettings
from cryptopipeline_operator._spec import TopicNamesSpec, TopicsSpec

REPO = Path(__file__).resolve().parents[2]
CRDS = [
    REPO / "k8s" / "crd" / "cryptopipelines.cryptopipeline.io.yaml",
    REPO / "charts" / "cryptopipeline" / "crds" / "cryptopipelines.cryptopipeline.io.yaml",
]


def _topics_schema(crd: Path) -> dict[str, Any]:
    document = yaml.safe_load(crd.read_text(encoding="utf-8"))
    spec = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    topics: dict[str, Any] = spec["properties"]["kafka"]["properties"]["topics"]
    return topics


def test_the_crds_default_topics_as_the_workloads_do() -> None:
    names = {
        "raw": DEFAULT_TOPICS.raw,
        "deadLetter": DEFAULT_TOPICS.dead_letter,
        "tradeSignals": DEFAULT_TOPICS.trade_signals,
        "orders": DEFAULT_TOPICS.orders,
    }
    for crd in CRDS:
        topics = _topics_schema(crd)["properties"]
        assert topics["partitions"]["default"] == DEFAULT_TOPIC_SETTINGS.partitions, crd
        assert topics["replicas"]["default"] == DEFAULT_TOPIC_SETTINGS.replication_factor, crd
        assert topics["retentionMs"]["default"] == DEFAULT_TOPIC_SETTINGS.retention_ms, crd
        assert topics["names"]["default"] == names, crd
        assert {k: v["default"] for k, v in topics["names"]["properties"].items()} == names, crd


def test_the_operator_and_the_workloads_share_topic_defaults() -> None:
    spec, names = TopicsSpec(), TopicNamesSpec()
    assert (spec.partitions, spec.replicas, spec.retention_ms) == (
        DEFAULT_TOPIC_SETTINGS.partitions,
        DEFAULT_TOPIC_SETTINGS.replication_factor,
        DEFAULT_TOPIC_SETTINGS.retention_ms,
    )
    assert names.all() == list(PipelineSettings().topics.model_dump().values())
    assert MigrationVariables().raw_topic == DEFAULT_TOPICS.raw
    topic = TopicSpec(name="t")
    assert (topic.partitions, topic.replication_factor, topic.retention_ms) == (
        DEFAULT_TOPIC_SETTINGS.partitions,
        DEFAULT_TOPIC_SETTINGS.replication_factor,
        DEFAULT_TOPIC_SETTINGS.retention_ms,
    )


def test_every_workload_defaults_to_its_ops_port() -> None:
    assert IngestorSettings().ops.port == OPS_PORTS["ingestor"]
    assert SignalerSettings().ops.port == OPS_PORTS["signaler"]
    assert BotSettings().ops.port == OPS_PORTS["bot"]
    local = LocalRunOptions(home=Path("."))
    assert (local.ingestor_ops_port, local.signaler_ops_port, local.bot_ops_port) == (
        OPS_PORTS["ingestor"],
        OPS_PORTS["signaler"],
        OPS_PORTS["bot"],
    )
    assert len(set(OPS_PORTS.values())) == len(OPS_PORTS), "one port per workload"


def test_the_image_exposes_the_ops_ports() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    (expose,) = [line.split()[1:] for line in dockerfile.splitlines() if line.startswith("EXPOSE")]
    assert {str(port) for port in OPS_PORTS.values()} <= set(expose)
