"""The CryptoPipeline spec as typed values: the CRD's schema and defaults, read in Python.

The API server validates and defaults the resource before the operator sees it; these
models repeat the defaults so the builders work on any dict (tests, old objects) and give
the operator typed access. The topic defaults are the workloads' own (`core.settings`); a
test holds the CRD's YAML to them. Field names are the CRD's camelCase names, in snake_case.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from cryptopipeline.core.settings import DEFAULT_TOPIC_SETTINGS, DEFAULT_TOPICS

GROUP = "cryptopipeline.io"
VERSION = "v1alpha1"
PLURAL = "cryptopipelines"
KIND = "CryptoPipeline"


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )


_EXCHANGE_WS = "wss://ws-feed.exchange.coinbase.com"
_EXCHANGE_REST = "https://api.exchange.coinbase.com"


class ExchangeSpec(_Model):
    feed: Literal["exchange", "advanced-trade"] = "exchange"
    ws_url: str = _EXCHANGE_WS
    rest_url: str = _EXCHANGE_REST
    channels: list[str] = Field(default_factory=lambda: ["ticker", "heartbeat"])
    connections: int = 2

    @model_validator(mode="after")
    def _advanced_trade_urls(self) -> ExchangeSpec:
        """The CRD defaults the URLs to the Exchange's; for the advanced-trade feed those
        defaults mean "the feed's own", which the ingestor picks when none is passed."""
        if self.feed == "advanced-trade":
            if self.ws_url == _EXCHANGE_WS:
                object.__setattr__(self, "ws_url", "wss://advanced-trade-ws.coinbase.com")
            if self.rest_url == _EXCHANGE_REST:
                object.__setattr__(self, "rest_url", "https://api.coinbase.com")
        return self


class TopicNamesSpec(_Model):
    raw: str = DEFAULT_TOPICS.raw
    dead_letter: str = DEFAULT_TOPICS.dead_letter
    trade_signals: str = DEFAULT_TOPICS.trade_signals
    orders: str = DEFAULT_TOPICS.orders

    def all(self) -> list[str]:
        return [self.raw, self.dead_letter, self.trade_signals, self.orders]


class TopicsSpec(_Model):
    partitions: int = DEFAULT_TOPIC_SETTINGS.partitions
    replicas: int = DEFAULT_TOPIC_SETTINGS.replication_factor
    retention_ms: int = DEFAULT_TOPIC_SETTINGS.retention_ms
    deletion_policy: Literal["Retain", "Delete"] = "Retain"
    names: TopicNamesSpec = Field(default_factory=TopicNamesSpec)


class KafkaSpec(_Model):
    strimzi_cluster: str | None = None
    bootstrap_servers: str | None = None
    topic_management: Literal["strimzi", "direct"] | None = None
    topics: TopicsSpec = Field(default_factory=TopicsSpec)

    @property
    def management(self) -> Literal["strimzi", "direct"]:
        """strimzi when a Strimzi cluster is named, direct otherwise, unless set."""
        if self.topic_management is not None:
            return self.topic_management
        return "strimzi" if self.strimzi_cluster else "direct"

    @property
    def bootstrap(self) -> str:
        """What clients connect to: bootstrapServers, or the Strimzi cluster's service."""
        if self.bootstrap_servers:
            return self.bootstrap_servers
        return f"{self.strimzi_cluster or 'cryptopipeline'}-kafka-bootstrap:9092"


class SecretRef(_Model):
    name: str


class KsqlCredentialsRef(SecretRef):
    username_key: str = "username"
    password_key: str = "password"


class MigrationsSource(_Model):
    config_map: str | None = None


class KsqlSpec(_Model):
    url: str
    credentials_secret: KsqlCredentialsRef | None = None
    migrations: MigrationsSource = Field(default_factory=MigrationsSource)


class EnvVar(_Model):
    name: str
    value: str


class Resources(_Model):
    requests: dict[str, str | int] = Field(default_factory=dict)
    limits: dict[str, str | int] = Field(default_factory=dict)


class WorkloadSpec(_Model):
    replicas: int = 1
    resources: Resources | None = None
    env: list[EnvVar] = Field(default_factory=list)


class WorkloadsSpec(_Model):
    image: str = "cryptopipeline:0.1.0"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    ingestor: WorkloadSpec = Field(default_factory=WorkloadSpec)
    signaler: WorkloadSpec = Field(default_factory=WorkloadSpec)
    bot: WorkloadSpec = Field(default_factory=WorkloadSpec)


class StrategySpec(_Model):
    name: str
    parameters: dict[str, float | int] = Field(default_factory=dict)


class CandlesSpec(_Model):
    intervals_seconds: list[int] = Field(default_factory=lambda: [60])


class RiskSpec(_Model):
    max_position_notional: str | None = None
    max_order_notional: str | None = None
    max_daily_loss: str | None = None
    max_open_orders: int | None = None


class CoinbaseKeyRef(SecretRef):
    key_file_key: str | None = None
    key_name_key: str = "api-key-name"
    private_key_key: str = "api-private-key"

    def keys(self) -> list[str]:
        """The Secret keys the bot will read."""
        if self.key_file_key:
            return [self.key_file_key]
        return [self.key_name_key, self.private_key_key]


class KillTokenRef(SecretRef):
    """The Secret key with the bot's ops token (kill, release, portfolio)."""

    key: str = "kill-token"


class BotSpec(_Model):
    mode: Literal["paper", "live"] = "paper"
    risk: RiskSpec = Field(default_factory=RiskSpec)
    coinbase_key_secret: CoinbaseKeyRef | None = None
    kill_token_secret: KillTokenRef | None = None


class ServiceMonitorSpec(_Model):
    enabled: bool = True
    interval: str = "30s"


class MetricsSpec(_Model):
    service_monitor: ServiceMonitorSpec = Field(default_factory=ServiceMonitorSpec)


def _default_kafka() -> KafkaSpec:
    return KafkaSpec(strimzi_cluster="cryptopipeline")


class PipelineSpec(_Model):
    """A whole pipeline, as `spec` of a CryptoPipeline."""

    products: list[str] = Field(default_factory=lambda: ["BTC-USD"])
    exchange: ExchangeSpec = Field(default_factory=ExchangeSpec)
    kafka: KafkaSpec = Field(default_factory=_default_kafka)
    ksqldb: KsqlSpec | None = None
    workloads: WorkloadsSpec = Field(default_factory=WorkloadsSpec)
    strategies: list[StrategySpec] | None = None
    candles: CandlesSpec = Field(default_factory=CandlesSpec)
    bot: BotSpec = Field(default_factory=BotSpec)
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)

    @classmethod
    def from_body(cls, spec: Any) -> PipelineSpec:
        """Read a resource's `spec` (any mapping, as kopf hands it over)."""
        return cls.model_validate(dict(spec or {}))
