"""The ingestor: Coinbase's WebSocket feed into Kafka, every trade exactly once.

Decoding and trade sequencing are pure domain code; connections, REST backfill and the
Kafka publisher are adapters around them, wired together in `service`.
"""
