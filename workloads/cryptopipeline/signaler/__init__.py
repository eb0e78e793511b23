"""The signaler: raw ticks from Kafka into candles, indicators and trade signals.

The domain lives in `market`, `indicators` and `strategies`; this package is the Kafka
adapter that feeds it and publishes signals exactly once with Kafka transactions.
"""
