"""The operator's own configuration, read once at startup from CRYPTOPIPELINE_OPERATOR__*."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    """How often drift is corrected, how retries back off, where migrations come from."""

    model_config = SettingsConfigDict(
        env_prefix="CRYPTOPIPELINE_OPERATOR__", env_nested_delimiter="__", extra="ignore"
    )

    drift_interval_s: float = Field(
        default=60.0, gt=0, description="Re-apply owned objects at least this often."
    )
    retry_initial_s: float = Field(default=5.0, gt=0, description="First retry of a failure.")
    retry_max_s: float = Field(default=300.0, gt=0, description="Longest wait between retries.")
    kafka_timeout_s: float = Field(default=20.0, gt=0, description="One Kafka admin attempt.")
    migrations_dir: Path = Field(
        default=Path("/app/ksqldb"), description="Built-in migrations (ksqldb/ in the image)."
    )
    metrics_port: int = Field(default=9104, ge=0, le=65535, description="0: no endpoint.")

    def backoff(self, retry: int) -> float:
        """Exponential backoff for the `retry`-th retry (0-based), capped."""
        return float(min(self.retry_max_s, self.retry_initial_s * 2 ** max(retry, 0)))
