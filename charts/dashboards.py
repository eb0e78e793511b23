"""Write the chart's Grafana dashboards (charts/cryptopipeline/dashboards/*.json).

The JSON is generated so that every panel follows the same conventions (datasource and
namespace/pipeline variables, units, legends); the generated files are committed and the
chart ships them as ConfigMaps. tests/observability checks that the committed files equal
this script's output, that their structure is sound, and that every query returns data
from a real Prometheus scraping the workloads' real metrics.

    python3 charts/dashboards.py           # write the files
    python3 charts/dashboards.py --check   # exit 1 if the committed files are stale
"""

# ruff: noqa: E501 - a PromQL query reads best on one line
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "cryptopipeline" / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
# every query filters on these; every program labels its samples with `pipeline`
# (cryptopipeline.core.metrics); "All" is ".*", which also matches a missing label
F = 'namespace=~"$namespace", pipeline=~"$pipeline"'
RI = "$__rate_interval"

Panel = dict[str, Any]


def _target(expr: str, legend: str, ref: int) -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": chr(ord("A") + ref)}


def timeseries(title: str, unit: str, *queries: tuple[str, str], desc: str = "") -> Panel:
    return {
        "type": "timeseries",
        "title": title,
        "description": desc,
        "datasource": DS,
        "fieldConfig": {"defaults": {"unit": unit, "custom": {"fillOpacity": 10}}, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "multi"},
        },
        "targets": [_target(e, leg, i) for i, (e, leg) in enumerate(queries)],
    }


def stat(title: str, unit: str, expr: str, *, desc: str = "", steps: list[Any] | None = None,
         mappings: list[Any] | None = None) -> Panel:  # fmt: skip
    thresholds = steps or [{"color": "green", "value": None}]
    return {
        "type": "stat",
        "title": title,
        "description": desc,
        "datasource": DS,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": {"mode": "absolute", "steps": thresholds},
                "mappings": mappings or [],
            },
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
        },
        "targets": [_target(expr, "", 0)],
    }


def _layout(panels: list[Panel]) -> list[Panel]:
    """Stats four to a row (h 4), graphs two to a row (h 8), in the order given."""
    x = y = row_h = 0
    out = []
    for i, p in enumerate(panels, start=1):
        w, h = (6, 4) if p["type"] == "stat" else (12, 8)
        if x + w > 24:
            x, y = 0, y + row_h
            row_h = 0
        out.append({"id": i, "gridPos": {"x": x, "y": y, "w": w, "h": h}, **p})
        x += w
        row_h = max(row_h, h)
    return out


def _variable(name: str, label: str, metric: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": f"label_values({metric}, {name})", "refId": f"{name}-values"},
        "definition": f"label_values({metric}, {name})",
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "refresh": 2,
        "sort": 1,
    }


def dashboard(uid: str, title: str, panels: list[Panel], *, tags: list[str]) -> dict[str, Any]:
    anchor = "cryptopipeline_ingestor_records_published_total"
    return {
        "uid": uid,
        "title": title,
        "tags": ["cryptopipeline", *tags],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["cryptopipeline"],
                "asDropdown": True,
                "title": "CryptoPipeline",
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                _variable("namespace", "Namespace", anchor),
                _variable("pipeline", "Pipeline", anchor),
            ]
        },
        "panels": _layout(panels),
    }


RED_ON = [{"color": "green", "value": None}, {"color": "red", "value": 1}]
KILL_MAP = [{"type": "value", "options": {"0": {"text": "off"}, "1": {"text": "ON"}}}]


def _quantiles(metric: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        (f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{F}}}[{RI}])))", f"p{p}")
        for q, p in ((0.5, "50"), (0.99, "99"))
    )


