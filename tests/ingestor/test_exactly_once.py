"""Promise 1 against the real broker and the simulator: every trade exactly once, in order,
through dropped, duplicated and malformed frames, socket closes and stalls, on both feeds
with the same fault schedule.

The Advanced Trade run trades 400 a second per product, not 2,500: its REST backfill pages
back by whole seconds at most 1,000 trades a page (docs/ingestor.md), so a second holding
more trades of one product than a page cannot be backfilled past."""

from __future__ import annotations

import pytest
from ingest_support import (
    FEEDS,
    assert_exactly_once,
    checkpoint,
    collect,
    contains,
    ground_truth,
    ingestor_settings,
    metric_total,
    running,
    wait_for,
)

from cryptopipeline.core import KafkaSettings
from cryptopipeline.ingestor.service import Ingestor
from cryptopipeline.sim._config import SimConfig
from cryptopipeline.sim._faults import FaultPlan
from cryptopipeline.sim._server import SimServer

pytestmark = pytest.mark.kafka

RATE = {"exchange": 2_500, "advanced-trade": 400}
TRADES = {"exchange": 50_000, "advanced-trade": 16_000}


@pytest.mark.parametrize("feed", FEEDS)
async def test_every_trade_exactly_once_through_faults(
    kafka_settings: KafkaSettings, raw_topics: tuple[str, str], feed: str
) -> None:
    raw, dlq = raw_topics
    bootstrap = kafka_settings.bootstrap_servers
    trades = TRADES[feed]
    config = SimConfig(
        port=0, products=("BTC-USD", "ETH-USD"), seed=11, rate=RATE[feed], await_subscribers=2
    )
    async with SimServer(config) as sim:
        ingestor = Ingestor(ingestor_settings(bootstrap, sim, raw, dlq, feed))
        async with running(ingestor):
            published_trades = "cryptopipeline_ingestor_records_published"

            def traded(n: int) -> bool:
                return sim.stats.trades_published >= n

            await wait_for(lambda: metric_total(ingestor.metrics.registry, published_trades) > 100)
            # 1. one connection loses 1%, repeats 1% and garbles 0.5% of its frames
            sim.set_faults(
                FaultPlan(
                    drop_rate=0.01, duplicate_rate=0.01, malformed_rate=0.005, connections=(0,)
                )
            )
            await wait_for(lambda: traded(trades * 3 // 10))
            # 2. every socket is closed 0.4 s after it connects, and repeats and garbles frames
            sim.set_faults(
                FaultPlan(close_every_seconds=0.4, duplicate_rate=0.01, malformed_rate=0.005)
            )
            await wait_for(lambda: sim.stats.fault_closes >= 20 and traded(trades * 6 // 10))
            # 3. every socket goes silent 0.5 s after connecting, for longer than the liveness limit
            sim.set_faults(FaultPlan(stall_seconds=3.0, stall_every_seconds=0.5))
            await wait_for(lambda: sim.stats.fault_stalls >= 2 and traded(trades * 76 // 100))
            # 4. faults off; check up to the trades the market had made by then
            sim.set_faults(FaultPlan())
            await wait_for(lambda: traded(trades))
            marks = checkpoint(sim)
            records = await collect(bootstrap, raw, contains(marks))
            dead = await collect(
                bootstrap, dlq, lambda r: len(r) >= sim.stats.frames_malformed, within=30
            )

        assert sum(ids.index(marks[p]) + 1 for p, ids in ground_truth(sim).items()) >= trades
        assert sim.stats.fault_closes >= 20
        assert sim.stats.frames_dropped > 0 and sim.stats.frames_duplicated > 0
        assert_exactly_once(records, sim, marks)
        # every garbled frame is in the dead-letter topic with its reason
        assert len(dead) == sim.stats.frames_malformed > 0
        assert {dict(r.headers)["reason"] for r in dead} == {b"malformed_json"}
        registry = ingestor.metrics.registry
        repeated = sum(
            sample.value
            for family in registry.collect()
            for sample in family.samples
            if sample.name == "cryptopipeline_ingestor_messages_received_total"
            and sample.labels["type"] == "repeated"
        )
        assert repeated > 0  # copies dropped before decoding (other socket; repeated sequence_num)
        assert metric_total(registry, "cryptopipeline_ingestor_reconnects") >= 20
        assert metric_total(registry, "cryptopipeline_ingestor_gaps") > 0
