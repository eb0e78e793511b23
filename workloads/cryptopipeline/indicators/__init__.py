"""Incremental technical indicators (O(1) per update) with TA-Lib's semantics and alignment.

SMA, EMA, RSI, MACD, Bollinger Bands, ATR and VWAP; `None` until warmed up; snapshot/restore;
`IndicatorSet`: one series' indicators, each kind and parameters once, fed once per candle.
"""

from cryptopipeline.indicators._averages import Ema, Sma
from cryptopipeline.indicators._momentum import Macd, Rsi
from cryptopipeline.indicators._set import Indicator, IndicatorSet
from cryptopipeline.indicators._volatility import Atr, BollingerBands
from cryptopipeline.indicators._volume import Vwap

__all__ = [
    "Atr",
    "BollingerBands",
    "Ema",
    "Indicator",
    "IndicatorSet",
    "Macd",
    "Rsi",
    "Sma",
    "Vwap",
]
