"""Both feeds at once, over TLS: one simulator (`--tls`, its generated CA trusted through the
`exchange.ca_file` setting), one ingestor reading the Exchange feed into one raw topic and
one reading the Advanced Trade feed into another. The two topics hold the same trades
(id, price, size, side, time) in the same order, and both equal the simulator's ground
truth; a fault on each feed's first socket changes nothing."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
from ingest_support import (
    assert_exactly_once,
    checkpoint,
    collect,
    contains,
    ingestor_settings,
    running,
    wait_for,
)

from cryptopipeline.core import KafkaSettings, TopicSpec, ensure_topics
from cryptopipeline.ingestor.service import Ingestor
from cryptopipeline.sim._config import SimConfig
from cryptopipeline.sim._faults import FaultPlan
from cryptopipeline.sim._server import SimServer

pytestmark = pytest.mark.kafka

_COMMON = ("product_id", "trade_id", "price", "last_size", "side", "time")


def _trades(records: list[object]) -> list[tuple[object, ...]]:
    out = []
    for record in records:
        body = orjson.loads(record.value or b"{}")  # type: ignore[attr-defined]
        if body.get("type") == "ticker":
            out.append(tuple(body[key] for key in _COMMON))
    return out


async def test_exchange_and_advanced_trade_topics_hold_the_same_trades(
    kafka_settings: KafkaSettings,
) -> None:
    bootstrap = kafka_settings.bootstrap_servers
    suffix = uuid.uuid4().hex[:8]
    topics = {feed: (f"raw_{feed}_{suffix}", f"dlq_{feed}_{suffix}") for feed in ("ex", "at")}
    await ensure_topics(
        kafka_settings, [TopicSpec(name=name) for pair in topics.values() for name in pair]
    )
    config = SimConfig(
        port=0, products=("BTC-USD", "ETH-USD"), seed=23, rate=200, await_subscribers=4, tls=True
    )
    async with SimServer(config) as sim:
        assert sim.ws_url.startswith("wss://") and sim.http_url.startswith("https://")
        exchange = Ingestor(ingestor_settings(bootstrap, sim, *topics["ex"], "exchange"))
        advanced = Ingestor(ingestor_settings(bootstrap, sim, *topics["at"], "advanced-trade"))
        async with running(exchange), running(advanced):
            await wait_for(lambda: sim.stats.trades_published > 1_000)
            # connection indices are shared by both feeds: 0 and 1 are whichever came first
            sim.set_faults(FaultPlan(drop_rate=0.02, duplicate_rate=0.02, connections=(0, 2)))
            await wait_for(lambda: sim.stats.trades_published > 3_000)
            sim.set_faults(FaultPlan())
            await wait_for(lambda: sim.stats.trades_published > 4_000)
            marks = checkpoint(sim)
            ex_records, at_records = await asyncio.gather(
                collect(bootstrap, topics["ex"][0], contains(marks)),
                collect(bootstrap, topics["at"][0], contains(marks)),
            )
    assert sim.stats.frames_dropped > 0
    assert_exactly_once(ex_records, sim, marks)
    assert_exactly_once(at_records, sim, marks)
    ex_trades, at_trades = _trades(ex_records), _trades(at_records)
    for product, mark in marks.items():
        ex_of = [t for t in ex_trades if t[0] == product]
        at_of = [t for t in at_trades if t[0] == product]
        ex_of = ex_of[: [t[1] for t in ex_of].index(mark) + 1]
        at_of = at_of[: [t[1] for t in at_of].index(mark) + 1]
        assert ex_of == at_of, f"{product}: the feeds disagree"
        assert len(ex_of) > 500
