"""The operator's Prometheus metrics (`cryptopipeline_operator_*`), served on one port.

Every sample carries `workload="operator"` (the shared registry of `cryptopipeline.core.metrics`)
and `pipeline`: the name of the CryptoPipeline the convergence was for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, start_http_server

from cryptopipeline.core.metrics import WorkloadRegistry

if TYPE_CHECKING:
    from cryptopipeline_operator._reconcile import Outcome

REGISTRY = WorkloadRegistry(workload="operator")
RECONCILES = Counter(
    "cryptopipeline_operator_reconciles_total",
    "Convergences by pipeline, kind (change, drift) and result (converged, retry).",
    ["pipeline", "kind", "result"],
    registry=REGISTRY,
)
FAILURES = Counter(
    "cryptopipeline_operator_failures_total",
    "Drift checks that raised (retried on the next round), by pipeline.",
    ["pipeline"],
    registry=REGISTRY,
)
_served: list[int] = []


def reconciled(pipeline: str, outcome: Outcome, *, drift: bool = False) -> None:
    result = "retry" if outcome.retry is not None else "converged"
    RECONCILES.labels(pipeline, "drift" if drift else "change", result).inc()


def failed(pipeline: str) -> None:
    FAILURES.labels(pipeline).inc()


def serve(port: int) -> None:
    """Start the /metrics endpoint once per process."""
    if not _served:
        start_http_server(port, registry=REGISTRY)
        _served.append(port)
