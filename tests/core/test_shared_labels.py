"""Every sample every program exposes carries `pipeline` and `workload` (core.metrics)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from cryptopipeline.bot import BotSettings
from cryptopipeline.bot.service import Bot
from cryptopipeline.core.metrics import WorkloadRegistry
from cryptopipeline.core.ops import OpsServer
from cryptopipeline.core.settings import ServiceSettings
from cryptopipeline.ingestor.service import Ingestor, IngestorSettings
from cryptopipeline.signaler.service import Signaler, SignalerSettings
from cryptopipeline_operator import _metrics as operator_metrics


def _touch_every_metric(metrics: Any) -> int:
    """Give every metric of a program's metrics class a sample; how many metrics."""
    found = [m for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)]
    for metric in found:
        names = metric._labelnames
        child = metric.labels(*["x"] * len(names)) if names else metric
        if isinstance(metric, Counter):
            child.inc()
        elif isinstance(metric, Gauge):
            child.set(1)
        elif isinstance(metric, Histogram):
            child.observe(0.01)
    return len(found)


async def _scrape(registry: WorkloadRegistry) -> list[dict[str, str]]:
    """Every sample's labels, as /metrics serves them."""
    async with (
        OpsServer(
            registry, live=lambda: (True, {}), ready=lambda: (True, {}), host="127.0.0.1", port=0
        ) as ops,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{ops.port}") as http,
    ):
        text = (await http.get("/metrics")).text
    return [s.labels for f in text_string_to_metric_families(text) for s in f.samples]


def _programs() -> list[tuple[str, Any]]:
    pipeline = {"pipeline_name": "btc-main"}
    return [
        ("ingestor", lambda: Ingestor(IngestorSettings(**pipeline)).metrics),
        ("signaler", lambda: Signaler(SignalerSettings(**pipeline)).metrics),
        ("bot", lambda: Bot(BotSettings(**pipeline)).metrics),
    ]


@pytest.mark.parametrize(("workload", "build"), _programs(), ids=[w for w, _ in _programs()])
async def test_every_sample_of_a_workload_carries_pipeline_and_workload(
    workload: str, build: Any
) -> None:
    metrics = build()  # as the service builds it from its settings
    assert _touch_every_metric(metrics) >= 8
    samples = await _scrape(metrics.registry)
    assert len(samples) > 20
    for labels in samples:
        assert labels.get("pipeline") == "btc-main", labels
        assert labels.get("workload") == workload, labels


async def test_every_sample_of_the_operator_carries_the_pipeline_it_reconciled() -> None:
    operator_metrics.RECONCILES.labels("btc-main", "change", "converged").inc()
    operator_metrics.FAILURES.labels("btc-main").inc()
    samples = await _scrape(operator_metrics.REGISTRY)
    assert samples
    for labels in samples:
        assert labels.get("workload") == "operator", labels
        assert labels.get("pipeline"), labels


def test_a_label_the_metric_declares_wins_and_lookups_imply_the_shared_ones() -> None:
    registry = WorkloadRegistry(workload="bot", pipeline="p")
    Gauge("g", "a gauge", ["pipeline"], registry=registry).labels("own").set(2)
    Gauge("h", "another", registry=registry).set(3)
    assert registry.get_sample_value("g", {"pipeline": "own"}) == 2
    assert registry.get_sample_value("h") == 3
    assert registry.get_sample_value("h", {"pipeline": "p", "workload": "bot"}) == 3
    labels = {s.name: s.labels for m in registry.collect() for s in m.samples}
    assert labels == {"g": {"pipeline": "own", "workload": "bot"},
                      "h": {"pipeline": "p", "workload": "bot"}}  # fmt: skip


def test_the_pipeline_name_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().pipeline_name == "local"
    monkeypatch.setenv("CRYPTOPIPELINE_PIPELINE_NAME", "eth-eu")
    assert ServiceSettings().pipeline_name == "eth-eu"
