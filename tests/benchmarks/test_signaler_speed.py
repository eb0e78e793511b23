"""The signaler service against the real broker: raw ticks per second sustained through
candles, strategies and Kafka transactions, and how long a signal takes after the tick or
heartbeat that closed its candle has been read (batch read -> transaction committed).

Measurements, not assertions (`make bench`); docs/benchmarks.md holds the numbers.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "signaler"))
from signal_support import produce, tick_fixture

from cryptopipeline.core import KafkaSettings, TopicSpec, ensure_topics
from cryptopipeline.signaler._settings import SignalerSettings
from cryptopipeline.signaler.service import Signaler

pytestmark = pytest.mark.benchmark

STRATEGIES = [
    {"name": "sma_crossover", "parameters": {"fast": 5, "slow": 20}},
    {"name": "ema_crossover", "parameters": {}},
    {"name": "rsi_threshold", "parameters": {}},
    {"name": "macd_cross", "parameters": {}},
    {"name": "bollinger_breakout", "parameters": {}},
]


def _settings(bootstrap: str, raw: str, **signaler: Any) -> SignalerSettings:
    run = uuid.uuid4().hex[:8]
    return SignalerSettings(
        kafka={"bootstrap_servers": bootstrap},
        topics={"raw": raw, "trade_signals": f"bsig_{run}"},
        strategies=STRATEGIES,
        signaler={"group_id": f"bg_{run}", "transactional_id": f"bt_{run}",
                  "state_topic": f"bst_{run}", "dead_letter_topic": f"bdlq_{run}", **signaler},
        ops={"host": "127.0.0.1", "port": 0},
        log_level="WARNING",
    )  # fmt: skip


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _throughput(bootstrap: str) -> dict[str, float]:
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    raw = f"braw_{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka, [TopicSpec(name=raw)])
    records = await produce(kafka, raw, tick_fixture(("BTC-USD", "ETH-USD"), 6 * 3600))
    signaler = Signaler(_settings(bootstrap, raw))
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(signaler.run(stop))
    consumed = signaler.metrics.records

    def folded() -> float:
        return sum(consumed.labels(kind)._value.get() for kind in ("ticker", "heartbeat"))

    async with asyncio.timeout(300):
        while folded() < records:  # noqa: ASYNC110 - a counter has no event to await
            await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    return {"records": records, "seconds": elapsed, "records_per_s": records / elapsed,
            "transactions": signaler.batches}  # fmt: skip


async def _latency(bootstrap: str, rate: int, seconds: int) -> dict[str, float]:
    """Ticks paced at `rate` per second with event time = now and 1 s candles, so candles
    close (and strategies decide) every second, as in a busy live market."""
    from aiokafka import AIOKafkaProducer

    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    raw = f"blat_{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka, [TopicSpec(name=raw)])
    settings = _settings(bootstrap, raw, start_from="earliest")
    settings.candles.intervals_s = [1]
    signaler = Signaler(settings)
    observed: list[float] = []
    observe = signaler.metrics.latency.observe

    def keep(value: float) -> None:
        observed.append(value)
        observe(value)

    signaler.metrics.latency.observe = keep  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(signaler.run(stop))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    try:
        template = list(tick_fixture(("BTC-USD", "ETH-USD"), seconds * rate // 2 + 10))
        ticks = [v for v in template if b'"ticker"' in v][: seconds * rate]
        t0 = time.perf_counter()
        for i, value in enumerate(ticks):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the load, not synchronising a test
            body = value.decode()
            now_us = int(time.time() * 1_000_000)
            start = body.index('"time":"') + 8
            end = body.index('"', start)
            from cryptopipeline.coinbase import format_time

            value = (body[:start] + format_time(now_us) + body[end:]).encode()
            product = b"BTC-USD" if b"BTC-USD" in value else b"ETH-USD"
            await producer.send(raw, value=value, key=product)
        await producer.flush()
    finally:
        await producer.stop()
    await asyncio.sleep(1)  # let the last batch commit (a measurement, not an assertion)
    stop.set()
    await task
    return {
        "rate": rate,
        "batches": len(observed),
        "p50_ms": _percentile(observed, 0.50) * 1000,
        "p99_ms": _percentile(observed, 0.99) * 1000,
        "max_ms": max(observed) * 1000,
        "signals": sum(
            s.value for f in signaler.metrics.registry.collect() for s in f.samples
            if s.name == "cryptopipeline_signaler_signals_total"
        ),
    }  # fmt: skip


def test_signaler_throughput(benchmark: Any, kafka_bootstrap: str) -> None:
    result = benchmark.pedantic(
        lambda: asyncio.run(_throughput(kafka_bootstrap)), rounds=1, iterations=1
    )
    benchmark.extra_info.update(result)
    print(f"\nsignaler throughput: {result}")


def test_signaler_latency_at_1000_ticks_per_second(benchmark: Any, kafka_bootstrap: str) -> None:
    result = benchmark.pedantic(
        lambda: asyncio.run(_latency(kafka_bootstrap, 1_000, 60)), rounds=1, iterations=1
    )
    benchmark.extra_info.update(result)
    print(f"\nsignaler latency: {result}")