def overview() -> dict[str, Any]:
    panels = [
        stat("Ingest rate", "reqps",
             f"sum(rate(cryptopipeline_ingestor_records_published_total{{{F}}}[{RI}]))"),
        stat("Signaler lag", "short",
             f"sum(cryptopipeline_signaler_consumer_lag_records{{{F}}})"),
        stat("Net PnL", "currencyUSD", f'sum(cryptopipeline_bot_pnl{{{F}, kind="net"}})'),
        stat("Kill switch", "none", f"max(cryptopipeline_bot_kill_switch{{{F}}})",
             steps=RED_ON, mappings=KILL_MAP),
        timeseries("Ingest rate by product", "reqps",
                   (f"sum by (product, kind) (rate(cryptopipeline_ingestor_records_published_total{{{F}}}[{RI}]))",
                    "{{product}} {{kind}}")),
        timeseries("Gaps, backfills and unfilled trades", "short",
                   (f"sum by (product) (increase(cryptopipeline_ingestor_gaps_total{{{F}}}[5m]))", "gaps {{product}}"),
                   (f"sum by (product) (increase(cryptopipeline_ingestor_trades_backfilled_total{{{F}}}[5m]))", "backfilled {{product}}"),
                   (f"sum by (product) (increase(cryptopipeline_ingestor_trades_unfilled_total{{{F}}}[5m]))", "unfilled {{product}}"),
                   desc="Per 5 minutes. Unfilled trades are missing from the raw topic."),
        timeseries("Reconnects", "short",
                   (f"sum by (reason) (increase(cryptopipeline_ingestor_reconnects_total{{{F}}}[5m]))", "{{reason}}"),
                   desc="Connection restarts per 5 minutes, by reason."),
        timeseries("Dead letters", "short",
                   (f"sum by (reason) (increase(cryptopipeline_ingestor_dead_letters_total{{{F}}}[5m]))", "ingestor {{reason}}"),
                   (f"sum by (reason) (increase(cryptopipeline_signaler_dead_letters_total{{{F}}}[5m]))", "signaler {{reason}}")),
        timeseries("Produce latency (receive to Kafka ack)", "s",
                   *_quantiles("cryptopipeline_ingestor_produce_latency_seconds")),
        timeseries("Signaler consumer lag", "short",
                   (f"sum by (partition) (cryptopipeline_signaler_consumer_lag_records{{{F}}})", "partition {{partition}}")),
        timeseries("Signals", "short",
                   (f"sum by (strategy, action) (increase(cryptopipeline_signaler_signals_total{{{F}}}[5m]))", "{{strategy}} {{action}}"),
                   desc="Signals committed per 5 minutes."),
        timeseries("Orders", "short",
                   (f"sum by (event) (increase(cryptopipeline_bot_order_events_total{{{F}}}[5m]))", "{{event}}"),
                   desc="Order lifecycle events per 5 minutes."),
        timeseries("PnL", "currencyUSD",
                   (f"sum by (kind) (cryptopipeline_bot_pnl{{{F}}})", "{{kind}}")),
        timeseries("Kill switch", "none",
                   (f"max(cryptopipeline_bot_kill_switch{{{F}}})", "kill switch")),
    ]  # fmt: skip
    return dashboard("cryptopipeline-overview", "CryptoPipeline / Overview", panels,
                     tags=["overview"])  # fmt: skip


