"""CryptoPipeline: Coinbase market data through Kafka to signals and risk-checked orders.

This package holds every workload program of the pipeline and its domain code; `core` is
what the programs share. The operator is its own package, `cryptopipeline_operator`.
"""

__version__ = "0.1.0"
