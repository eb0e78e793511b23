"""What the observability tests share: the chart's dashboards and rules, and the workloads'
real metric registries filled with values (an "everything is going wrong" state, so that
every panel has data and every alert's condition holds)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from cryptopipeline.bot._metrics import BotMetrics
from cryptopipeline.ingestor._metrics import IngestorMetrics
from cryptopipeline.signaler._metrics import SignalerMetrics
from cryptopipeline.trading.orders import OrderEventType
from cryptopipeline.trading.risk import RejectReason
from cryptopipeline_operator import _metrics as operator_metrics

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "cryptopipeline"
RULES = CHART / "rules" / "cryptopipeline.rules.yaml"
METRIC = re.compile(r"\bcryptopipeline_[a-z_]+\b")
PIPELINE = "local"


def dashboards() -> dict[str, dict[str, Any]]:
    return {
        p.stem: json.loads(p.read_text()) for p in sorted((CHART / "dashboards").glob("*.json"))
    }


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, PromQL with Grafana's variables resolved as "All")."""
    out = []
    for name, dash in dashboards().items():
        for panel in dash["panels"]:
            for target in panel["targets"]:
                expr = (target["expr"].replace("$__rate_interval", "1m")
                        .replace("$namespace", ".*").replace("$pipeline", ".*"))  # fmt: skip
                out.append((name, panel["title"], expr))
    return out


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def used_metric_names() -> set[str]:
    exprs = [e for _, _, e in dashboard_queries()] + [r["expr"] for r in alert_rules()]
    return {m for e in exprs for m in METRIC.findall(e)}


class Workloads:
    """The four metric registries of the project, as each program builds them."""

    def __init__(self) -> None:
        self.ingestor = IngestorMetrics(pipeline=PIPELINE)
        self.signaler = SignalerMetrics(pipeline=PIPELINE)
        self.bot = BotMetrics(pipeline=PIPELINE)
        self.operator: CollectorRegistry = operator_metrics.REGISTRY
        self.lag = 2000.0
        self.tick(first=True)

    def registries(self) -> dict[str, CollectorRegistry]:
        return {"ingestor": self.ingestor.registry, "signaler": self.signaler.registry,
                "bot": self.bot.registry, "operator": self.operator}  # fmt: skip

    def exported_names(self) -> set[str]:
        return {s.name for r in self.registries().values() for m in r.collect() for s in m.samples}

    def tick(self, *, first: bool = False) -> None:
        """One step of a troubled pipeline: counters move, the ingest rate stays flat."""
        i, s, b = self.ingestor, self.signaler, self.bot
        if first:  # published once, then never again: the ingest stall
            i.records_published.labels("BTC-USD", "ticker").inc(100)
            i.records_published.labels("BTC-USD", "heartbeat").inc(100)
            i.buffer_capacity.set(10000)
            b.killed.set(1)
            b.daily_loss_limit.set(100)
            for kind, value in (("realized", -80), ("unrealized", -30), ("fees", 5), ("net", -115)):
                b.pnl.labels(kind).set(value)
        for conn in ("a", "b"):
            i.messages_received.labels(conn, "ticker").inc()
            i.reconnects.labels(conn, "stall").inc()
            i.connected.labels(conn).set(1)
        i.duplicates_dropped.labels("BTC-USD").inc()
        i.gaps.labels("BTC-USD").inc()
        i.trades_backfilled.labels("BTC-USD").inc(3)
        i.trades_unfilled.labels("BTC-USD").inc()
        i.dead_letters.labels("BTC-USD", "invalid_field").inc()
        i.exchange_errors.inc()
        i.kafka_failures.inc()
        i.buffered_records.set(1200)
        i.pending_trades.labels("BTC-USD").set(4)
        i.stuck.labels("BTC-USD").set(1)
        i.produce_latency.observe(0.004)
        s.records.labels("ticker").inc()
        s.signals.labels("BTC-USD", "sma_crossover", "BUY").inc()
        s.candles.labels("BTC-USD", "60").inc()
        s.late_trades.labels("BTC-USD").inc()
        s.dead_letters.labels("invalid_json").inc()
        s.transactions.labels("committed").inc()
        s.transactions.labels("aborted").inc()
        self.lag += 50
        s.lag.labels("0").set(self.lag)
        s.latency.observe(0.02)
        b.signals.labels("BTC-USD", "accepted").inc()
        b.order_events.labels("BTC-USD", OrderEventType.FILLED.value).inc()
        b.rejections.labels("BTC-USD", RejectReason.MAX_DAILY_LOSS.value).inc()
        b.broker_errors.labels("timeout").inc()
        b.position.labels("BTC-USD").set(0.01)
        b.equity.set(9885)
        b.cash.set(9200)
        b.open_orders.set(2)
        b.daily_loss.set(115)
        b.signal_to_ack.labels("BTC-USD").observe(0.003)
        operator_metrics.RECONCILES.labels(PIPELINE, "change", "retry").inc()
        operator_metrics.FAILURES.labels(PIPELINE).inc()
