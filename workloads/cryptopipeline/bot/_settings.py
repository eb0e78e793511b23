"""The bot's configuration: one typed object built from CRYPTOPIPELINE_* variables."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from cryptopipeline.core.settings import ServiceSettings
from cryptopipeline.trading import ProductIncrements, RiskLimits, Sizing

COINBASE_API_URL = "https://api.coinbase.com"


class IncrementSettings(BaseModel):
    base_increment: Decimal = Field(default=Decimal("0.00000001"), gt=0)
    quote_increment: Decimal = Field(default=Decimal("0.01"), gt=0)
    base_min_size: Decimal = Field(default=Decimal("0.00001"), ge=0)
    min_notional: Decimal = Field(default=Decimal("1"), ge=0)


class BrokerSettings(BaseModel):
    """`paper` (default) or `coinbase` (Advanced Trade; needs a CDP key)."""

    mode: Literal["paper", "coinbase"] = "paper"
    slippage_bps: Decimal = Field(default=Decimal("0"), ge=0)
    maker_fee_bps: Decimal = Field(default=Decimal("40"), ge=0)
    taker_fee_bps: Decimal = Field(default=Decimal("60"), ge=0)
    api_url: str = Field(default=COINBASE_API_URL, pattern=r"^https?://")
    key_name: SecretStr | None = None
    private_key: SecretStr | None = Field(default=None, description="EC private key, PEM")
    key_file: Path | None = Field(
        default=None, description='JSON {"name": ..., "privateKey": ...} as the CDP portal gives'
    )
    dry_run: bool = False
    timeout_s: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)

    def key(self) -> tuple[str, str] | None:
        """(key name, PEM) from the file or the variables; None if none is configured."""
        if self.key_file is not None:
            raw = orjson.loads(self.key_file.read_bytes())
            return str(raw["name"]), str(raw["privateKey"])
        if self.key_name is not None and self.private_key is not None:
            return self.key_name.get_secret_value(), self.private_key.get_secret_value()
        return None

    @model_validator(mode="after")
    def _live_needs_a_key(self) -> BrokerSettings:
        if (
            self.mode == "coinbase"
            and not self.dry_run
            and self.key_file is None
            and (self.key_name is None or self.private_key is None)
        ):
            raise ValueError("mode coinbase needs key_name and private_key, or key_file")
        return self


class TradingSettings(BaseModel):
    products: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["BTC-USD"])
    starting_cash: Decimal = Field(default=Decimal("10000"), ge=0)
    order_type: Literal["market", "limit"] = "market"
    limit_offset_bps: Decimal = Field(
        default=Decimal("0"), ge=0, description="limit orders: price this far inside the touch"
    )
    sizing: Sizing = Field(default_factory=Sizing)
    clock: Literal["wall", "event"] = Field(
        default="wall",
        description="event: decide at the signal's candle close and price at the book as of "
        "that close (trading.books), as a backtest does; for replays of recorded data",
    )
    increments: dict[str, IncrementSettings] = Field(default_factory=dict)

    @field_validator("products", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return orjson.loads(text)
            return [p.strip() for p in text.split(",") if p.strip()]
        return value

    def product_increments(self, product_id: str) -> ProductIncrements:
        spec = self.increments.get(product_id, IncrementSettings())
        return ProductIncrements(
            product_id, spec.base_increment, spec.quote_increment, spec.base_min_size,
            spec.min_notional,
        )  # fmt: skip


class BotOpsSettings(BaseModel):
    host: str = "127.0.0.1"  # /api/kill is here: local unless configured
    port: int = Field(default=9103, ge=0, le=65535)
    kill_token: SecretStr | None = Field(default=None, description="POST /api/kill needs it")


class BotSettings(ServiceSettings):
    """Everything the bot reads at start (CRYPTOPIPELINE_BROKER__MODE=coinbase, ...)."""

    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    trading: TradingSettings = Field(default_factory=TradingSettings)
    risk: RiskLimits = Field(default_factory=RiskLimits)
    ops: BotOpsSettings = Field(default_factory=BotOpsSettings)
    consumer_group: str = "cryptopipeline-bot"
    poll_interval_s: float = Field(default=1.0, gt=0, description="open-order and retry polling")
    test_pause_after_submit: bool = Field(
        default=False,
        description="TESTS ONLY: after the broker answers the first order, stop before logging "
        "the outcome and wait (the crash test kills the process there)",
    )
