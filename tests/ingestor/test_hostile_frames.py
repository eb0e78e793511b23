"""Single crafted frames against the real broker and the simulator (issue 17, breaks 1-5):
each one is dead-lettered with its reason, the ingestor never restarts or crashes, and every
trade of every product still lands exactly once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from ingest_support import (
    Records,
    assert_exactly_once,
    checkpoint,
    collect,
    contains,
    ingestor_settings,
    metric_total,
    running,
    trade_ids_by_product,
    wait_for,
)

from cryptopipeline.coinbase import format_time, parse_time
from cryptopipeline.coinbase._time import to_micros
from cryptopipeline.core import KafkaSettings, TopicSpec, ensure_topics
from cryptopipeline.ingestor.service import Ingestor
from cryptopipeline.sim._config import SimConfig
from cryptopipeline.sim._server import SimServer

pytestmark = pytest.mark.kafka

PRODUCTS = ("BTC-USD", "ETH-USD")
YEAR_2100_TIME = "2100-01-01T00:00:00.000000Z"
RECORDING = Path(__file__).resolve().parents[2].parent / "shared/data/coinbase/matches-1.jsonl"


def forged_ticker(product: str, trade_id: int, **fields: Any) -> bytes:
    body = {
        "type": "ticker", "sequence": 1, "product_id": product, "price": "100.5",
        "best_bid": "100.4", "best_ask": "100.5", "side": "buy",
        "time": format_time(time.time_ns() // 1000), "trade_id": trade_id, "last_size": "0.1",
    }  # fmt: skip
    return orjson.dumps(body | fields)


def forged_heartbeat(product: str, last_trade_id: int, moment: str | None = None) -> bytes:
    when = moment or format_time(time.time_ns() // 1000)
    body = {"type": "heartbeat", "sequence": 1, "last_trade_id": last_trade_id,
            "product_id": product, "time": when}  # fmt: skip
    return orjson.dumps(body)


def gauge(ingestor: Ingestor, name: str, product: str) -> float:
    return sum(
        sample.value
        for family in ingestor.metrics.registry.collect()
        for sample in family.samples
        if sample.name == name and sample.labels.get("product") == product
    )


def reasons(records: Records) -> list[str]:
    return sorted(dict(r.headers)["reason"].decode() for r in records)


def last_id(sim: SimServer, product: str) -> int:
    trade = sim.ledger.last_trade(product)
    assert trade is not None
    return trade.trade_id


async def _settle_exactly_once(sim: SimServer, bootstrap: str, raw: str, more: int) -> Records:
    """Let the market make `more` trades, then check the log against the ground truth."""
    target = sim.stats.trades_published + more
    await wait_for(lambda: sim.stats.trades_published >= target)
    marks = checkpoint(sim)
    records = await collect(bootstrap, raw, contains(marks), within=90)
    assert_exactly_once(records, sim, marks)
    return records


def _steady(ingestor: Ingestor) -> None:
    """Nothing restarted the session: no Kafka failure, one session, still ready."""
    registry = ingestor.metrics.registry
    assert metric_total(registry, "cryptopipeline_ingestor_kafka_failures") == 0
    assert ingestor.live()[1]["sessions"] == 1
    ok, detail = ingestor.ready()
    assert ok, detail
    assert detail["stuck_products"] == []


async def test_forged_ids_times_and_decimals_are_dead_lettered_and_change_nothing(
    kafka_settings: KafkaSettings, raw_topics: tuple[str, str]
) -> None:
    """Breaks 2, 3, 4 and 5: a trade id 10^9 ahead, a heartbeat last_trade_id 10^9 ahead,
    a heartbeat dated 2100 and an sNaN best bid, all for BTC-USD."""
    raw, dlq = raw_topics
    bootstrap = kafka_settings.bootstrap_servers
    config = SimConfig(port=0, products=PRODUCTS, seed=3, rate=100, await_subscribers=2)
    async with SimServer(config) as sim:
        ingestor = Ingestor(ingestor_settings(bootstrap, sim, raw, dlq))
        async with running(ingestor):
            await wait_for(lambda: ingestor.ready()[0] and sim.stats.trades_published > 200)
            now = last_id(sim, "BTC-USD")
            injected = time.time_ns() // 1_000_000
            feed = sim.feed
            assert feed.inject("ticker", "BTC-USD", forged_ticker("BTC-USD", now + 10**9))
            feed.inject("heartbeat", "BTC-USD", forged_heartbeat("BTC-USD", now + 10**9))
            feed.inject("heartbeat", "BTC-USD", forged_heartbeat("BTC-USD", now, YEAR_2100_TIME))
            feed.inject("ticker", "BTC-USD", forged_ticker("BTC-USD", now + 5, best_bid="sNaN"))
            records = await _settle_exactly_once(sim, bootstrap, raw, 2_000)
            dead = await collect(bootstrap, dlq, lambda r: len(r) >= 4, within=30)
            _steady(ingestor)
            registry = ingestor.metrics.registry
            assert metric_total(registry, "cryptopipeline_ingestor_implausible_trade_ids") == 2

    assert reasons(dead) == sorted(
        ["implausible_trade_id", "implausible_trade_id", "event_time", "invalid_field"]
    )
    for record in dead:
        assert dict(record.headers)["truncated"] == b"false"
    # heartbeats of BTC-USD kept flowing after the one dated 2100 (break 4)
    later_heartbeats = [
        r for r in records
        if r.timestamp > injected and b'"heartbeat"' in r.value and b"BTC-USD" in r.value
    ]  # fmt: skip
    assert later_heartbeats
    assert all(r.timestamp < injected + 3_600_000 for r in records)


async def test_a_1_mib_frame_resets_one_socket_and_is_reported(
    kafka_settings: KafkaSettings, raw_topics: tuple[str, str]
) -> None:
    """Break 1, default limit: the WebSocket layer refuses the frame at `max_frame_bytes`;
    the connection is reset, the refusal is dead-lettered and the gap backfilled."""
    raw, dlq = raw_topics
    bootstrap = kafka_settings.bootstrap_servers
    config = SimConfig(port=0, products=PRODUCTS, seed=4, rate=100, await_subscribers=2)
    async with SimServer(config) as sim:
        ingestor = Ingestor(ingestor_settings(bootstrap, sim, raw, dlq))
        async with running(ingestor):
            await wait_for(lambda: ingestor.ready()[0] and sim.stats.trades_published > 200)
            huge = forged_ticker("BTC-USD", 1, note="x" * (1 << 20))
            assert sim.feed.inject("ticker", "BTC-USD", huge) == 2
            dead = await collect(bootstrap, dlq, lambda r: len(r) >= 2, within=30)
            await _settle_exactly_once(sim, bootstrap, raw, 1_000)
            await wait_for(lambda: ingestor.ready()[0])
            _steady(ingestor)
    assert reasons(dead) == ["oversized", "oversized"]  # one per socket
    for record in dead:
        headers = dict(record.headers)
        assert record.value == b"" and b"max_frame_bytes" in headers["detail"]


async def test_a_1_mib_frame_under_a_larger_limit_is_dead_lettered_truncated(
    kafka_settings: KafkaSettings, raw_topics: tuple[str, str]
) -> None:
    """Break 1 as reported: frames up to 2 MiB allowed; the 1 MiB dead letter used to exceed
    Kafka's request size and crash the ingestor. Now it is cut, and its headers say so."""
    raw, dlq = raw_topics
    bootstrap = kafka_settings.bootstrap_servers
    config = SimConfig(port=0, products=PRODUCTS, seed=5, rate=100, await_subscribers=2)
    async with SimServer(config) as sim:
        settings = ingestor_settings(bootstrap, sim, raw, dlq, max_frame_bytes=2 << 20)
        ingestor = Ingestor(settings)
        async with running(ingestor):
            await wait_for(lambda: ingestor.ready()[0] and sim.stats.trades_published > 200)
            huge = b'{"type":"ticker","product_id":"BTC-USD","note":"' + b"x" * (1 << 20) + b'"}'
            sim.feed.inject("ticker", "BTC-USD", huge)
            dead = await collect(bootstrap, dlq, lambda r: len(r) >= 1, within=30)
            await _settle_exactly_once(sim, bootstrap, raw, 1_000)
            _steady(ingestor)
    (record,) = dead
    headers = dict(record.headers)
    assert headers["reason"] == b"invalid_field"
    assert headers["truncated"] == b"true"
    assert headers["original_bytes"] == str(len(huge)).encode()
    assert record.value == huge[: settings.ingest.dead_letter_max_bytes]


