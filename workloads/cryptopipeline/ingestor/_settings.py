"""The ingestor's configuration: one typed object built from CRYPTOPIPELINE_* variables."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from cryptopipeline.core.settings import OPS_PORTS, OpsSettings, Port, ServiceSettings

COINBASE_WS_URL = "wss://ws-feed.exchange.coinbase.com"
COINBASE_REST_URL = "https://api.exchange.coinbase.com"
ADVANCED_WS_URL = "wss://advanced-trade-ws.coinbase.com"
ADVANCED_REST_URL = "https://api.coinbase.com"

Feed = Literal["exchange", "advanced-trade"]
"""Which Coinbase market-data protocol the ingestor reads (docs/ingestor.md)."""

Channel = Literal["ticker", "heartbeat", "matches"]
_DEFAULT_CHANNELS: list[Channel] = ["ticker", "heartbeat"]


def _split(value: object) -> object:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


class ExchangeSettings(BaseModel):
    """Where the feed comes from and what is subscribed."""

    feed: Feed = Field(
        default="exchange",
        description="exchange: Coinbase Exchange's ws-feed; advanced-trade: Advanced Trade's "
        "market_trades + heartbeats (default URLs follow the feed)",
    )
    ws_url: str = Field(default=COINBASE_WS_URL, pattern=r"^wss?://")
    rest_url: str = Field(default=COINBASE_REST_URL, pattern=r"^https?://")
    products: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["BTC-USD"])
    channels: Annotated[list[Channel], NoDecode] = Field(
        default_factory=lambda: list(_DEFAULT_CHANNELS)
    )
    connections: int = Field(default=2, ge=1, le=8, description="redundant sockets")
    ca_file: str | None = Field(
        default=None,
        description="PEM bundle of the certificate authorities trusted for wss:// and https:// "
        "(instead of the system's); e.g. the CA coinbase-sim --tls prints",
    )

    _split_products = field_validator("products", "channels", mode="before")(
        lambda cls, value: _split(value)
    )

    @field_validator("products")
    @classmethod
    def _product_ids(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one product is needed")
        for product in value:
            base, dash, quote = product.partition("-")
            if not dash or not base.isalnum() or not quote.isalnum() or product != product.upper():
                raise ValueError(f"{product!r} is not a product id like BTC-USD")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _advanced_trade_defaults(self) -> ExchangeSettings:
        if self.feed == "advanced-trade":
            if "ws_url" not in self.model_fields_set:
                self.ws_url = ADVANCED_WS_URL
            if "rest_url" not in self.model_fields_set:
                self.rest_url = ADVANCED_REST_URL
            if "matches" in self.channels:
                raise ValueError(
                    "the advanced-trade feed has no matches channel: its trades are published "
                    "as tickers (channels: ticker,heartbeat)"
                )
        return self

    @model_validator(mode="after")
    def _needs_trades_and_heartbeat(self) -> ExchangeSettings:
        if "heartbeat" not in self.channels:
            raise ValueError("channels must include heartbeat (liveness and quiet-market time)")
        if not {"ticker", "matches"} & set(self.channels):
            raise ValueError("channels must include ticker or matches")
        return self


class IngestSettings(BaseModel):
    """Liveness, reconnects, gaps, input limits and buffering."""

    heartbeat_timeout_s: float = Field(default=5.0, gt=0)
    reconnect_initial_s: float = Field(default=0.25, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    max_frame_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="the WebSocket layer refuses larger frames (the connection is reset)",
    )
    dead_letter_max_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        le=512 * 1024,
        description="a dead-letter value is cut to this (headers say so); well below Kafka's "
        "1 MiB default message and request limits",
    )
    max_trade_id_jump: int = Field(
        default=100_000,
        ge=1,
        description="a trade id or heartbeat last_trade_id further than this above the highest "
        "trusted id is confirmed over REST before it can move the high-water mark",
    )
    max_future_s: float = Field(
        default=300.0,
        gt=0,
        le=3_000,
        description="event times further ahead of the local clock are refused (DLQ); kept "
        "below Kafka's message.timestamp.after.max.ms (1 h by default)",
    )
    max_event_age_s: float | None = Field(
        default=None,
        gt=0,
        description="event times older than this are refused; none by default (replays)",
    )
    stuck_after_s: float = Field(
        default=30.0,
        gt=0,
        description="a product receiving trades but publishing none this long is stuck: "
        "/readyz answers 503",
    )
    gap_grace_s: float = Field(default=0.5, ge=0, description="wait for another socket first")
    gap_attempts: int = Field(default=5, ge=1, description="backfills before a gap is skipped")
    max_buffered_records: int = Field(default=50_000, ge=10, description="unacked by Kafka")
    max_pending_trades: int = Field(default=100_000, ge=10, description="waiting on a gap")
    linger_ms: int = Field(default=2, ge=0)
    kafka_delivery_timeout_ms: int = Field(default=120_000, ge=1_000)
    recovery_scan_limit: int = Field(default=1_000_000, ge=1, description="records per partition")


class IngestorOpsSettings(OpsSettings):
    port: Port = OPS_PORTS["ingestor"]


class IngestorSettings(ServiceSettings):
    """Everything the ingestor reads at start (CRYPTOPIPELINE_EXCHANGE__PRODUCTS=BTC-USD,...)."""

    exchange: ExchangeSettings = Field(default_factory=ExchangeSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    ops: IngestorOpsSettings = Field(default_factory=IngestorOpsSettings)
