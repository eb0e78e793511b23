"""The signaler's configuration: one typed object from CRYPTOPIPELINE_* variables."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

from cryptopipeline.core.settings import OPS_PORTS, OpsSettings, Port, ServiceSettings
from cryptopipeline.strategies import StrategyConfig


def _default_strategies() -> list[StrategyConfig]:
    return [
        StrategyConfig(name="sma_crossover", parameters={"fast": 10, "slow": 30}),
        StrategyConfig(
            name="rsi_threshold", parameters={"period": 14, "oversold": 30, "overbought": 70}
        ),
        StrategyConfig(name="macd_cross", parameters={"fast": 12, "slow": 26, "signal": 9}),
    ]


class CandleSettings(BaseModel):
    intervals_s: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [60])
    grace_s: float = Field(default=2.0, ge=0)

    @field_validator("intervals_s", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(v) for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
        return value

    @field_validator("intervals_s")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if not value or any(v <= 0 for v in value):
            raise ValueError("intervals must be positive seconds, at least one")
        return sorted(set(value))


class SignalerOptions(BaseModel):
    """How the signaler reads, checkpoints and writes."""

    group_id: str = Field(
        default="cryptopipeline-signaler",
        description="consumer group: replicas share the raw partitions through it",
    )
    transactional_id: str = Field(
        default="cryptopipeline-signaler",
        description="prefix of the per-partition transactional ids ({prefix}-{topic}-{partition})"
        ": whoever owns a partition fences its previous owner",
    )
    state_topic: str = "btc_usd_signaler_state"
    dead_letter_topic: str = "btc_usd_trade_signals_dlq"
    max_batch_records: int = Field(default=1_000, ge=1)
    batch_wait_ms: int = Field(default=20, ge=0)
    start_from: Literal["earliest", "latest"] = "earliest"
    checkpoint_interval_ms: int = Field(
        default=1_000, ge=0, description="how often a batch without signals is checkpointed"
    )


class SignalerOpsSettings(OpsSettings):
    port: Port = OPS_PORTS["signaler"]


class SignalerSettings(ServiceSettings):
    candles: CandleSettings = Field(default_factory=CandleSettings)
    strategies: list[StrategyConfig] = Field(
        default_factory=_default_strategies,
        description='JSON list of {"name": ..., "parameters": {...}}',
    )
    signaler: SignalerOptions = Field(default_factory=SignalerOptions)
    ops: SignalerOpsSettings = Field(default_factory=SignalerOpsSettings)
