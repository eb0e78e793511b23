"""Chaos with forged input (issue 17): during a live run with lost, repeated and garbled
frames and sockets closed under it, the exchange feed also carries a trade id 10^9 ahead and
heartbeats dated 2100 and claiming a trade 10^9 ahead. Ingestion of that product goes on
exactly once (the simulator's ground truth is the judge), the forged frames are in the
dead-letter topic, and readiness never reports the product stuck."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from ingest_support import (
    assert_exactly_once,
    checkpoint,
    collect,
    contains,
    ingestor_settings,
    metric_total,
    running,
    wait_for,
)
from test_hostile_frames import YEAR_2100_TIME, forged_heartbeat, forged_ticker, last_id

from cryptopipeline.core import KafkaSettings
from cryptopipeline.ingestor.service import Ingestor
from cryptopipeline.sim._config import SimConfig
from cryptopipeline.sim._faults import FaultPlan
from cryptopipeline.sim._server import SimServer

pytestmark = pytest.mark.kafka

TRADES = 20_000


async def test_forged_ids_and_times_in_a_faulty_live_run_change_nothing(
    kafka_settings: KafkaSettings, raw_topics: tuple[str, str]
) -> None:
    raw, dlq = raw_topics
    bootstrap = kafka_settings.bootstrap_servers
    config = SimConfig(
        port=0, products=("BTC-USD", "ETH-USD"), seed=17, rate=1_500, await_subscribers=2
    )
    async with SimServer(config) as sim:
        ingestor = Ingestor(ingestor_settings(bootstrap, sim, raw, dlq))
        verdicts: list[tuple[bool, list[str]]] = []

        async def watch_readiness() -> None:
            while True:
                ok, detail = ingestor.ready()
                verdicts.append((ok, detail["stuck_products"]))
                await asyncio.sleep(0.1)  # sampling, not synchronisation

        async with running(ingestor), asyncio.TaskGroup() as group:
            watcher = group.create_task(watch_readiness())
            await wait_for(lambda: ingestor.ready()[0] and sim.stats.trades_published > 500)
            sim.set_faults(
                FaultPlan(
                    drop_rate=0.01, duplicate_rate=0.01, malformed_rate=0.002,
                    close_every_seconds=1.5, connections=(0,),
                )
            )  # fmt: skip
            await wait_for(lambda: sim.stats.trades_published > 4_000)
            forged_at = time.time_ns() // 1_000_000
            ahead = last_id(sim, "BTC-USD") + 10**9
            sim.feed.inject("ticker", "BTC-USD", forged_ticker("BTC-USD", ahead))
            await wait_for(lambda: sim.stats.trades_published > 6_000)
            sim.feed.inject(
                "heartbeat", "BTC-USD",
                forged_heartbeat("BTC-USD", last_id(sim, "BTC-USD"), YEAR_2100_TIME),
            )  # fmt: skip
            sim.feed.inject("heartbeat", "BTC-USD", forged_heartbeat("BTC-USD", ahead + 7))
            await wait_for(lambda: sim.stats.trades_published > 12_000)
            sim.set_faults(FaultPlan())
            await wait_for(lambda: sim.stats.trades_published > TRADES)
            marks = checkpoint(sim)
            records = await collect(bootstrap, raw, contains(marks))
            await wait_for(lambda: ingestor.ready()[0])
            watcher.cancel()
            dead = await collect(
                bootstrap, dlq,
                lambda r: len(r) >= 3 + sim.stats.frames_malformed, within=60,
            )  # fmt: skip
            registry = ingestor.metrics.registry
            assert metric_total(registry, "cryptopipeline_ingestor_implausible_trade_ids") == 2

    assert_exactly_once(records, sim, marks)
    reasons = [dict(r.headers)["reason"] for r in dead]
    assert reasons.count(b"implausible_trade_id") == 2
    assert reasons.count(b"event_time") == 1
    assert reasons.count(b"malformed_json") == sim.stats.frames_malformed
    # the forged ids never reached the raw topic, and BTC-USD heartbeats kept coming
    assert not any(str(ahead).encode() in r.value for r in records)
    beats_after = [
        r for r in records
        if r.timestamp > forged_at and b'"heartbeat"' in r.value and b"BTC-USD" in r.value
    ]  # fmt: skip
    assert len(beats_after) >= 2
    assert all(orjson.loads(r.value)["last_trade_id"] < ahead for r in beats_after)
    # readiness: sampled all along, the product was never stuck
    assert verdicts and not any(stuck for _, stuck in verdicts)