def ingestor() -> dict[str, Any]:
    m = "cryptopipeline_ingestor"
    panels = [
        stat("Connections up", "short", f"sum({m}_connected{{{F}}})"),
        stat("Buffer use", "percentunit",
             f"max({m}_buffered_records{{{F}}} / {m}_buffer_capacity_records{{{F}}})"),
        stat("Kafka failures (1h)", "short", f"sum(increase({m}_kafka_failures_total{{{F}}}[1h]))",
             steps=RED_ON),
        stat("Exchange errors (1h)", "short",
             f"sum(increase({m}_exchange_errors_total{{{F}}}[1h]))", steps=RED_ON),
        timeseries("Frames received", "reqps",
                   (f"sum by (connection, type) (rate({m}_messages_received_total{{{F}}}[{RI}]))", "{{connection}} {{type}}")),
        timeseries("Records published", "reqps",
                   (f"sum by (product, kind) (rate({m}_records_published_total{{{F}}}[{RI}]))", "{{product}} {{kind}}")),
        timeseries("Duplicates dropped", "reqps",
                   (f"sum by (product) (rate({m}_duplicates_dropped_total{{{F}}}[{RI}]))", "{{product}}"),
                   desc="Trades seen on the redundant socket too (expected with 2 connections)."),
        timeseries("Gaps and backfills", "short",
                   (f"sum by (product) (increase({m}_gaps_total{{{F}}}[5m]))", "gaps {{product}}"),
                   (f"sum by (product) (increase({m}_trades_backfilled_total{{{F}}}[5m]))", "backfilled {{product}}"),
                   (f"sum by (product) (increase({m}_trades_unfilled_total{{{F}}}[5m]))", "unfilled {{product}}")),
        timeseries("Pending trades", "short",
                   (f"sum by (product) ({m}_pending_trades{{{F}}})", "{{product}}"),
                   desc="Trades held back until the gap before them is filled."),
        timeseries("Connections", "short",
                   (f"sum by (connection) ({m}_connected{{{F}}})", "{{connection}}"),
                   (f"sum by (connection, reason) (increase({m}_reconnects_total{{{F}}}[5m]))", "reconnect {{connection}} {{reason}}")),
        timeseries("Kafka buffer", "short",
                   (f"sum({m}_buffered_records{{{F}}})", "buffered"),
                   (f"sum({m}_buffer_capacity_records{{{F}}})", "capacity")),
        timeseries("Produce latency", "s", *_quantiles(f"{m}_produce_latency_seconds")),
        timeseries("Dead letters", "short",
                   (f"sum by (reason) (increase({m}_dead_letters_total{{{F}}}[5m]))", "{{reason}}")),
    ]  # fmt: skip
    return dashboard("cryptopipeline-ingestor", "CryptoPipeline / Ingestor", panels,
                     tags=["ingestor"])  # fmt: skip


def signaler() -> dict[str, Any]:
    m = "cryptopipeline_signaler"
    panels = [
        stat("Consumer lag", "short", f"sum({m}_consumer_lag_records{{{F}}})"),
        stat("Late trades (1h)", "short", f"sum(increase({m}_late_trades_total{{{F}}}[1h]))"),
        stat("Aborted transactions (1h)", "short",
             f'sum(increase({m}_transactions_total{{{F}, outcome!="committed"}}[1h]))'),
        stat("Signals (1h)", "short", f"sum(increase({m}_signals_total{{{F}}}[1h]))"),
        timeseries("Records consumed", "reqps",
                   (f"sum by (type) (rate({m}_records_consumed_total{{{F}}}[{RI}]))", "{{type}}")),
        timeseries("Candles closed", "short",
                   (f"sum by (product, interval) (increase({m}_candles_closed_total{{{F}}}[5m]))", "{{product}} {{interval}}s")),
        timeseries("Signals", "short",
                   (f"sum by (product, strategy, action) (increase({m}_signals_total{{{F}}}[5m]))", "{{product}} {{strategy}} {{action}}")),
        timeseries("Transactions", "short",
                   (f"sum by (outcome) (increase({m}_transactions_total{{{F}}}[5m]))", "{{outcome}}")),
        timeseries("Consumer lag by partition", "short",
                   (f"sum by (partition) ({m}_consumer_lag_records{{{F}}})", "partition {{partition}}")),
        timeseries("Processing latency (batch read to commit)", "s",
                   *_quantiles(f"{m}_processing_latency_seconds")),
        timeseries("Dead letters and late trades", "short",
                   (f"sum by (reason) (increase({m}_dead_letters_total{{{F}}}[5m]))", "dead letter {{reason}}"),
                   (f"sum(increase({m}_late_trades_total{{{F}}}[5m]))", "late trades")),
    ]  # fmt: skip
    return dashboard("cryptopipeline-signaler", "CryptoPipeline / Signaler", panels,
                     tags=["signaler"])  # fmt: skip


