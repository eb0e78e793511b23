"""The shared labels of every CryptoPipeline metric: `pipeline` and `workload`.

Each program keeps its metrics in a `WorkloadRegistry`, which adds the two labels to every
sample when it is collected (a scrape, `generate_latest`, a test's `get_sample_value`), so
metric definitions and the hot paths that update them do not carry them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from types import MappingProxyType

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

SHARED_LABELS = ("pipeline", "workload")


class WorkloadRegistry(CollectorRegistry):
    """A registry whose every sample carries `workload` and, when given, `pipeline`.

    A label a metric declares itself wins over the registry's: the operator serves many
    pipelines, so it leaves `pipeline` out here and labels each sample with the pipeline
    it reconciled.
    """

    def __init__(self, *, workload: str, pipeline: str | None = None) -> None:
        super().__init__()
        labels = {"workload": workload}
        if pipeline is not None:
            labels = {"pipeline": pipeline, **labels}
        self.shared_labels: Mapping[str, str] = MappingProxyType(labels)

    def collect(self) -> Iterator[Metric]:
        shared = dict(self.shared_labels)
        for metric in super().collect():
            labelled = copy.copy(metric)  # a custom collector may hand out the same object
            labelled.samples = [
                sample._replace(labels={**shared, **sample.labels}) for sample in metric.samples
            ]
            yield labelled

    def get_sample_value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """As `CollectorRegistry.get_sample_value`, the shared labels implied."""
        return super().get_sample_value(name, {**self.shared_labels, **(labels or {})})
