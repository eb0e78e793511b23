"""The trading domain: orders and their lifecycle, portfolio and PnL, risk limits, sizing,
order planning and event folding, and the paper broker. `Side` (the one BUY/SELL) and the
order records are `cryptopipeline.records`', re-exported with the types they go with.

Pure code (no Kafka, network or event loop): the bot, its tests and any backtest share every
line. The bot adds only I/O around it: Kafka, the ops API, Coinbase's REST.
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
from cryptopipeline.trading.paper import PaperBroker
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
    "PaperBroker",
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
