"""Direct topic mode against the real Kafka, what only the operator can check (reported in
status and Events, retried with backoff), and secrets staying secret."""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from kube_support import GROUP, PLURAL, VERSION, Cluster, eventually, example
from kubernetes import client

pytestmark = [pytest.mark.kube, pytest.mark.kafka]


def direct_example(bootstrap: str, prefix: str, **topics: Any) -> dict[str, Any]:
    body = example()
    body["spec"]["kafka"] = {
        "bootstrapServers": bootstrap,
        "topics": {
            "partitions": 2,
            "retentionMs": 3_600_000,
            "names": {
                "raw": f"{prefix}_raw",
                "deadLetter": f"{prefix}_dlq",
                "tradeSignals": f"{prefix}_signals",
                "orders": f"{prefix}_orders",
            },
            **topics,
        },
    }
    return body


async def describe(bootstrap: str, names: list[str]) -> dict[str, tuple[int, str]]:
    """topic -> (partitions, retention.ms) for the topics that exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [n for n in names if n in existing]
        if not wanted:
            return {}
        described = await admin.describe_topics(wanted)
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in wanted]
        )
    finally:
        await admin.close()
    retention = {}
    for response in configs:
        for resource in response.resources:
            name = resource[3]
            for entry in resource[4]:
                if entry[0] == "retention.ms":
                    retention[name] = entry[1]
    return {t["topic"]: (len(t["partitions"]), retention.get(t["topic"], "")) for t in described}


def test_direct_mode_creates_topics_in_kafka(
    cluster: Cluster, namespace: str, run_operator: Any, kafka_bootstrap: str
) -> None:
    prefix = f"op_{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}_raw", f"{prefix}_dlq", f"{prefix}_signals", f"{prefix}_orders"]
    with run_operator() as runner:
        cluster.create_pipeline(namespace, direct_example(kafka_bootstrap, prefix))
        cond = cluster.wait_condition(namespace, "btc", "TopicsReady", "True", "TopicsCreated")
        assert kafka_bootstrap in cond["message"]
        found = asyncio.run(describe(kafka_bootstrap, names))
        assert found == {name: (2, "3600000") for name in names}
        assert not cluster.custom.list_namespaced_custom_object(
            "kafka.strimzi.io", "v1beta2", namespace, "kafkatopics"
        )["items"]
        dep = cluster.apps.read_namespaced_deployment("btc-ingestor", namespace)
        assert dep.metadata.name == "btc-ingestor"
        cm = cluster.core.read_namespaced_config_map("btc-ingestor", namespace)
        assert cm.data["CRYPTOPIPELINE_KAFKA__BOOTSTRAP_SERVERS"] == kafka_bootstrap
        assert cm.data["CRYPTOPIPELINE_TOPICS__RAW"] == f"{prefix}_raw"

        cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "btc")
        eventually(lambda: not cluster.apps.list_namespaced_deployment(namespace).items)
        assert asyncio.run(describe(kafka_bootstrap, names)) == found  # Retain: kept
    assert runner.exception is None, runner.output


def test_direct_mode_delete_policy_deletes_topics(
    cluster: Cluster, namespace: str, run_operator: Any, kafka_bootstrap: str
) -> None:
    prefix = f"op_{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}_raw", f"{prefix}_dlq", f"{prefix}_signals", f"{prefix}_orders"]
    body = direct_example(kafka_bootstrap, prefix, deletionPolicy="Delete")
    with run_operator() as runner:
        cluster.create_pipeline(namespace, body)
        cluster.wait_condition(namespace, "btc", "TopicsReady", "True")
        assert len(asyncio.run(describe(kafka_bootstrap, names))) == 4
        cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "btc")
        eventually(lambda: asyncio.run(describe(kafka_bootstrap, names)) == {}, within=30)
    assert runner.exception is None, runner.output


def warnings(cluster: Cluster, namespace: str) -> dict[str, str]:
    return {e.reason: e.message for e in cluster.events(namespace) if e.type == "Warning"}


def test_unreachable_kafka_is_reported_and_retried(
    cluster: Cluster, namespace: str, run_operator: Any, kafka_bootstrap: str
) -> None:
    prefix = f"op_{uuid.uuid4().hex[:8]}"
    with run_operator() as runner:
        cluster.create_pipeline(namespace, direct_example("127.0.0.1:1", prefix))
        cond = cluster.wait_condition(namespace, "btc", "TopicsReady", "False", "KafkaUnreachable")
        assert "127.0.0.1:1" in cond["message"]
        ready = cluster.wait_condition(namespace, "btc", "Ready", "False", "KafkaUnreachable")
        assert ready["message"].startswith("TopicsReady:")
        eventually(lambda: "KafkaUnreachable" in warnings(cluster, namespace))
        # the workloads are deployed anyway: they wait for Kafka themselves
        assert cluster.apps.read_namespaced_deployment("btc-signaler", namespace)

        body = cluster.pipeline(namespace, "btc")
        body["spec"]["kafka"]["bootstrapServers"] = kafka_bootstrap
        cluster.custom.replace_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "btc", body
        )
        cluster.wait_condition(namespace, "btc", "TopicsReady", "True", "TopicsCreated")
    assert runner.exception is None, runner.output


def test_unknown_strategy_blocks_and_recovers(
    cluster: Cluster, namespace: str, run_operator: Any
) -> None:
    body = example()
    body["spec"]["strategies"].append({"name": "moon_shot", "parameters": {}})
    with run_operator() as runner:
        cluster.create_pipeline(namespace, body)
        cond = cluster.wait_condition(namespace, "btc", "Ready", "False", "UnknownStrategy")
        assert "'moon_shot'" in cond["message"] and "sma_crossover" in cond["message"]
        eventually(lambda: "UnknownStrategy" in warnings(cluster, namespace))
        assert not cluster.apps.list_namespaced_deployment(namespace).items  # nothing applied

        fixed = cluster.pipeline(namespace, "btc")
        fixed["spec"]["strategies"].pop()
        fixed["spec"]["strategies"][0]["parameters"]["fast"] = 2.5
        cluster.custom.replace_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "btc", fixed
        )
        cond = cluster.wait_condition(namespace, "btc", "Ready", "False", "InvalidStrategy")
        assert "fast" in cond["message"]

        fixed = cluster.pipeline(namespace, "btc")
        fixed["spec"]["strategies"][0]["parameters"]["fast"] = 5
        cluster.custom.replace_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "btc", fixed
        )
        eventually(lambda: len(cluster.apps.list_namespaced_deployment(namespace).items) == 3)
    assert runner.exception is None, runner.output


def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def test_missing_secret_is_reported_until_it_exists(
    cluster: Cluster, namespace: str, run_operator: Any
) -> None:
    body = example()
    body["spec"]["bot"] = {"mode": "live", "coinbaseKeySecret": {"name": "coinbase"}}
    with run_operator() as runner:
        cluster.create_pipeline(namespace, body)
        cond = cluster.wait_condition(namespace, "btc", "Ready", "False", "SecretNotFound")
        assert cond["message"] == "bot.coinbaseKeySecret: Secret 'coinbase' does not exist"
        eventually(lambda: "SecretNotFound" in warnings(cluster, namespace))

        cluster.core.create_namespaced_secret(namespace, secret("coinbase", {"api-key-name": "k"}))
        cond = cluster.wait_condition(namespace, "btc", "Ready", "False", "SecretKeyMissing")
        assert "'api-private-key'" in cond["message"]

        cluster.core.patch_namespaced_secret(
            "coinbase", namespace, secret("coinbase", {"api-private-key": "pem"})
        )
        eventually(lambda: len(cluster.apps.list_namespaced_deployment(namespace).items) == 3)
    assert runner.exception is None, runner.output


def test_a_missing_kill_token_secret_is_reported(
    cluster: Cluster, namespace: str, run_operator: Any
) -> None:
    body = example()
    body["spec"]["bot"] = {"mode": "paper", "killTokenSecret": {"name": "bot-ops"}}
    with run_operator() as runner:
        cluster.create_pipeline(namespace, body)
        cond = cluster.wait_condition(namespace, "btc", "Ready", "False", "SecretNotFound")
        assert cond["message"] == "bot.killTokenSecret: Secret 'bot-ops' does not exist"
        cluster.core.create_namespaced_secret(namespace, secret("bot-ops", {"other": "x"}))
        cond = cluster.wait_condition(namespace, "btc", "Ready", "False", "SecretKeyMissing")
        assert "'kill-token'" in cond["message"]  # the CRD's default key
        cluster.core.patch_namespaced_secret(
            "bot-ops", namespace, secret("bot-ops", {"kill-token": KILL_TOKEN})
        )
        eventually(lambda: len(cluster.apps.list_namespaced_deployment(namespace).items) == 3)
    assert runner.exception is None, runner.output
    bot = cluster.apps.read_namespaced_deployment("btc-bot", namespace)
    (container,) = bot.spec.template.spec.containers
    (env,) = [e for e in container.env if e.name == "CRYPTOPIPELINE_OPS__KILL_TOKEN"]
    assert env.value is None and env.value_from.secret_key_ref.name == "bot-ops"
    assert env.value_from.secret_key_ref.key == "kill-token"


KEY_NAME = "organizations/SECRET-ORG-7f3a/apiKeys/SECRET-KEY-91c2"
PRIVATE_KEY = "-----BEGIN EC PRIVATE KEY-----\nSECRET-PEM-BODY-55e1\n-----END EC PRIVATE KEY-----"
KSQL_PASSWORD = "SECRET-KSQL-PASSWORD-0b7d"
KILL_TOKEN = "SECRET-KILL-TOKEN-4d2e"


def test_secret_values_appear_nowhere(
    cluster: Cluster,
    namespace: str,
    run_operator: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    cluster.core.create_namespaced_secret(
        namespace, secret("coinbase", {"api-key-name": KEY_NAME, "api-private-key": PRIVATE_KEY})
    )
    cluster.core.create_namespaced_secret(
        namespace, secret("ksql", {"username": "trader", "password": KSQL_PASSWORD})
    )
    cluster.core.create_namespaced_secret(namespace, secret("bot-ops", {"kill-token": KILL_TOKEN}))
    body = example()
    body["spec"]["bot"]["mode"] = "live"
    body["spec"]["bot"]["coinbaseKeySecret"] = {"name": "coinbase"}
    body["spec"]["bot"]["killTokenSecret"] = {"name": "bot-ops"}
    body["spec"]["ksqldb"] = {"url": "http://127.0.0.1:1", "credentialsSecret": {"name": "ksql"}}
    with run_operator() as runner:
        cluster.create_pipeline(namespace, body)
        eventually(lambda: len(cluster.apps.list_namespaced_deployment(namespace).items) == 3)
        cluster.wait_condition(namespace, "btc", "MigrationsApplied", "False", within=90)
        eventually(lambda: len(warnings(cluster, namespace)) >= 1)
    assert runner.exception is None, runner.output

    api = cluster.api
    seen: list[str] = [runner.output, caplog.text]
    seen += [str(cm.data) for cm in cluster.core.list_namespaced_config_map(namespace).items]
    for dep in cluster.apps.list_namespaced_deployment(namespace).items:
        seen.append(str(api.sanitize_for_serialization(dep)))
    seen.append(str(cluster.pipeline(namespace, "btc")))
    seen += [f"{e.reason} {e.message}" for e in cluster.events(namespace)]
    everything = "\n".join(seen)
    for value in (KEY_NAME, PRIVATE_KEY, "SECRET-PEM-BODY-55e1", KSQL_PASSWORD, KILL_TOKEN):
        assert value not in everything
        assert base64.b64encode(value.encode()).decode() not in everything
    # and the bot really gets the key, by reference
    bot = cluster.apps.read_namespaced_deployment("btc-bot", namespace)
    refs = {
        e.name: e.value_from.secret_key_ref.name
        for e in bot.spec.template.spec.containers[0].env
        if e.value_from is not None
    }
    assert refs == {
        "CRYPTOPIPELINE_BROKER__KEY_NAME": "coinbase",
        "CRYPTOPIPELINE_BROKER__PRIVATE_KEY": "coinbase",
        "CRYPTOPIPELINE_OPS__KILL_TOKEN": "bot-ops",
    }
    assert isinstance(bot, client.V1Deployment)
