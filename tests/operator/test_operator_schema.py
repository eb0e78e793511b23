"""The CRD's schema and CEL rules, enforced by the real API server (no operator running)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kube_support import GROUP, PLURAL, VERSION, Cluster, example
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.kube


def create(cluster: Cluster, namespace: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    made: dict[str, Any] = cluster.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body, **kw
    )
    return made


def test_three_line_resource_gets_every_default(cluster: Cluster, namespace: str) -> None:
    made = create(
        cluster,
        namespace,
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "CryptoPipeline", "metadata": {"name": "x"}},
    )
    spec = made["spec"]
    assert spec["products"] == ["BTC-USD"]
    assert spec["exchange"] == {
        "feed": "exchange",
        "wsUrl": "wss://ws-feed.exchange.coinbase.com",
        "restUrl": "https://api.exchange.coinbase.com",
        "channels": ["ticker", "heartbeat"],
        "connections": 2,
    }
    assert spec["kafka"]["strimziCluster"] == "cryptopipeline"
    assert spec["kafka"]["topics"] == {
        "partitions": 3,
        "replicas": 1,
        "retentionMs": 604800000,
        "deletionPolicy": "Retain",
        "names": {
            "raw": "btc_usd",
            "deadLetter": "btc_usd_dlq",
            "tradeSignals": "btc_usd_trade_signals",
            "orders": "btc_usd_orders",
        },
    }
    assert spec["bot"] == {"mode": "paper"}
    assert spec["workloads"]["ingestor"] == {"replicas": 1}
    assert spec["metrics"] == {"serviceMonitor": {"enabled": True, "interval": "30s"}}


def test_example_is_accepted(cluster: Cluster, namespace: str) -> None:
    made = create(cluster, namespace, example())
    assert made["spec"]["strategies"][0] == {
        "name": "sma_crossover",
        "parameters": {"fast": 10, "slow": 30},
    }


def test_signaler_replicas_scale_out(cluster: Cluster, namespace: str) -> None:
    body = example()
    _set(body, "spec.workloads.signaler.replicas", 3)
    made = create(cluster, namespace, body)
    assert made["spec"]["workloads"]["signaler"]["replicas"] == 3


def _set(body: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = body
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


INVALID = [
    # (test id, field path, value, a fragment of the API server's message)
    ("name-too-long", "metadata.name", "p" * 41, "at most 40 characters"),
    ("no-products", "spec.products", [], "should have at least 1 items"),
    ("bad-product", "spec.products", ["btc-usd"], "spec.products[0]"),
    ("duplicate-product", "spec.products", ["BTC-USD", "BTC-USD"], "Duplicate value"),
    ("ws-url-scheme", "spec.exchange.wsUrl", "http://x", "spec.exchange.wsUrl"),
    ("no-heartbeat", "spec.exchange.channels", ["ticker"], "must include heartbeat"),
    ("no-trades", "spec.exchange.channels", ["heartbeat"], "must include ticker or matches"),
    ("unknown-channel", "spec.exchange.channels", ["level2"], "Unsupported value"),
    ("too-many-connections", "spec.exchange.connections", 9, "less than or equal to 8"),
    ("unknown-feed", "spec.exchange.feed", "fix", "Unsupported value"),
    (
        "advanced-trade-matches",
        "spec.exchange",
        {"feed": "advanced-trade", "channels": ["matches", "heartbeat"]},
        "the advanced-trade feed has no matches channel",
    ),
    ("no-kafka", "spec.kafka", {"topics": {}}, "needs strimziCluster or bootstrapServers"),
    (
        "strimzi-without-cluster",
        "spec.kafka",
        {"bootstrapServers": "k:9092", "topicManagement": "strimzi"},
        "topicManagement strimzi needs strimziCluster",
    ),
    ("bad-bootstrap", "spec.kafka.bootstrapServers", "kafka", "spec.kafka.bootstrapServers"),
    ("zero-partitions", "spec.kafka.topics.partitions", 0, "greater than or equal to 1"),
    ("retention-below-minus-one", "spec.kafka.topics.retentionMs", -2, "greater than or equal"),
    ("deletion-policy", "spec.kafka.topics.deletionPolicy", "Orphan", "Unsupported value"),
    (
        "same-topic-twice",
        "spec.kafka.topics.names",
        {"raw": "a", "deadLetter": "a"},
        "topic names must be different",
    ),
    ("bad-topic-name", "spec.kafka.topics.names.raw", "a topic", "spec.kafka.topics.names.raw"),
    ("ksql-url-with-password", "spec.ksqldb", {"url": "http://u:p@ksql:8088"}, "spec.ksqldb.url"),
    ("ksql-without-url", "spec.ksqldb", {}, "Required value"),
    ("two-ingestors", "spec.workloads.ingestor.replicas", 2, "less than or equal to 1"),
    ("two-bots", "spec.workloads.bot.replicas", 2, "less than or equal to 1"),
    ("too-many-signalers", "spec.workloads.signaler.replicas", 257, "less than or equal to 256"),
    ("bad-quantity", "spec.workloads.bot.resources", {"limits": {"cpu": "lots"}}, "cpu"),
    ("bad-env-name", "spec.workloads.bot.env", [{"name": "1X", "value": "v"}], "env[0].name"),
    (
        "strategy-string-param",
        "spec.strategies",
        [{"name": "rsi_threshold", "parameters": {"period": "fourteen"}}],
        "parameters.period",
    ),
    ("strategy-bad-name", "spec.strategies", [{"name": "RSI"}], "spec.strategies[0].name"),
    ("live-without-key", "spec.bot", {"mode": "live"}, "live mode needs coinbaseKeySecret"),
    ("bad-mode", "spec.bot.mode", "yolo", "Unsupported value"),
    ("money-as-float", "spec.bot.risk", {"maxOrderNotional": 250.5}, "maxOrderNotional"),
    ("candle-interval", "spec.candles.intervalsSeconds", [0], "greater than or equal to 1"),
    ("scrape-interval", "spec.metrics.serviceMonitor.interval", "often", "interval"),
]


@pytest.mark.parametrize(
    ("path", "value", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_api_server_rejects(
    cluster: Cluster, namespace: str, path: str, value: Any, message: str
) -> None:
    body = copy.deepcopy(example("bad"))
    _set(body, path, value)
    with pytest.raises(ApiException) as caught:
        create(cluster, namespace, body)
    assert caught.value.status == 422, caught.value.body
    assert message in str(caught.value.body)


def test_unknown_fields_are_rejected_under_strict_validation(
    cluster: Cluster, namespace: str
) -> None:
    body = example("typo")
    body["spec"]["prodcuts"] = ["ETH-USD"]
    with pytest.raises(ApiException) as caught:
        create(cluster, namespace, body, field_validation="Strict")
    assert caught.value.status == 400
    assert "strict decoding error" in str(caught.value.body)
    assert "spec.prodcuts" in str(caught.value.body)
    made = create(cluster, namespace, body)  # default (Warn): pruned, not stored
    assert "prodcuts" not in made["spec"]


def test_printer_columns(cluster: Cluster) -> None:
    crd = cluster.ext.read_custom_resource_definition(f"{PLURAL}.{GROUP}")
    columns = [c.name for c in crd.spec.versions[0].additional_printer_columns]
    assert columns == ["Ready", "Reason", "Products", "Mode", "Migration", "Age"]
    assert crd.spec.versions[0].subresources.status is not None
