"""The simulator's settings: one typed object, built once at the edge (CLI, env or a test)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cryptopipeline.sim._faults import FaultPlan
from cryptopipeline.sim._products import product_spec


class SimConfig(BaseSettings):
    """Everything `coinbase-sim` can be told; env vars are `COINBASE_SIM_<FIELD>`."""

    model_config = SettingsConfigDict(env_prefix="COINBASE_SIM_", extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535, description="0 picks a free port")
    products: Annotated[tuple[str, ...], NoDecode] = ("BTC-USD", "ETH-USD")
    """Comma-separated in env vars and flags: `BTC-USD,ETH-USD`."""
    seed: int = 1
    rate: float = Field(default=5.0, gt=0, description="synthetic trades per second per product")
    rates: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)
    """Per-product rates overriding `rate` (a market where a few products are busy and most
    are quiet); `BTC-USD=80,ETH-USD=40` in env vars and flags."""
    speed: float = Field(
        default=1.0, ge=0, description="event-time speed-up; 0 = as fast as consumers"
    )
    start_time: datetime | None = Field(
        default=None, description="event time of the start; default now"
    )
    max_trades: int | None = Field(default=None, ge=0, description="stop generating after N trades")
    replay: Path | None = Field(
        default=None, description="JSON-lines file of recorded feed messages"
    )
    ground_truth: Path | None = Field(
        default=None, description="write one JSON line per trade here"
    )
    await_subscribers: int = Field(
        default=0, ge=0, description="start the market after N subscribes"
    )
    max_queue: int = Field(
        default=100_000, ge=1, description="paced mode: frames queued per client"
    )
    high_water: int = Field(
        default=4096, ge=1, description="max mode: frames queued before waiting"
    )
    max_message_size: int = Field(
        default=65_536, ge=128, description="largest client frame accepted"
    )
    faults: FaultPlan = FaultPlan()
    trade_port: int | None = Field(
        default=None, ge=0, le=65535, description="Advanced Trade order API port; 0 = free"
    )
    trade_keys: Path | None = Field(
        default=None, description='JSON {"key name": "EC public key PEM"} the order API accepts'
    )
    advanced_auth: Literal["optional", "required"] = Field(
        default="optional",
        description="Advanced Trade feed: JWT needed for private channels only, or for all",
    )
    tls: bool = Field(default=False, description="serve wss:// and https:// (both ports)")
    tls_cert: Path | None = Field(default=None, description="server certificate PEM (with --tls)")
    tls_key: Path | None = Field(default=None, description="its private key PEM")
    tls_ca: Path | None = Field(
        default=None, description="the CA clients should trust (default: the certificate)"
    )
    tls_dir: Path | None = Field(
        default=None, description="where a generated certificate goes (default: a temp dir)"
    )
    trade_cash: Decimal = Field(default=Decimal("100000"), ge=0, description="starting USD")
    trade_taker_fee_bps: Decimal = Field(default=Decimal("60"), ge=0)
    trade_maker_fee_bps: Decimal = Field(default=Decimal("40"), ge=0)

    @field_validator("products", mode="before")
    @classmethod
    def _split_products(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return value

    @field_validator("products")
    @classmethod
    def _known_shape(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one product is needed")
        for product in value:
            product_spec(product)
        return value

    @field_validator("rates", mode="before")
    @classmethod
    def _split_rates(cls, value: object) -> object:
        if isinstance(value, str):
            pairs = [item.partition("=") for item in value.split(",") if item.strip()]
            for product, sep, _ in pairs:
                if not sep:
                    raise ValueError(f"a rate is PRODUCT=TRADES_PER_S, got {product.strip()!r}")
            return {product.strip(): rate.strip() for product, _, rate in pairs}
        return value

    @model_validator(mode="after")
    def _rates_of_listed_products(self) -> SimConfig:
        for product, rate in self.rates.items():
            if product not in self.products:
                raise ValueError(f"rates: {product} is not one of the products")
            if not rate > 0:  # also refuses NaN
                raise ValueError(f"rates: {product} needs a positive rate, got {rate}")
        return self

    def rate_of(self, product_id: str) -> float:
        """Synthetic trades per second of one product: its own rate, else `rate`."""
        return self.rates.get(product_id, self.rate)

    @field_validator("speed", mode="before")
    @classmethod
    def _max_speed(cls, value: object) -> object:
        return 0.0 if isinstance(value, str) and value.lower() in ("max", "inf") else value

    @field_validator("start_time")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> SimConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key are given together")
        if self.tls_cert is not None and not self.tls:
            raise ValueError("tls_cert needs tls")
        return self

    @property
    def paced(self) -> bool:
        return self.speed > 0
