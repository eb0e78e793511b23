"""What operators see: probes, metrics, exchange errors in readiness, config errors."""

from __future__ import annotations

import asyncio
import os
import sys

import httpx
import pytest
from ingest_support import ingestor_settings, running, wait_for

from cryptopipeline.core import KafkaSettings
from cryptopipeline.ingestor.service import Ingestor
from cryptopipeline.sim._config import SimConfig
from cryptopipeline.sim._server import SimServer

pytestmark = pytest.mark.kafka


async def _get(port: int, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        return await client.get(path)


async def test_probes_and_metrics(
    kafka_settings: KafkaSettings, raw_topics: tuple[str, str]
) -> None:
    raw, dlq = raw_topics
    async with SimServer(SimConfig(port=0, products=("BTC-USD",), rate=50)) as sim:
        ingestor = Ingestor(ingestor_settings(kafka_settings.bootstrap_servers, sim, raw, dlq))
        async with running(ingestor):
            await wait_for(lambda: ingestor.ops is not None and ingestor.ready()[0])
            assert ingestor.ops is not None
            port = ingestor.ops.port
            assert (await _get(port, "/healthz")).status_code == 200
            ready = await _get(port, "/readyz")
            assert ready.status_code == 200
            assert ready.json()["subscribed_connections"] == [0, 1]
            await wait_for(lambda: sim.stats.trades_published > 20)
            metrics = (await _get(port, "/metrics")).text
            for name in (
                "cryptopipeline_ingestor_messages_received_total",
                "cryptopipeline_ingestor_records_published_total",
                "cryptopipeline_ingestor_produce_latency_seconds_bucket",
                "cryptopipeline_ingestor_buffered_records",
            ):
                assert name in metrics
            assert (await _get(port, "/nope")).status_code == 404
        assert not ingestor.ready()[0]  # stopped: no longer producing


async def test_an_exchange_error_makes_the_ingestor_unready(
    kafka_settings: KafkaSettings, raw_topics: tuple[str, str]
) -> None:
    raw, dlq = raw_topics
    async with SimServer(SimConfig(port=0, products=("BTC-USD",), rate=50)) as sim:
        settings = ingestor_settings(kafka_settings.bootstrap_servers, sim, raw, dlq)
        settings.exchange.products = ["DOGE-EUR"]  # a product this exchange does not list
        ingestor = Ingestor(settings)
        async with running(ingestor):
            await wait_for(lambda: ingestor.ready()[1]["last_exchange_error"] is not None)
            assert ingestor.ops is not None
            ready = await _get(ingestor.ops.port, "/readyz")
            assert ready.status_code == 503
            assert ready.json()["last_exchange_error"]["type"] == "error"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CRYPTOPIPELINE_EXCHANGE__CONNECTIONS", "zero", "valid integer"),
        ("CRYPTOPIPELINE_EXCHANGE__PRODUCTS", "btc", "not a product id like BTC-USD"),
        ("CRYPTOPIPELINE_EXCHANGE__CHANNELS", "ticker", "channels must include heartbeat"),
        ("CRYPTOPIPELINE_KAFKA__BOOTSTRAP_SERVERS", "kafka", "expected host:port"),
    ],
)
async def test_a_bad_setting_exits_2_naming_the_variable(
    variable: str, value: str, message: str
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cryptopipeline.ingestor.cli", env={**os.environ, variable: value},
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await process.communicate()
    assert process.returncode == 2
    text = stderr.decode()
    assert variable.rsplit("__", 1)[0] in text and message in text
    assert "Traceback" not in text
