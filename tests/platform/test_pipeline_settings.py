"""Configuration is validated at the edge, with the field's name in the error."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cryptopipeline.core import KafkaSettings, PipelineSettings, TopicSpec


def test_environment_configures_nested_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTOPIPELINE_KAFKA__BOOTSTRAP_SERVERS", "kafka-0:9092,kafka-1:9092")
    monkeypatch.setenv("CRYPTOPIPELINE_TOPICS__RAW", "eth_usd")
    monkeypatch.setenv("CRYPTOPIPELINE_TOPIC_DEFAULTS__PARTITIONS", "6")

    settings = PipelineSettings()

    assert settings.kafka.bootstrap_servers == "kafka-0:9092,kafka-1:9092"
    specs = {spec.name: spec for spec in settings.topic_specs()}
    assert set(specs) == {"eth_usd", "btc_usd_dlq", "btc_usd_trade_signals", "btc_usd_orders"}
    assert {spec.partitions for spec in specs.values()} == {6}


@pytest.mark.parametrize("servers", ["", "kafka", "kafka:port", "a:1,b"])
def test_bad_bootstrap_servers_are_rejected(servers: str) -> None:
    with pytest.raises(ValidationError, match="bootstrap_servers"):
        KafkaSettings(bootstrap_servers=servers)


def test_bad_environment_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTOPIPELINE_TOPIC_DEFAULTS__PARTITIONS", "0")
    with pytest.raises(ValidationError, match=r"topic_defaults\.partitions"):
        PipelineSettings()


@pytest.mark.parametrize("name", ["", "has space", "x" * 250, "slash/no"])
def test_invalid_topic_names_are_rejected(name: str) -> None:
    with pytest.raises(ValidationError, match="name"):
        TopicSpec(name=name)


def test_topic_config_carries_retention() -> None:
    spec = TopicSpec(name="t", retention_ms=-1, extra_config={"cleanup.policy": "compact"})
    assert spec.config() == {"retention.ms": "-1", "cleanup.policy": "compact"}
