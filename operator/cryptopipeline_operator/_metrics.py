"""The operator's Prometheus metrics (`cryptopipeline_operator_*`), served on one port."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, start_http_server

if TYPE_CHECKING:
    from cryptopipeline_operator._reconcile import Outcome

REGISTRY = CollectorRegistry()
RECONCILES = Counter(
    "cryptopipeline_operator_reconciles_total",
    "Convergences by kind (change, drift) and result (converged, retry).",
    ["kind", "result"],
    registry=REGISTRY,
)
FAILURES = Counter(
    "cryptopipeline_operator_failures_total",
    "Drift checks that raised (retried on the next round).",
    registry=REGISTRY,
)
_served: list[int] = []


def reconciled(outcome: Outcome, *, drift: bool = False) -> None:
    result = "retry" if outcome.retry is not None else "converged"
    RECONCILES.labels("drift" if drift else "change", result).inc()


def failed() -> None:
    FAILURES.inc()


def serve(port: int) -> None:
    """Start the /metrics endpoint once per process."""
    if not _served:
        start_http_server(port, registry=REGISTRY)
        _served.append(port)
