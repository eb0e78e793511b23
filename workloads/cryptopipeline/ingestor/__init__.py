"""The ingestor: a Coinbase WebSocket feed (Exchange, or Advanced Trade through `_advanced`)
into Kafka, every trade exactly once.

Decoding and trade sequencing are pure domain code; the intake (trusted ids, sequencers, gap
filling) orders what the connections deliver; connections, REST backfill and the Kafka
publisher are adapters around them, and `service` runs them in sessions.
"""
