"""`cryptopipeline backtest --topic`: a time range of a raw topic on the real broker."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from cryptopipeline.cli import main
from cryptopipeline.core import KafkaSettings, TopicSpec, ensure_topics
from cryptopipeline.market import epoch_us

pytestmark = pytest.mark.kafka


def _tick(n: int, price: int) -> dict[str, object]:
    return {
        "type": "ticker", "product_id": "BTC-USD", "trade_id": n, "sequence": n,
        "price": str(price), "last_size": "0.01", "side": "buy",
        "best_bid": str(price - 1), "best_ask": str(price + 1),
        "time": f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}.000000Z",
    }  # fmt: skip


async def test_topic_range(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    topic = f"btraw_{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_settings, [TopicSpec(name=topic, partitions=2, retention_ms=-1)])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        for n in range(120):  # two minutes of one tick a second, as the ingestor writes them
            body = _tick(n, 100 + (n % 17))
            at_ms = epoch_us(str(body["time"])) // 1000
            await producer.send(topic, orjson.dumps(body), key=b"BTC-USD", timestamp_ms=at_ms)
        await producer.flush()
    finally:
        await producer.stop()
    out = tmp_path / "out"
    code = await asyncio.to_thread(main, [
                 "backtest", "--bootstrap-servers", kafka_settings.bootstrap_servers,
                 "--topic", topic, "--from", "2026-01-01T00:00:30Z",
                 "--to", "2026-01-01T00:01:30Z", "--strategy", "sma_crossover",
                 "--param", "fast=2", "--param", "slow=4", "--candle-seconds", "5",
                 "--grace-seconds", "0", "--no-chart", "--out", str(out)])  # fmt: skip
    assert code == 0
    report = orjson.loads((out / "report.json").read_bytes())
    assert report["counts"]["ticks"] == 60  # [00:30, 01:30)
    assert report["input"]["kind"] == "kafka" and report["input"]["topic"] == topic
    assert report["counts"]["candles"] == 11  # the last 5-second window never closes


async def test_missing_topic(kafka_settings: KafkaSettings, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    code = await asyncio.to_thread(main, [
                 "backtest", "--bootstrap-servers", kafka_settings.bootstrap_servers,
                 "--topic", f"nothere_{uuid.uuid4().hex[:8]}", "--from", "2026-01-01T00:00:00Z",
                 "--to", "2026-01-02T00:00:00Z", "--strategy", "sma_crossover",
                 "--out", str(tmp_path / "out")])  # fmt: skip
    assert code == 2 and "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
