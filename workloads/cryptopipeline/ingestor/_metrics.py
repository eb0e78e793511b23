"""The ingestor's Prometheus metrics, in their own registry (one per service instance);
every sample also carries `pipeline` and `workload="ingestor"` (core.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from cryptopipeline.core.metrics import WorkloadRegistry

_PREFIX = "cryptopipeline_ingestor"


class IngestorMetrics:
    def __init__(self, *, pipeline: str) -> None:
        self.registry = r = WorkloadRegistry(workload="ingestor", pipeline=pipeline)
        self.messages_received = Counter(
            f"{_PREFIX}_messages_received", "Frames received, by connection and type.",
            ["connection", "type"], registry=r,
        )  # fmt: skip
        self.records_published = Counter(
            f"{_PREFIX}_records_published", "Records acknowledged by Kafka, by product and kind.",
            ["product", "kind"], registry=r,
        )  # fmt: skip
        self.duplicates_dropped = Counter(
            f"{_PREFIX}_duplicates_dropped", "Trades already published or waiting, dropped.",
            ["product"], registry=r,
        )  # fmt: skip
        self.gaps = Counter(f"{_PREFIX}_gaps", "Trade-id gaps detected.", ["product"], registry=r)
        self.trades_backfilled = Counter(
            f"{_PREFIX}_trades_backfilled", "Trades fetched over REST to fill gaps.",
            ["product"], registry=r,
        )  # fmt: skip
        self.trades_unfilled = Counter(
            f"{_PREFIX}_trades_unfilled", "Trades of gaps neither a socket nor REST could fill.",
            ["product"], registry=r,
        )  # fmt: skip
        self.dead_letters = Counter(
            f"{_PREFIX}_dead_letters",
            "Frames sent to the dead-letter topic, by product (when a subscribed one) and reason.",
            ["product", "reason"], registry=r,
        )  # fmt: skip
        self.reconnects = Counter(
            f"{_PREFIX}_reconnects", "Connection restarts, by connection and reason.",
            ["connection", "reason"], registry=r,
        )  # fmt: skip
        self.exchange_errors = Counter(
            f"{_PREFIX}_exchange_errors", "`error` messages from the exchange.", registry=r
        )
        self.connected = Gauge(
            f"{_PREFIX}_connected", "1 while a connection is subscribed.", ["connection"],
            registry=r,
        )  # fmt: skip
        self.buffered_records = Gauge(
            f"{_PREFIX}_buffered_records", "Records handed to Kafka and not yet acknowledged.",
            registry=r,
        )  # fmt: skip
        self.buffer_capacity = Gauge(
            f"{_PREFIX}_buffer_capacity_records", "Bound of buffered_records.", registry=r
        )
        self.pending_trades = Gauge(
            f"{_PREFIX}_pending_trades", "Trades waiting for a gap before them to fill.",
            ["product"], registry=r,
        )  # fmt: skip
        self.produce_latency = Histogram(
            f"{_PREFIX}_produce_latency_seconds", "Frame received to broker acknowledgement.",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )  # fmt: skip
        self.kafka_refused = Counter(
            f"{_PREFIX}_kafka_refused",
            "Records Kafka refused for what they are (timestamp, size), by product and kind; "
            "dead-lettered unless they were dead letters.",
            ["product", "kind"], registry=r,
        )  # fmt: skip
        self.implausible_ids = Counter(
            f"{_PREFIX}_implausible_trade_ids",
            "Trade ids or heartbeat last_trade_ids far ahead of the truth that REST did not "
            "confirm (dead-lettered), by product.",
            ["product"], registry=r,
        )  # fmt: skip
        self.stuck = Gauge(
            f"{_PREFIX}_product_stuck",
            "1 while a product receives trades but publishes none for stuck_after_s.",
            ["product"], registry=r,
        )  # fmt: skip
        self.kafka_failures = Counter(
            f"{_PREFIX}_kafka_failures", "Kafka delivery failures that restarted the session.",
            registry=r,
        )  # fmt: skip
