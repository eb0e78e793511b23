"""CryptoPipeline: Coinbase market data through Kafka to signals and risk-checked orders.

This package holds every Python program of the pipeline; `core` is what they share.
"""

__version__ = "0.1.0"
