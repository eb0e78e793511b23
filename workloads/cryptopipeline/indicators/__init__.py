"""Incremental technical indicators (O(1) per update) with TA-Lib's semantics and alignment.

SMA, EMA, RSI, MACD, Bollinger Bands, ATR and VWAP; `None` until warmed up; snapshot/restore.
"""

from cryptopipeline.indicators._moving import Atr, BollingerBands, Ema, Macd, Rsi, Sma, Vwap

__all__ = ["Atr", "BollingerBands", "Ema", "Macd", "Rsi", "Sma", "Vwap"]
