"""Market data for the signaler: ticks and heartbeats parsed from the raw topic, candles.

`CandleAggregator` folds trades into candles by exchange event time; no I/O, no clock.
"""

from cryptopipeline.market._aggregator import CandleAggregator
from cryptopipeline.market._candle import Candle
from cryptopipeline.market._tick import (
    Heartbeat,
    MarketEvent,
    Rejected,
    Tick,
    epoch_us,
    parse_event,
    parse_tick,
)

__all__ = [
    "Candle",
    "CandleAggregator",
    "Heartbeat",
    "MarketEvent",
    "Rejected",
    "Tick",
    "epoch_us",
    "parse_event",
    "parse_tick",
]
