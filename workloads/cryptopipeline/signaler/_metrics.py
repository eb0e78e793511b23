"""The signaler's Prometheus metrics, in their own registry; every sample also carries
`pipeline` and `workload="signaler"` (core.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from cryptopipeline.core.metrics import WorkloadRegistry

_PREFIX = "cryptopipeline_signaler"


class SignalerMetrics:
    def __init__(self, *, pipeline: str) -> None:
        self.registry = r = WorkloadRegistry(workload="signaler", pipeline=pipeline)
        self.records = Counter(
            f"{_PREFIX}_records_consumed", "Raw records read, by type.", ["type"], registry=r
        )
        self.signals = Counter(
            f"{_PREFIX}_signals", "Signals committed, by strategy and action.",
            ["product", "strategy", "action"], registry=r,
        )  # fmt: skip
        self.candles = Counter(
            f"{_PREFIX}_candles_closed", "Candles closed.", ["product", "interval"], registry=r
        )
        self.late_trades = Counter(
            f"{_PREFIX}_late_trades", "Trades for an already closed window, dropped, by product.",
            ["product"], registry=r,
        )  # fmt: skip
        self.dead_letters = Counter(
            f"{_PREFIX}_dead_letters", "Raw records that could not be read, by reason.",
            ["reason"], registry=r,
        )  # fmt: skip
        self.transactions = Counter(
            f"{_PREFIX}_transactions", "Kafka transactions, by outcome.", ["outcome"], registry=r
        )
        self.lag = Gauge(
            f"{_PREFIX}_consumer_lag_records", "Records behind the raw topic's end.",
            ["partition"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            f"{_PREFIX}_processing_latency_seconds",
            "Batch read to its transaction committed (a signal's delay after its closing tick).",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )  # fmt: skip