async def test_a_record_kafka_refuses_is_dead_lettered_without_a_restart_loop(
    kafka_settings: KafkaSettings,
) -> None:
    """A topic allowing only 60 s of future: a heartbeat 200 s ahead passes the edge (300 s)
    but Kafka refuses it (InvalidTimestampError). It goes to the DLQ; the session restarts
    once (the idempotent producer cannot go on), never in a loop, and the trades that rode
    in the refused batch are backfilled: still exactly once."""
    suffix = str(time.time_ns())
    raw, dlq = f"raw_strict_{suffix}", f"dlq_strict_{suffix}"
    strict = {"message.timestamp.after.max.ms": "60000"}
    await ensure_topics(
        kafka_settings, [TopicSpec(name=raw, extra_config=strict), TopicSpec(name=dlq)]
    )
    bootstrap = kafka_settings.bootstrap_servers
    config = SimConfig(port=0, products=PRODUCTS, seed=6, rate=50, await_subscribers=2)
    async with SimServer(config) as sim:
        ingestor = Ingestor(ingestor_settings(bootstrap, sim, raw, dlq))
        async with running(ingestor):
            await wait_for(lambda: ingestor.ready()[0] and sim.stats.trades_published > 100)
            ahead = format_time(time.time_ns() // 1000 + 200_000_000)
            forged = forged_heartbeat("BTC-USD", last_id(sim, "BTC-USD"), ahead)
            sim.feed.inject("heartbeat", "BTC-USD", forged)
            dead = await collect(bootstrap, dlq, lambda r: len(r) >= 1, within=60)
            records = await _settle_exactly_once(sim, bootstrap, raw, 1_000)
            await wait_for(lambda: ingestor.ready()[0])
            registry = ingestor.metrics.registry
            assert metric_total(registry, "cryptopipeline_ingestor_kafka_refused") >= 1
            assert metric_total(registry, "cryptopipeline_ingestor_kafka_failures") <= 1
            assert ingestor.live()[1]["sessions"] <= 2
    assert [dict(r.headers)["reason"] for r in dead] == [b"kafka_refused"]
    assert dead[0].value == forged
    assert b"InvalidTimestamp" in dict(dead[0].headers)["detail"]
    assert not any(r.value == forged for r in records)


async def test_a_forged_id_already_in_the_log_makes_the_product_unready(
    kafka_settings: KafkaSettings, raw_topics: tuple[str, str]
) -> None:
    """A log written before this fix may hold a forged id: every real trade is then older.
    The ingestor cannot un-publish it, but it must say the product is stuck (503)."""
    raw, dlq = raw_topics
    bootstrap = kafka_settings.bootstrap_servers
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(raw, forged_ticker("BTC-USD", 10**12), key=b"BTC-USD")
    finally:
        await producer.stop()
    config = SimConfig(port=0, products=PRODUCTS, seed=8, rate=50, await_subscribers=2)
    async with SimServer(config) as sim:
        settings = ingestor_settings(bootstrap, sim, raw, dlq, stuck_after_s=1.0)
        ingestor = Ingestor(settings)
        async with running(ingestor):
            await wait_for(lambda: ingestor.ready()[1]["stuck_products"] == ["BTC-USD"])
            assert not ingestor.ready()[0]
            stuck_gauge = "cryptopipeline_ingestor_product_stuck"
            await wait_for(lambda: gauge(ingestor, stuck_gauge, "BTC-USD") == 1)
            assert gauge(ingestor, stuck_gauge, "ETH-USD") == 0
            await _settle_exactly_once_for(sim, bootstrap, raw, "ETH-USD")


async def _settle_exactly_once_for(sim: SimServer, bootstrap: str, raw: str, product: str) -> None:
    target = sim.stats.trades_published + 200
    await wait_for(lambda: sim.stats.trades_published >= target)
    marks = {product: checkpoint(sim)[product]}
    records = await collect(bootstrap, raw, contains(marks), within=90)
    got = [
        orjson.loads(r.value)["trade_id"]
        for r in records
        if b'"ticker"' in r.value and product.encode() in r.value
    ]
    truth = [t.trade_id for t in sim.ledger.trades(product)]
    upto = truth[: truth.index(marks[product]) + 1]
    assert got[: len(upto)] == upto


async def test_a_max_speed_simulator_run_lands_whole_in_a_strict_topic(
    kafka_settings: KafkaSettings,
) -> None:
    """Break 9: `coinbase-sim --speed max` used to run its event time ahead of the broker's
    clock until Kafka refused the records. 3,000 trades at 1 a second per product span 1,500 s
    of event time; the topic here refuses anything over 60 s ahead. All of them land."""
    suffix = str(time.time_ns())
    raw, dlq = f"raw_max_{suffix}", f"dlq_max_{suffix}"
    strict = {"message.timestamp.after.max.ms": "60000"}
    await ensure_topics(
        kafka_settings, [TopicSpec(name=raw, extra_config=strict), TopicSpec(name=dlq)]
    )
    bootstrap = kafka_settings.bootstrap_servers
    config = SimConfig(
        port=0, products=PRODUCTS, seed=9, rate=1, speed=0, max_trades=3_000, await_subscribers=2
    )
    async with SimServer(config) as sim:
        ingestor = Ingestor(ingestor_settings(bootstrap, sim, raw, dlq))
        async with running(ingestor):
            await sim.market_done.wait()
            marks = checkpoint(sim)
            records = await collect(bootstrap, raw, contains(marks), within=120)
            _steady(ingestor)
            registry = ingestor.metrics.registry
            assert metric_total(registry, "cryptopipeline_ingestor_dead_letters") == 0
    assert_exactly_once(records, sim, marks)
    assert sum(len(ids) for ids in trade_ids_by_product(records).values()) == 3_000


async def test_a_replay_of_old_recorded_trades_keeps_their_times(
    kafka_settings: KafkaSettings, raw_topics: tuple[str, str]
) -> None:
    """Break 9, the replay case: recorded (past) exchange times pass the edge and become the
    records' timestamps; only the future is bounded."""
    recording = RECORDING
    if not recording.exists():
        pytest.skip(f"recorded data not found at {recording}")
    recorded = [orjson.loads(line) for line in recording.read_bytes().splitlines() if line]
    matches = [m for m in recorded if m.get("type") == "match"]
    raw, dlq = raw_topics
    bootstrap = kafka_settings.bootstrap_servers
    config = SimConfig(port=0, replay=recording, speed=0, await_subscribers=2)
    async with SimServer(config) as sim:
        settings = ingestor_settings(bootstrap, sim, raw, dlq)
        settings.exchange.channels = ["matches", "heartbeat"]
        settings.exchange.products = ["BTC-USD"]  # the recording's only product
        ingestor = Ingestor(settings)
        async with running(ingestor):
            last = matches[-1]["trade_id"]
            records = await collect(
                bootstrap,
                raw,
                lambda r: last in trade_ids_by_product(r, "match").get("BTC-USD", []),
            )
            assert (
                metric_total(ingestor.metrics.registry, "cryptopipeline_ingestor_dead_letters") == 0
            )
    published = [r for r in records if b'"type":"match"' in r.value]
    assert [orjson.loads(r.value)["trade_id"] for r in published] == [
        m["trade_id"] for m in matches
    ]
    expected = [to_micros(parse_time(m["time"])) // 1000 for m in matches]
    assert [r.timestamp for r in published] == expected
