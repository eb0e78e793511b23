"""The bot's Prometheus metrics, in their own registry. No label ever holds a secret."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_PREFIX = "cryptopipeline_bot"


class BotMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.signals = Counter(
            f"{_PREFIX}_signals", "Signals consumed, by result.", ["result"], registry=r
        )
        self.order_events = Counter(
            f"{_PREFIX}_order_events", "Order lifecycle events logged, by event (outcome).",
            ["event"], registry=r,
        )  # fmt: skip
        self.rejections = Counter(
            f"{_PREFIX}_rejections", "Orders rejected, by reason.", ["reason"], registry=r
        )
        self.broker_errors = Counter(
            f"{_PREFIX}_broker_errors", "Broker calls that failed, by kind.", ["kind"], registry=r
        )
        self.position = Gauge(
            f"{_PREFIX}_position", "Position in base units.", ["product"], registry=r
        )
        self.equity = Gauge(f"{_PREFIX}_equity", "Cash plus positions at mark.", registry=r)
        self.cash = Gauge(f"{_PREFIX}_cash", "Cash in the quote currency.", registry=r)
        self.pnl = Gauge(
            f"{_PREFIX}_pnl", "PnL by kind (realized, unrealized, fees, net).", ["kind"],
            registry=r,
        )  # fmt: skip
        self.open_orders = Gauge(f"{_PREFIX}_open_orders", "Orders not final.", registry=r)
        self.killed = Gauge(f"{_PREFIX}_kill_switch", "1 once the kill switch tripped.", registry=r)
        self.signal_to_ack = Histogram(
            f"{_PREFIX}_signal_to_ack_seconds", "Signal received to broker acknowledgement.",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
            registry=r,
        )  # fmt: skip
