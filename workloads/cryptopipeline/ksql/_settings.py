"""Where ksqlDB is, how to authenticate, and the values the migrations' `${...}` variables take.

Environment variables use the prefix `CRYPTOPIPELINE_KSQL__` (e.g. `CRYPTOPIPELINE_KSQL__URL`,
`CRYPTOPIPELINE_KSQL__VARIABLES__RAW_TOPIC`). The password may instead live in a file (a
Kubernetes Secret mounted as a volume): `CRYPTOPIPELINE_KSQL__PASSWORD_FILE=/var/run/secrets/...`.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cryptopipeline.core.settings import DEFAULT_TOPICS

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class MigrationVariables(BaseModel):
    """Values for the `${...}` variables in ksqldb/ (topic and object names).

    Defaults follow the original project. `ksql-migrations apply` needs the same values as
    `--define name=value` flags (see ksqldb/README.md).
    """

    raw_topic: str = DEFAULT_TOPICS.raw
    raw_stream: str = "BTC_USD_STREAM"
    signals_topic: str = "btc_usd_signals"
    signals_table: str = "BTC_USD_SIGNALS"
    signals_events_stream: str = "BTC_USD_SIGNALS_STREAM"
    candles_by_product_stream: str = "BTC_USD_CANDLES_BY_PRODUCT"
    latest_candle_topic: str = "btc_usd_latest_candle"
    latest_candle_table: str = "BTC_USD_LATEST_CANDLE"
    unified_topic: str = "btc_usd_unified"
    unified_stream: str = "BTC_USD_UNIFIED"

    @model_validator(mode="after")
    def _names(self) -> MigrationVariables:
        for name, value in self.model_dump().items():
            pattern = _TOPIC if name.endswith("_topic") else _IDENTIFIER
            if not pattern.match(value):
                kind = "a Kafka topic name" if name.endswith("_topic") else "a ksqlDB identifier"
                raise ValueError(f"{name}={value!r} is not {kind}")
        return self

    def as_map(self) -> dict[str, str]:
        return {key: str(value) for key, value in self.model_dump().items()}


class KsqlSettings(BaseSettings):
    """Everything the migration runner needs to reach ksqlDB and record what it applied."""

    model_config = SettingsConfigDict(
        env_prefix="CRYPTOPIPELINE_KSQL__", env_nested_delimiter="__", extra="ignore"
    )

    url: str = Field(default="", description="ksqlDB server, e.g. http://ksqldb:8088")
    username: str = ""
    password: SecretStr = SecretStr("")
    password_file: Path | None = Field(
        default=None, description="File holding the password (a mounted Secret); wins if set."
    )
    request_timeout_s: float = Field(default=30.0, gt=0)
    command_timeout_s: float = Field(default=60.0, gt=0, description="Wait for a DDL command.")
    metadata_timeout_s: float = Field(
        default=30.0, gt=0, description="Wait for the metadata table to show a write."
    )
    migrations_stream: str = "MIGRATION_EVENTS"
    migrations_table: str = "MIGRATION_SCHEMA_VERSIONS"
    migrations_stream_topic: str = Field(
        default="", description="Default: <ksql service id>ksql_<stream name>, like the tool."
    )
    migrations_table_topic: str = ""
    migrations_topic_replicas: int = Field(default=1, ge=1)
    variables: MigrationVariables = Field(default_factory=MigrationVariables)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("migrations_stream", "migrations_table")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a ksqlDB identifier")
        return value.upper()

    def credentials(self) -> tuple[str, str] | None:
        """(username, password) for HTTP basic auth, or None when no username is set.

        Credentials in the URL's user-info part are used when no username is configured.
        """
        parts = urlsplit(self.url)
        username = self.username or (parts.username or "")
        if not username:
            return None
        if self.password_file is not None:
            password = self.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        elif self.password.get_secret_value():
            password = self.password.get_secret_value()
        else:
            password = parts.password or ""
        return username, password

    def base_url(self) -> str:
        """The URL without any user-info, for requests."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))

    def display_url(self) -> str:
        """What logs and errors may show: never user-info, never a password."""
        return self.base_url()