def bot() -> dict[str, Any]:
    m = "cryptopipeline_bot"
    panels = [
        stat("Kill switch", "none", f"max({m}_kill_switch{{{F}}})", steps=RED_ON,
             mappings=KILL_MAP),
        stat("Equity", "currencyUSD", f"sum({m}_equity{{{F}}})"),
        stat("Net PnL", "currencyUSD", f'sum({m}_pnl{{{F}, kind="net"}})'),
        stat("Open orders", "short", f"sum({m}_open_orders{{{F}}})"),
        stat("Daily loss of its limit", "percentunit",
             f"max({m}_daily_loss{{{F}}} / {m}_daily_loss_limit{{{F}}})",
             desc="Loss since the daily reset hour over maxDailyLoss; at 100% orders are rejected.",
             steps=[{"color": "green", "value": None}, {"color": "orange", "value": 0.5},
                    {"color": "red", "value": 1}]),
        timeseries("Signals consumed", "short",
                   (f"sum by (result) (increase({m}_signals_total{{{F}}}[5m]))", "{{result}}")),
        timeseries("Order events", "short",
                   (f"sum by (event) (increase({m}_order_events_total{{{F}}}[5m]))", "{{event}}")),
        timeseries("Rejections", "short",
                   (f"sum by (product, reason) (increase({m}_rejections_total{{{F}}}[5m]))", "{{product}} {{reason}}"),
                   desc="Orders stopped by risk, sizing or the broker, by reason."),
        timeseries("Broker errors", "short",
                   (f"sum by (kind) (increase({m}_broker_errors_total{{{F}}}[5m]))", "{{kind}}")),
        timeseries("PnL", "currencyUSD", (f"sum by (kind) ({m}_pnl{{{F}}})", "{{kind}}")),
        timeseries("Equity and cash", "currencyUSD",
                   (f"sum({m}_equity{{{F}}})", "equity"), (f"sum({m}_cash{{{F}}})", "cash")),
        timeseries("Daily loss and its limit", "currencyUSD",
                   (f"sum by (pipeline) ({m}_daily_loss{{{F}}})", "{{pipeline}} loss"),
                   (f"sum by (pipeline) ({m}_daily_loss_limit{{{F}}})", "{{pipeline}} limit"),
                   desc="Realized + unrealized, net of fees, since the daily reset hour."),
        timeseries("Position", "short",
                   (f"sum by (product) ({m}_position{{{F}}})", "{{product}}")),
        timeseries("Signal to broker acknowledgement", "s",
                   *_quantiles(f"{m}_signal_to_ack_seconds")),
    ]  # fmt: skip
    return dashboard("cryptopipeline-bot", "CryptoPipeline / Bot", panels, tags=["bot"])


def operator() -> dict[str, Any]:
    m = "cryptopipeline_operator"
    panels = [
        stat("Retries (1h)", "short",
             f'sum(increase({m}_reconciles_total{{{F}, result="retry"}}[1h]))', steps=RED_ON),
        stat("Drift-check failures (1h)", "short", f"sum(increase({m}_failures_total{{{F}}}[1h]))",
             steps=RED_ON),
        timeseries("Convergences", "short",
                   (f"sum by (kind, result) (increase({m}_reconciles_total{{{F}}}[5m]))", "{{kind}} {{result}}")),
        timeseries("Drift-check failures", "short",
                   (f"sum(increase({m}_failures_total{{{F}}}[5m]))", "failures")),
    ]  # fmt: skip
    return dashboard("cryptopipeline-operator", "CryptoPipeline / Operator", panels,
                     tags=["operator"])  # fmt: skip


DASHBOARDS = {"overview": overview, "ingestor": ingestor, "signaler": signaler, "bot": bot,
              "operator": operator}  # fmt: skip


def render() -> dict[Path, str]:
    return {OUT / f"{name}.json": json.dumps(make(), indent=2) + "\n"
            for name, make in DASHBOARDS.items()}  # fmt: skip


def main(argv: list[str]) -> int:
    files = render()
    if "--check" in argv:
        stale = [p.name for p, text in files.items() if not p.exists() or p.read_text() != text]
        if stale:
            print(f"stale dashboards: {', '.join(stale)}; run: python3 charts/dashboards.py")
            return 1
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text)
        print(path.relative_to(OUT.parents[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
