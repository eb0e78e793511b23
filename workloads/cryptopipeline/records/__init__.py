"""The records the pipeline's own programs write to Kafka: one schema package for all of
them (trade signals, order events, the kill switch) and the one BUY/SELL `Side` they share,
pydantic only, no I/O.

The raw feed (`btc_usd`) is Coinbase's own JSON, described in `cryptopipeline.coinbase`.
Money is `Decimal` (serialised as a JSON string); indicator values may be float.
"""

from cryptopipeline.records._killswitch import KillSwitchRecord
from cryptopipeline.records._orders import (
    FillRecord,
    OrderEvent,
    OrderEventType,
    OrderSide,
    OrderType,
)
from cryptopipeline.records._side import Side
from cryptopipeline.records._signals import Action, CandleWindow, TradeSignal

__all__ = [
    "Action",
    "CandleWindow",
    "FillRecord",
    "KillSwitchRecord",
    "OrderEvent",
    "OrderEventType",
    "OrderSide",
    "OrderType",
    "Side",
    "TradeSignal",
]
