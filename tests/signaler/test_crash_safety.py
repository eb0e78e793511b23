"""Promise 2 and crash safety with real Kafka: a signaler killed with -9 mid-stream and
restarted commits exactly the signals of an uninterrupted run, each once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid

import orjson
import pytest
from signal_support import caught_up, committed_signals, produce, tick_fixture

from cryptopipeline.core import KafkaSettings, TopicSpec, ensure_topics

pytestmark = pytest.mark.kafka

PRODUCTS = ("BTC-USD", "ETH-USD")
SECONDS = 4 * 3600  # four hours of exchange time: 240 one-minute candles per product
STRATEGIES = [
    {"name": "sma_crossover", "parameters": {"fast": 5, "slow": 20}},
    {"name": "ema_crossover", "parameters": {"fast": 12, "slow": 26}},
    {"name": "rsi_threshold", "parameters": {"period": 14, "oversold": 30, "overbought": 70}},
    {"name": "macd_cross", "parameters": {"fast": 12, "slow": 26, "signal": 9}},
    {"name": "bollinger_breakout", "parameters": {"period": 20, "multiplier": 2}},
]


def _env(kafka: KafkaSettings, raw: str, run: str) -> dict[str, str]:
    return {
        **os.environ,
        "CRYPTOPIPELINE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "CRYPTOPIPELINE_TOPICS__RAW": raw,
        "CRYPTOPIPELINE_TOPICS__TRADE_SIGNALS": f"signals_{run}",
        "CRYPTOPIPELINE_SIGNALER__STATE_TOPIC": f"state_{run}",
        "CRYPTOPIPELINE_SIGNALER__DEAD_LETTER_TOPIC": f"sdlq_{run}",
        "CRYPTOPIPELINE_SIGNALER__GROUP_ID": f"group_{run}",
        "CRYPTOPIPELINE_SIGNALER__TRANSACTIONAL_ID": f"tx_{run}",
        "CRYPTOPIPELINE_SIGNALER__MAX_BATCH_RECORDS": "200",
        "CRYPTOPIPELINE_STRATEGIES": orjson.dumps(STRATEGIES).decode(),
        "CRYPTOPIPELINE_OPS__HOST": "127.0.0.1",
        "CRYPTOPIPELINE_OPS__PORT": "0",
    }


async def _start(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cryptopipeline.signaler.cli", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def _until(kafka: KafkaSettings, state_topic: str, raw: str) -> None:
    async with asyncio.timeout(180):
        while not await caught_up(kafka, state_topic, raw):  # noqa: ASYNC110 - no event
            await asyncio.sleep(0.3)


async def test_kill_9_and_restart_commits_the_uninterrupted_signals_once(
    kafka_settings: KafkaSettings,
) -> None:
    raw = f"ticks_{uuid.uuid4().hex[:10]}"
    await ensure_topics(kafka_settings, [TopicSpec(name=raw)])
    values = list(tick_fixture(PRODUCTS, SECONDS))
    bad = b'{"type":"ticker","product_id":"BTC-USD","price":'
    values.insert(len(values) // 3, bad)
    await produce(kafka_settings, raw, iter(values))

    reference, crashed = f"ref_{uuid.uuid4().hex[:8]}", f"crash_{uuid.uuid4().hex[:8]}"
    uninterrupted = await _start(_env(kafka_settings, raw, reference))
    try:
        await _until(kafka_settings, f"state_{reference}", raw)
    finally:
        uninterrupted.send_signal(signal.SIGTERM)
        assert await uninterrupted.wait() == 0
    expected = await committed_signals(kafka_settings, f"signals_{reference}")
    dead = await committed_signals(kafka_settings, f"sdlq_{reference}", decode=False)
    assert dead == [bad], "the bad record is dead-lettered, and nothing else"
    assert len({s["strategy"] for s in expected}) == 5, "every strategy fired at least once"

    env = _env(kafka_settings, raw, crashed)
    victim = await _start(env)
    async with asyncio.timeout(120):
        while len(await committed_signals(kafka_settings, f"signals_{crashed}")) < 10:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    victim.kill()  # kill -9, mid-transaction or between two: both must be safe
    await victim.wait()
    assert not await caught_up(kafka_settings, f"state_{crashed}", raw), "killed mid-stream"
    survivor = await _start(env)
    try:
        await _until(kafka_settings, f"state_{crashed}", raw)
    finally:
        survivor.send_signal(signal.SIGTERM)
        assert await survivor.wait() == 0
    got = await committed_signals(kafka_settings, f"signals_{crashed}")

    assert _by_product(got) == _by_product(expected)  # same signals, same order, once each
    assert len({s["signal_id"] for s in got}) == len(got)


def _by_product(signals: list[dict[str, object]]) -> dict[object, list[dict[str, object]]]:
    """Signals per product in log order (a product's signals share one partition)."""
    grouped: dict[object, list[dict[str, object]]] = {}
    for s in signals:
        grouped.setdefault(s["product_id"], []).append(s)
    return grouped
