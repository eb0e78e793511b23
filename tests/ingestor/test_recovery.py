"""Restarts: SIGTERM flushes and exits; kill -9 and a Kafka broker restart lose and double
nothing, because the ingestor re-reads the log and backfills the time it was away. Both
feeds (Exchange and Advanced Trade) run each test."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import orjson
import pytest
from ingest_support import (
    FEEDS,
    assert_exactly_once,
    checkpoint,
    collect,
    contains,
    feed_url,
    ingestor_settings,
    running,
    wait_for,
)

from cryptopipeline.core import KafkaSettings, TopicSpec, ensure_topics
from cryptopipeline.ingestor.service import Ingestor
from cryptopipeline.localkafka import LocalKafka
from cryptopipeline.localkafka._broker import free_port
from cryptopipeline.sim._config import SimConfig
from cryptopipeline.sim._server import SimServer

pytestmark = pytest.mark.kafka


def _env(bootstrap: str, sim: SimServer, raw: str, dlq: str, feed: str) -> dict[str, str]:
    return {
        **os.environ,
        "CRYPTOPIPELINE_EXCHANGE__FEED": feed,
        "CRYPTOPIPELINE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "CRYPTOPIPELINE_TOPICS__RAW": raw,
        "CRYPTOPIPELINE_TOPICS__DEAD_LETTER": dlq,
        "CRYPTOPIPELINE_EXCHANGE__WS_URL": feed_url(sim, feed),
        "CRYPTOPIPELINE_EXCHANGE__REST_URL": sim.http_url,
        "CRYPTOPIPELINE_EXCHANGE__PRODUCTS": ",".join(sim.config.products),
        "CRYPTOPIPELINE_INGEST__GAP_GRACE_S": "0.2",
        "CRYPTOPIPELINE_OPS__HOST": "127.0.0.1",
        "CRYPTOPIPELINE_OPS__PORT": "0",
    }


async def _start(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cryptopipeline.ingestor.cli", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


def _trades_in(records: list[object]) -> int:
    return sum(1 for r in records if b'"type":"ticker"' in r.value)  # type: ignore[attr-defined]


@pytest.mark.parametrize("feed", FEEDS)
async def test_sigterm_then_kill_9_then_restart_is_exactly_once(
    kafka_settings: KafkaSettings, raw_topics: tuple[str, str], feed: str
) -> None:
    raw, dlq = raw_topics
    bootstrap = kafka_settings.bootstrap_servers
    config = SimConfig(
        port=0, products=("BTC-USD", "ETH-USD"), seed=5, rate=400, await_subscribers=2
    )
    async with SimServer(config) as sim:
        env = _env(bootstrap, sim, raw, dlq, feed)

        first = await _start(env)
        await collect(bootstrap, raw, lambda r: _trades_in(r) >= 1_000, within=60)
        first.send_signal(signal.SIGTERM)  # as Kubernetes stops a pod
        async with asyncio.timeout(15):
            assert await first.wait() == 0

        traded = sim.stats.trades_published
        await wait_for(lambda: sim.stats.trades_published > traded + 500)  # missed while down
        second = await _start(env)
        await collect(bootstrap, raw, lambda r: _trades_in(r) >= 3_000, within=60)
        second.kill()  # kill -9 mid-stream: no flush, no goodbye
        await second.wait()

        traded = sim.stats.trades_published
        await wait_for(lambda: sim.stats.trades_published > traded + 500)
        third = await _start(env)
        try:
            await wait_for(lambda: sim.stats.trades_published > traded + 1_500)
            marks = checkpoint(sim)
            records = await collect(bootstrap, raw, contains(marks), within=60)
        finally:
            third.send_signal(signal.SIGTERM)
            await third.wait()

    assert_exactly_once(records, sim, marks)
    backfilled = [r for r in records if dict(r.headers).get("backfill") == b"true"]
    assert len(backfilled) >= 1_000  # both downtimes came back through REST
    body = orjson.loads(backfilled[0].value)
    assert "sequence" not in body and "open_24h" not in body  # REST lacks them: left out


@pytest.fixture
async def own_broker(tmp_path: Path) -> LocalKafka:
    broker = LocalKafka(home=tmp_path / "kafka", port=free_port(), controller_port=free_port())
    await asyncio.to_thread(broker.start)
    try:
        await broker.wait_ready(within=120)
        yield broker  # type: ignore[misc]
    finally:
        await asyncio.to_thread(broker.stop)


@pytest.mark.parametrize("feed", FEEDS)
async def test_kafka_broker_restart_mid_stream_is_exactly_once(
    own_broker: LocalKafka, feed: str
) -> None:
    bootstrap = own_broker.bootstrap_servers
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    await ensure_topics(settings, [TopicSpec(name="btc_usd"), TopicSpec(name="btc_usd_dlq")])
    config = SimConfig(
        port=0, products=("BTC-USD", "ETH-USD"), seed=9, rate=400, await_subscribers=2
    )
    async with SimServer(config) as sim:
        ingestor = Ingestor(ingestor_settings(bootstrap, sim, "btc_usd", "btc_usd_dlq", feed))
        async with running(ingestor):
            await collect(bootstrap, "btc_usd", lambda r: _trades_in(r) >= 1_000, within=60)
            assert await asyncio.to_thread(own_broker.stop) == "stopped"
            traded = sim.stats.trades_published
            await wait_for(lambda: sim.stats.trades_published > traded + 1_000)  # broker away
            await asyncio.to_thread(own_broker.start)
            await own_broker.wait_ready(within=120)
            traded = sim.stats.trades_published
            await wait_for(lambda: sim.stats.trades_published > traded + 1_000)
            marks = checkpoint(sim)
            records = await collect(bootstrap, "btc_usd", contains(marks), within=90)
    assert_exactly_once(records, sim, marks)
