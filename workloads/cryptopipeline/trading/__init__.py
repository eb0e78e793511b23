"""The trading domain: orders and their lifecycle records, the one BUY/SELL `Side`, portfolio
and PnL, risk limits, sizing, and the trading policy as configuration (`TradingSettings`).

Pure code (no Kafka, network or asyncio): the bot, its tests and any backtest share every line.
"""

from cryptopipeline.trading.blotter import Blotter, TrackedOrder
from cryptopipeline.trading.orders import (
    BrokerUpdate,
    Fill,
    OrderEvent,
    OrderEventType,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    Side,
    client_order_id_for,
)
from cryptopipeline.trading.portfolio import Portfolio, Position
from cryptopipeline.trading.risk import Rejection, RejectReason, RiskEngine, RiskLimits
from cryptopipeline.trading.settings import TradingSettings
from cryptopipeline.trading.sizing import ProductIncrements, SizedOrder, Sizing, size_order

__all__ = [
    "Blotter",
    "BrokerUpdate",
    "Fill",
    "OrderEvent",
    "OrderEventType",
    "OrderRequest",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Portfolio",
    "Position",
    "ProductIncrements",
    "RejectReason",
    "Rejection",
    "RiskEngine",
    "RiskLimits",
    "Side",
    "SizedOrder",
    "Sizing",
    "TrackedOrder",
    "TradingSettings",
    "client_order_id_for",
    "size_order",
]
