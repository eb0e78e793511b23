"""Pipeline-wide settings: Kafka, topic names and the settings topics are created with, and
where each workload serves its ops endpoints. Each of these facts is written here once.

Every program composes these into its own `BaseSettings` class; environment variables
use the `CRYPTOPIPELINE_` prefix and `__` for nesting, e.g.
`CRYPTOPIPELINE_KAFKA__BOOTSTRAP_SERVERS=kafka:9092`. Pure configuration (pydantic only):
the operator reads its defaults too, and nothing here talks to Kafka (`core.kafka` does).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Final, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Port = Annotated[int, Field(ge=0, le=65535)]

OPS_PORTS: Final[Mapping[str, int]] = MappingProxyType(
    {"ingestor": 9101, "signaler": 9102, "bot": 9103}
)
"""Each workload's default ops port (/healthz, /readyz, /metrics): its settings, the local
runner, `cryptopipeline status` and the operator's manifests all read it from here."""


class OpsSettings(BaseModel):
    """Where a workload serves its ops endpoints (`core.ops.OpsServer`). A workload's own
    subclass sets its default port from `OPS_PORTS`; `port=0` picks a free one."""

    host: str = "0.0.0.0"  # probed by the kubelet
    port: Port = 0


class KafkaSettings(BaseModel):
    """Where Kafka is and how clients identify themselves."""

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Comma-separated host:port list."
    )
    client_id: str = "cryptopipeline"
    request_timeout_ms: int = Field(default=30_000, ge=1_000)

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {server.strip()!r}")
        return value


class TopicNames(BaseModel):
    """Topic names; the defaults follow the original project."""

    raw: str = "btc_usd"
    dead_letter: str = "btc_usd_dlq"
    trade_signals: str = "btc_usd_trade_signals"
    orders: str = "btc_usd_orders"


class TopicDefaults(BaseModel):
    """Partitions, replication and retention for the topics the pipeline creates itself."""

    partitions: int = Field(default=3, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=-1)

    def spec(self, name: str) -> TopicSpec:
        """The topic `name` with these partitions, replication factor and retention."""
        return TopicSpec(
            name=name,
            partitions=self.partitions,
            replication_factor=self.replication_factor,
            retention_ms=self.retention_ms,
        )


DEFAULT_TOPICS: Final = TopicNames()
"""The default topic names (the CRD's defaults repeat them; a test compares the two)."""
DEFAULT_TOPIC_SETTINGS: Final = TopicDefaults()
"""The default partitions, replication factor and retention (the CRD's, likewise)."""


class TopicSpec(BaseModel):
    """A topic and the settings it is created with."""

    name: str = Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")
    partitions: int = Field(default=DEFAULT_TOPIC_SETTINGS.partitions, ge=1)
    replication_factor: int = Field(default=DEFAULT_TOPIC_SETTINGS.replication_factor, ge=1)
    retention_ms: int = Field(
        default=DEFAULT_TOPIC_SETTINGS.retention_ms, ge=-1, description="-1 keeps records forever."
    )
    extra_config: dict[str, str] = Field(default_factory=dict)

    def config(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), **self.extra_config}


class PipelineSettings(BaseSettings):
    """What every program needs to find its topics."""

    model_config = SettingsConfigDict(
        env_prefix="CRYPTOPIPELINE_", env_nested_delimiter="__", extra="ignore"
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicNames = Field(default_factory=TopicNames)
    topic_defaults: TopicDefaults = Field(default_factory=TopicDefaults)

    def topic_specs(self) -> list[TopicSpec]:
        """Every pipeline topic, with the configured partitions, replication and retention."""
        names = dict.fromkeys(self.topics.model_dump().values())
        return [self.topic_defaults.spec(name) for name in names]


class ServiceSettings(PipelineSettings):
    """A long-running program's settings: the pipeline's, plus its name and how it logs."""

    pipeline_name: str = Field(
        default="local",
        min_length=1,
        description="the `pipeline` label of every metric (the CryptoPipeline's name on "
        "Kubernetes, set by the operator)",
    )
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"


SettingsT = TypeVar("SettingsT", bound=BaseSettings)
_SECRET_HINTS = ("secret", "key", "token", "password", "pem", "credential")


def load_or_exit(settings_class: type[SettingsT], program: str) -> SettingsT:
    """Build a program's settings from the environment, or exit 2 with one line per bad
    variable, named as the user would set it. Values of secret-looking fields are not shown."""
    try:
        return settings_class()
    except ValidationError as exc:
        prefix = str(settings_class.model_config.get("env_prefix", ""))
        lines = []
        for error in exc.errors():
            parts = [str(part) for part in error["loc"]]
            name = prefix + "__".join(part.upper() for part in parts)
            secret = any(hint in part.lower() for part in parts for hint in _SECRET_HINTS)
            value = error.get("input")
            # a group's input is the whole group (a dict): it may hold a secret, show none
            scalar = isinstance(value, str | int | float | bool) or value is None
            shown = repr(value)[:80] if scalar and not secret else "<hidden>"
            message = " ".join(str(error["msg"]).split())  # one line per variable
            lines.append(f"  {name}: {message} (got {shown})")
        print(f"{program}: invalid configuration:\n" + "\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None
