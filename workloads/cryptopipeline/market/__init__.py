"""Market data for the signaler: ticks and heartbeats parsed from the raw topic, candles.

`CandleAggregator` folds trades into candles by exchange event time; no I/O, no clock.
"""

from cryptopipeline.coinbase import epoch_us
from cryptopipeline.market._aggregator import CandleAggregator
from cryptopipeline.market._candle import Candle
from cryptopipeline.market._tick import (
    Heartbeat,
    RawEvent,
    Rejected,
    Tick,
    parse_event,
    parse_tick,
    read_heartbeat,
    read_tick,
)

__all__ = [
    "Candle",
    "CandleAggregator",
    "Heartbeat",
    "RawEvent",
    "Rejected",
    "Tick",
    "epoch_us",
    "parse_event",
    "parse_tick",
    "read_heartbeat",
    "read_tick",
]
