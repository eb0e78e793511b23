"""The trading bot: signals -> risk -> sizing -> broker (paper or Coinbase Advanced Trade),
with every order event in `btc_usd_orders` and positions rebuilt from it after a crash.

The I/O around the `trading` domain (which decides, folds and simulates paper fills): Kafka in
and out, the ops API, the broker protocol and Coinbase's REST. `PaperBroker` is re-exported.
"""

from cryptopipeline.bot._broker import Broker, BrokerUnavailable
from cryptopipeline.bot._coinbase import AdvancedTradeClient, AuthenticationFailed, CoinbaseBroker
from cryptopipeline.bot._credentials import CdpCredentials, CredentialsError
from cryptopipeline.bot._metrics import BotMetrics
from cryptopipeline.bot._orderlog import OrderLog, read_order_log
from cryptopipeline.bot._settings import BotSettings
from cryptopipeline.bot.service import Bot, build_broker
from cryptopipeline.trading import PaperBroker

__all__ = [
    "AdvancedTradeClient",
    "AuthenticationFailed",
    "Bot",
    "BotMetrics",
    "BotSettings",
    "Broker",
    "BrokerUnavailable",
    "CdpCredentials",
    "CoinbaseBroker",
    "CredentialsError",
    "OrderLog",
    "PaperBroker",
    "build_broker",
    "read_order_log",
]
