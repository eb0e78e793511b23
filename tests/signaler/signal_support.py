"""A deterministic tick fixture and helpers for the signaler's Kafka tests."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from cryptopipeline.coinbase import heartbeat_message, ticker_message
from cryptopipeline.core import KafkaSettings
from cryptopipeline.core.kafka import new_consumer, partitions_of, read_to_end
from cryptopipeline.signaler._state import load_checkpoints, state_key

START_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def tick_fixture(products: tuple[str, ...], seconds: int, seed: int = 3) -> Iterator[bytes]:
    """Raw `btc_usd` values: about one trade per second per product along trending waves (so
    crossovers happen), and a heartbeat per product per second."""
    rng = random.Random(seed)
    state = {p: (Decimal(30_000 + 1_000 * i), 1_000 * (i + 1), 10_000 * (i + 1))
             for i, p in enumerate(products)}  # fmt: skip
    for second in range(seconds):
        for product in products:
            price, trade_id, sequence = state[product]
            for _ in range(rng.choice((0, 1, 1, 2))):
                drift = 30 * math.sin(second / 600) + rng.gauss(0, 8)
                price = max(
                    Decimal(100), (price + Decimal(round(drift, 2))).quantize(Decimal("0.01"))
                )
                trade_id += 1
                sequence += rng.randint(1, 5)
                at = START_US + second * 1_000_000 + rng.randint(0, 999_999)
                yield orjson.dumps(
                    ticker_message(
                        sequence=sequence, product_id=product, price=price,
                        open_24h=price, volume_24h=Decimal(100), low_24h=price,
                        high_24h=price, volume_30d=Decimal(1000),
                        best_bid=price - Decimal("0.01"), best_bid_size=Decimal(1),
                        best_ask=price, best_ask_size=Decimal(1),
                        taker_side=rng.choice(("buy", "sell")), time=at, trade_id=trade_id,
                        last_size=Decimal(rng.randint(1, 500)) / 1000,
                    )
                )  # fmt: skip
            state[product] = (price, trade_id, sequence)
            yield orjson.dumps(
                heartbeat_message(
                    product_id=product, sequence=sequence, last_trade_id=trade_id,
                    time=START_US + (second + 1) * 1_000_000,
                )
            )  # fmt: skip


async def produce(kafka: KafkaSettings, topic: str, values: Iterator[bytes]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=5)
    await producer.start()
    count = 0
    try:
        for value in values:
            try:
                key = orjson.loads(value)["product_id"].encode()
            except orjson.JSONDecodeError:
                key = b"BTC-USD"
            await producer.send(topic, value=value, key=key)
            count += 1
        await producer.flush()
    finally:
        await producer.stop()
    return count


async def committed_signals(kafka: KafkaSettings, topic: str, *, decode: bool = True) -> list[Any]:
    """Every committed record in `topic` (read_committed), in log order per partition."""
    records = await read_to_end(kafka, topic, "tests")
    return [orjson.loads(r.value) if decode else r.value for r in records]


async def caught_up(kafka: KafkaSettings, state_topic: str, raw: str) -> bool:
    """True once the signaler's checkpoints have reached the end of every raw partition."""
    consumer = new_consumer(kafka, "tests", isolation_level="read_uncommitted")
    await consumer.start()
    try:
        tps = await partitions_of(consumer, raw)
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    checkpoints = await load_checkpoints(kafka, state_topic)
    return all(
        ends[tp] == 0 or checkpoints.get(state_key(raw, tp.partition), {}).get("offset") == ends[tp]
        for tp in tps
    )
