"""The pure builders: spec in, manifests out (no cluster, no Kafka)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from cryptopipeline_operator import (
    CONFIG_HASH_ANNOTATION,
    WORKLOADS,
    Pipeline,
    PipelineSpec,
    config_map,
    deployment,
    kafka_topic,
    service,
    topic_manifests,
    workload_config,
    workload_manifests,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "k8s" / "examples" / "pipeline.yaml"


def pipeline(spec: dict[str, Any] | None = None, name: str = "btc") -> Pipeline:
    return Pipeline(name=name, namespace="trading", spec=PipelineSpec.from_body(spec or {}))


def example() -> Pipeline:
    return pipeline(yaml.safe_load(EXAMPLE.read_text())["spec"])


def test_defaults_make_a_complete_pipeline() -> None:
    objs = workload_manifests(pipeline(), service_monitors=False)
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objs)
    assert kinds == sorted(
        [(k, f"btc-{w}") for w in WORKLOADS for k in ("ConfigMap", "Deployment", "Service")]
    )
    topics = topic_manifests(pipeline())
    assert [t["spec"]["topicName"] for t in topics] == [
        "btc_usd",
        "btc_usd_dlq",
        "btc_usd_trade_signals",
        "btc_usd_orders",
    ]


def test_signaler_replicas_share_a_group_of_their_own_and_roll_one_at_a_time() -> None:
    pipeline = example()
    dep = deployment(pipeline, "signaler")
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    config = workload_config(pipeline, "signaler")
    assert config["CRYPTOPIPELINE_SIGNALER__GROUP_ID"] == "cryptopipeline.trading.btc.signaler"
    assert config["CRYPTOPIPELINE_SIGNALER__TRANSACTIONAL_ID"] == (
        "cryptopipeline.trading.btc.signaler"
    )
    assert deployment(pipeline, "bot")["spec"]["strategy"] == {"type": "Recreate"}


def test_ingestor_deployment() -> None:
    dep = deployment(example(), "ingestor")
    assert dep["metadata"] == {
        "name": "btc-ingestor",
        "namespace": "trading",
        "labels": {
            "app.kubernetes.io/name": "cryptopipeline",
            "app.kubernetes.io/instance": "btc",
            "app.kubernetes.io/component": "ingestor",
            "app.kubernetes.io/part-of": "cryptopipeline",
            "app.kubernetes.io/managed-by": "cryptopipeline-operator",
        },
    }
    spec = dep["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["command"] == ["cryptopipeline-ingestor"]
    assert container["image"] == "cryptopipeline:0.1.0"
    assert container["envFrom"] == [{"configMapRef": {"name": "btc-ingestor"}}]
    assert container["ports"] == [{"name": "ops", "containerPort": 9101, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert "env" not in container


def test_ops_ports_and_commands_per_workload() -> None:
    for workload, port in (("ingestor", 9101), ("signaler", 9102), ("bot", 9103)):
        (container,) = deployment(example(), workload)["spec"]["template"]["spec"]["containers"]
        assert container["command"] == [f"cryptopipeline-{workload}"]
        assert container["ports"][0]["containerPort"] == port
        assert workload_config(example(), workload)["CRYPTOPIPELINE_OPS__PORT"] == str(port)
        # the `pipeline` label of the workload's metrics: the resource's name, from the
        # ConfigMap the Deployment reads its environment from
        config = workload_config(pipeline(name="eth-eu"), workload)
        assert config["CRYPTOPIPELINE_PIPELINE_NAME"] == "eth-eu"
        assert {"configMapRef": {"name": f"btc-{workload}"}} in container["envFrom"]
        svc = service(example(), workload)
        assert svc["spec"]["ports"] == [
            {"name": "metrics", "port": port, "targetPort": "ops", "protocol": "TCP"}
        ]


def test_configuration_per_workload() -> None:
    ingestor = workload_config(example(), "ingestor")
    assert ingestor["CRYPTOPIPELINE_EXCHANGE__PRODUCTS"] == "BTC-USD"
    assert ingestor["CRYPTOPIPELINE_EXCHANGE__CHANNELS"] == "ticker,heartbeat"
    assert ingestor["CRYPTOPIPELINE_KAFKA__BOOTSTRAP_SERVERS"] == (
        "cryptopipeline-kafka-bootstrap:9092"
    )
    signaler = workload_config(example(), "signaler")
    assert json.loads(signaler["CRYPTOPIPELINE_STRATEGIES"]) == [
        {"name": "sma_crossover", "parameters": {"fast": 10, "slow": 30}},
        {"name": "rsi_threshold", "parameters": {"overbought": 70, "oversold": 30, "period": 14}},
    ]
    assert signaler["CRYPTOPIPELINE_CANDLES__INTERVALS_S"] == "60"
    assert "CRYPTOPIPELINE_EXCHANGE__WS_URL" not in signaler
    bot = workload_config(example(), "bot")
    assert bot["CRYPTOPIPELINE_BROKER__MODE"] == "paper"
    assert bot["CRYPTOPIPELINE_TRADING__PRODUCTS"] == "BTC-USD"
    assert bot["CRYPTOPIPELINE_OPS__HOST"] == "0.0.0.0"
    assert bot["CRYPTOPIPELINE_RISK__MAX_POSITION_NOTIONAL"] == "1000"
    assert bot["CRYPTOPIPELINE_RISK__MAX_OPEN_ORDERS"] == "5"
    assert config_map(example(), "bot")["data"] == bot


def test_feed_selection_reaches_the_ingestor() -> None:
    exchange = workload_config(example(), "ingestor")
    assert exchange["CRYPTOPIPELINE_EXCHANGE__FEED"] == "exchange"
    assert exchange["CRYPTOPIPELINE_EXCHANGE__WS_URL"] == "wss://ws-feed.exchange.coinbase.com"
    spec = yaml.safe_load(EXAMPLE.read_text())["spec"]
    advanced = workload_config(
        pipeline({**spec, "exchange": {"feed": "advanced-trade"}}), "ingestor"
    )
    assert advanced["CRYPTOPIPELINE_EXCHANGE__FEED"] == "advanced-trade"
    assert advanced["CRYPTOPIPELINE_EXCHANGE__WS_URL"] == "wss://advanced-trade-ws.coinbase.com"
    assert advanced["CRYPTOPIPELINE_EXCHANGE__REST_URL"] == "https://api.coinbase.com"
    sim = pipeline({"exchange": {"feed": "advanced-trade", "wsUrl": "wss://sim/advanced-trade"}})
    assert workload_config(sim, "ingestor")["CRYPTOPIPELINE_EXCHANGE__WS_URL"] == (
        "wss://sim/advanced-trade"
    )


def test_signaler_defaults_when_no_strategies_given() -> None:
    assert "CRYPTOPIPELINE_STRATEGIES" not in workload_config(pipeline(), "signaler")


def hashes(p: Pipeline) -> dict[str, str]:
    return {
        w: deployment(p, w)["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
        for w in WORKLOADS
    }


def test_strategy_change_changes_only_the_signaler() -> None:
    spec = yaml.safe_load(EXAMPLE.read_text())["spec"]
    before = hashes(pipeline(spec))
    spec["strategies"][0]["parameters"]["fast"] = 12
    after = hashes(pipeline(spec))
    assert after["signaler"] != before["signaler"]
    assert after["ingestor"] == before["ingestor"]
    assert after["bot"] == before["bot"]
    assert hashes(pipeline(spec)) == after  # stable


def test_product_change_restarts_ingestor_and_bot_not_signaler() -> None:
    before = hashes(pipeline({"products": ["BTC-USD"]}))
    after = hashes(pipeline({"products": ["BTC-USD", "ETH-USD"]}))
    assert before["ingestor"] != after["ingestor"]
    assert before["bot"] != after["bot"]
    assert before["signaler"] == after["signaler"]


def test_bot_gets_the_key_from_its_secret_by_reference_only() -> None:
    p = pipeline(
        {"bot": {"mode": "live", "coinbaseKeySecret": {"name": "coinbase", "privateKeyKey": "pem"}}}
    )
    assert workload_config(p, "bot")["CRYPTOPIPELINE_BROKER__MODE"] == "coinbase"
    pod = deployment(p, "bot")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["env"] == [
        {
            "name": "CRYPTOPIPELINE_BROKER__KEY_NAME",
            "valueFrom": {
                "secretKeyRef": {"name": "coinbase", "key": "api-key-name", "optional": False}
            },
        },
        {
            "name": "CRYPTOPIPELINE_BROKER__PRIVATE_KEY",
            "valueFrom": {"secretKeyRef": {"name": "coinbase", "key": "pem", "optional": False}},
        },
    ]
    assert all("secret" not in v for v in pod["volumes"])
    for workload in ("ingestor", "signaler"):
        (other,) = deployment(p, workload)["spec"]["template"]["spec"]["containers"]
        assert "env" not in other


def test_bot_gets_the_kill_token_from_its_secret_by_reference_only() -> None:
    """The ops port listens on every interface on Kubernetes: the kill switch is usable there
    only with a token, and the token comes from a Secret, never from the ConfigMap."""
    p = pipeline({"bot": {"killTokenSecret": {"name": "bot-ops"}}})
    (container,) = deployment(p, "bot")["spec"]["template"]["spec"]["containers"]
    assert container["env"] == [
        {
            "name": "CRYPTOPIPELINE_OPS__KILL_TOKEN",
            "valueFrom": {
                "secretKeyRef": {"name": "bot-ops", "key": "kill-token", "optional": False}
            },
        }
    ]
    assert not any("KILL_TOKEN" in k for k in workload_config(p, "bot"))
    assert workload_config(p, "bot")["CRYPTOPIPELINE_OPS__HOST"] == "0.0.0.0"
    custom = pipeline({"bot": {"mode": "live", "killTokenSecret": {"name": "t", "key": "tok"},
                               "coinbaseKeySecret": {"name": "coinbase"}}})  # fmt: skip
    (container,) = deployment(custom, "bot")["spec"]["template"]["spec"]["containers"]
    names = [e["name"] for e in container["env"]]
    assert names == ["CRYPTOPIPELINE_BROKER__KEY_NAME", "CRYPTOPIPELINE_BROKER__PRIVATE_KEY",
                     "CRYPTOPIPELINE_OPS__KILL_TOKEN"]  # fmt: skip
    assert container["env"][2]["valueFrom"]["secretKeyRef"] == {
        "name": "t", "key": "tok", "optional": False}  # fmt: skip
    for workload in ("ingestor", "signaler"):
        (other,) = deployment(p, workload)["spec"]["template"]["spec"]["containers"]
        assert "env" not in other
    (plain,) = deployment(pipeline({}), "bot")["spec"]["template"]["spec"]["containers"]
    assert "env" not in plain  # no Secret named: no token, the bot's private routes are off


def test_bot_key_file_is_mounted_read_only() -> None:
    p = pipeline({"bot": {"coinbaseKeySecret": {"name": "cdp", "keyFileKey": "cdp_api_key.json"}}})
    pod = deployment(p, "bot")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert {
        "name": "coinbase-key",
        "secret": {
            "secretName": "cdp",
            "defaultMode": 0o440,
            "items": [{"key": "cdp_api_key.json", "path": "key.json"}],
        },
    } in pod["volumes"]
    assert {
        "name": "coinbase-key",
        "mountPath": "/var/run/secrets/cryptopipeline/coinbase",
        "readOnly": True,
    } in container["volumeMounts"]
    assert container["env"] == [
        {
            "name": "CRYPTOPIPELINE_BROKER__KEY_FILE",
            "value": "/var/run/secrets/cryptopipeline/coinbase/key.json",
        }
    ]


def test_extra_env_and_resources() -> None:
    p = pipeline(
        {
            "workloads": {
                "image": "registry.local/cp:1.2",
                "ingestor": {
                    "replicas": 0,
                    "env": [{"name": "CRYPTOPIPELINE_LOG_LEVEL", "value": "DEBUG"}],
                    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                },
            }
        }
    )
    dep = deployment(p, "ingestor")
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert dep["spec"]["replicas"] == 0
    assert container["image"] == "registry.local/cp:1.2"
    assert container["env"] == [{"name": "CRYPTOPIPELINE_LOG_LEVEL", "value": "DEBUG"}]
    assert container["resources"] == {"limits": {"cpu": "1", "memory": "1Gi"}}


def test_kafka_topics_in_strimzi_mode_only() -> None:
    topic = kafka_topic(example(), "btc_usd_trade_signals")
    assert topic["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert topic["metadata"]["name"] == "btc-btc-usd-trade-signals"
    assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "cryptopipeline"
    assert topic["spec"] == {
        "topicName": "btc_usd_trade_signals",
        "partitions": 3,
        "replicas": 1,
        "config": {"retention.ms": "604800000"},
    }
    direct = pipeline({"kafka": {"bootstrapServers": "kafka:9092"}})
    assert direct.spec.kafka.management == "direct"
    assert topic_manifests(direct) == []
    assert workload_config(direct, "bot")["CRYPTOPIPELINE_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_service_monitors_only_when_wanted_and_available() -> None:
    def monitors(p: Pipeline, available: bool) -> list[str]:
        objs = workload_manifests(p, service_monitors=available)
        return [o["metadata"]["name"] for o in objs if o["kind"] == "ServiceMonitor"]

    assert monitors(pipeline(), True) == ["btc-ingestor", "btc-signaler", "btc-bot"]
    assert monitors(pipeline(), False) == []
    off = pipeline({"metrics": {"serviceMonitor": {"enabled": False}}})
    assert monitors(off, True) == []


def test_builders_are_deterministic() -> None:
    first = workload_manifests(example(), service_monitors=True)
    second = workload_manifests(example(), service_monitors=True)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
