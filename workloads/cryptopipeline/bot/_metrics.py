"""The bot's Prometheus metrics, in their own registry; every sample also carries
`pipeline` and `workload="bot"` (core.metrics). No label ever holds a secret.

`product` is on what concerns one product; an unreadable signal has `product=""`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from cryptopipeline.core.metrics import WorkloadRegistry
from cryptopipeline.trading import Blotter, RiskEngine

_PREFIX = "cryptopipeline_bot"


class BotMetrics:
    def __init__(self, *, pipeline: str) -> None:
        self.registry = r = WorkloadRegistry(workload="bot", pipeline=pipeline)
        self.signals = Counter(
            f"{_PREFIX}_signals", "Signals consumed, by product and result.",
            ["product", "result"], registry=r,
        )  # fmt: skip
        self.order_events = Counter(
            f"{_PREFIX}_order_events", "Order lifecycle events logged, by product and event.",
            ["product", "event"], registry=r,
        )  # fmt: skip
        self.rejections = Counter(
            f"{_PREFIX}_rejections", "Orders rejected, by product and reason.",
            ["product", "reason"], registry=r,
        )  # fmt: skip
        self.bad_input = Counter(
            f"{_PREFIX}_bad_input", "Records the bot refused to act on, by source and reason "
            "(tick, signal, order_log; not_json, schema, bad_decimal, ...).",
            ["source", "reason"], registry=r,
        )  # fmt: skip
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
        self.daily_loss = Gauge(
            f"{_PREFIX}_daily_loss",
            "Loss since the daily reset hour (realized + unrealized, net of fees; < 0 is a gain).",
            registry=r,
        )  # fmt: skip
        self.daily_loss_limit = Gauge(
            f"{_PREFIX}_daily_loss_limit", "The daily loss at which orders are rejected.",
            registry=r,
        )  # fmt: skip
        self.signal_to_ack = Histogram(
            f"{_PREFIX}_signal_to_ack_seconds", "Signal received to broker acknowledgement.",
            ["product"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
            registry=r,
        )  # fmt: skip

    def observe(self, blotter: Blotter, risk: RiskEngine, now: float) -> None:
        """Set the gauges of positions, money, open orders and the daily loss."""
        portfolio = blotter.portfolio
        for product, position in portfolio.positions.items():
            self.position.labels(product).set(float(position.quantity))
        self.equity.set(float(portfolio.equity))
        self.cash.set(float(portfolio.cash))
        self.pnl.labels("realized").set(float(portfolio.realized_pnl))
        self.pnl.labels("unrealized").set(float(portfolio.unrealized_pnl))
        self.pnl.labels("fees").set(float(portfolio.fees))
        self.pnl.labels("net").set(float(portfolio.net_pnl))
        self.open_orders.set(len(blotter.open_orders()))
        self.daily_loss.set(float(risk.daily_loss(now, portfolio.equity)))
        self.daily_loss_limit.set(float(risk.limits.max_daily_loss))
