"""The bot's configuration: one typed object built from CRYPTOPIPELINE_* variables."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

import orjson
from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import SettingsConfigDict

from cryptopipeline.bot._credentials import CdpCredentials, CredentialsError
from cryptopipeline.core.settings import OPS_PORTS, OpsSettings, Port, ServiceSettings
from cryptopipeline.trading import RiskLimits
from cryptopipeline.trading.settings import TradingSettings as TradingSettings  # its old home

COINBASE_API_URL = "https://api.coinbase.com"


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

    _credentials: CdpCredentials | None = PrivateAttr(default=None)

    def credentials(self) -> CdpCredentials | None:
        """The parsed key (checked when the settings were built); None if none is configured."""
        return self._credentials

    def _load_credentials(self) -> CdpCredentials | None:
        """Read and parse the key. Every error is one line that names the file or variable
        and never contains key material (CredentialsError)."""
        if self.key_file is not None:
            where = f"key_file {self.key_file}"
            try:
                raw = orjson.loads(self.key_file.read_bytes())
            except OSError as exc:
                raise CredentialsError(f"{where}: cannot be read ({exc.strerror})") from None
            except orjson.JSONDecodeError:
                raise CredentialsError(f"{where}: is not JSON") from None
            if not isinstance(raw, dict) or not all(
                isinstance(raw.get(k), str) for k in ("name", "privateKey")
            ):
                raise CredentialsError(
                    f'{where}: must be a JSON object with string fields "name" and "privateKey"'
                )
            return CdpCredentials.from_pem(raw["name"], raw["privateKey"])
        if self.key_name is not None and self.private_key is not None:
            return CdpCredentials.from_pem(
                self.key_name.get_secret_value(), self.private_key.get_secret_value()
            )
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
        if self.mode == "coinbase":
            # a bad key fails at start, as a one-line configuration error, not a traceback
            self._credentials = self._load_credentials()
        return self


class BotOpsSettings(OpsSettings):
    """The ops endpoints. /healthz, /readyz and /metrics are open; /api/portfolio,
    /api/kill and /api/release need `Authorization: Bearer <kill_token>`, and without a
    token they answer 403 (disabled). An empty or blank token counts as no token."""

    host: str = "127.0.0.1"  # /api/kill is here: local unless configured
    port: Port = OPS_PORTS["bot"]
    kill_token: SecretStr | None = Field(
        default=None, description="the bearer token of /api/portfolio, /api/kill, /api/release"
    )
    record_timeout_s: float = Field(
        default=5.0, gt=0, description="how long /api/kill and /api/release wait for Kafka to "
        "record the switch before answering 503 (a kill applies in the process at once anyway)",
    )  # fmt: skip

    @field_validator("kill_token", mode="after")
    @classmethod
    def _empty_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None  # empty means disabled, never "any token, even none, will do"
        return value


class BotSettings(ServiceSettings):
    """Everything the bot reads at start (CRYPTOPIPELINE_BROKER__MODE=coinbase, ...)."""

    # a validation error's text must never echo an input: the broker group holds the key
    model_config = SettingsConfigDict(
        env_prefix="CRYPTOPIPELINE_", env_nested_delimiter="__", extra="ignore",
        hide_input_in_errors=True,
    )  # fmt: skip

    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    trading: TradingSettings = Field(default_factory=TradingSettings)
    risk: RiskLimits = Field(default_factory=RiskLimits)
    ops: BotOpsSettings = Field(default_factory=BotOpsSettings)
    consumer_group: str = "cryptopipeline-bot"
    kill_switch_topic: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]{0,249}$",
        description="the compacted topic that remembers the kill switch; empty: "
        "`<orders topic>_kill_switch`",
    )
    poll_interval_s: float = Field(default=1.0, gt=0, description="open-order and retry polling")

    @model_validator(mode="after")
    def _kill_switch_topic(self) -> BotSettings:
        if not self.kill_switch_topic:
            self.kill_switch_topic = f"{self.topics.orders}_kill_switch"
        return self
