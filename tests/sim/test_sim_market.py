"""The market as a client sees it: contiguous trade ids, skipping sequences, sides, pacing,
determinism and the ground truth (HTTP and file) matching what a fault-free client received."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sim_helpers import SimFactory, collect_until, feed_client, http, subscribe

from cryptopipeline.coinbase import parse_time
from cryptopipeline.sim import SimConfig, SimServer

PRODUCTS = ["BTC-USD", "ETH-USD"]


async def _everything(server: SimServer, ws: Any) -> list[dict[str, Any]]:
    """After the market is done, receive until the last trade of every product arrived."""
    await server.market_done.wait()
    last = {p: server.ledger.last_trade(p) for p in PRODUCTS}
    pending = {(p, t.trade_id) for p, t in last.items() if t is not None}
    pending_ticker, pending_match = set(pending), set(pending)

    def done(message: dict[str, Any]) -> bool:
        key = (message.get("product_id"), message.get("trade_id"))
        if message["type"] == "ticker":
            pending_ticker.discard(key)
        elif message["type"] == "match":
            pending_match.discard(key)
        return not pending_ticker and not pending_match

    return await collect_until(ws, done)


async def test_feed_is_complete_contiguous_and_consistent(sim: SimFactory) -> None:
    async with (
        sim(max_trades=3000, rate=50, await_subscribers=1) as server,
        feed_client(server) as ws,
    ):
        await subscribe(ws, ["ticker", "matches", "heartbeat"], PRODUCTS)
        messages = await _everything(server, ws)
        _, _, truth = await http(server, "/sim/trades")

    tickers = [m for m in messages if m["type"] == "ticker"]
    matches = [m for m in messages if m["type"] == "match"]
    heartbeats = [m for m in messages if m["type"] == "heartbeat"]
    assert len(tickers) == len(matches) == len(truth) == 3000
    for product in PRODUCTS:
        ids = [m["trade_id"] for m in tickers if m["product_id"] == product]
        assert ids == list(range(ids[0], ids[0] + len(ids))), "trade_id is +1 per trade"
        sequences = [m["sequence"] for m in tickers if m["product_id"] == product]
        steps = [b - a for a, b in itertools.pairwise(sequences)]
        assert min(steps) >= 1 and max(steps) > 1, "sequence increases and skips on ticker"
        times = [parse_time(m["time"]) for m in tickers if m["product_id"] == product]
        assert times == sorted(times)
    # ticker and match of one trade share sequence, price, size; sides are opposite.
    match_of = {(m["product_id"], m["trade_id"]): m for m in matches}
    for ticker in tickers:
        match = match_of[(ticker["product_id"], ticker["trade_id"])]
        assert match["sequence"] == ticker["sequence"]
        assert (match["price"], match["size"], match["time"]) == (
            ticker["price"],
            ticker["last_size"],
            ticker["time"],
        )
        assert {match["side"], ticker["side"]} == {"buy", "sell"}
    # Ground truth = what a fault-free client received.
    assert [(t["product_id"], t["trade_id"]) for t in truth] == [
        (p, m["trade_id"]) for p in PRODUCTS for m in tickers if m["product_id"] == p
    ]
    received = {(m["product_id"], m["trade_id"]): m for m in tickers}
    for record in truth:
        ticker = received[(record["product_id"], record["trade_id"])]
        assert (record["price"], record["size"], record["time"], record["taker_side"]) == (
            ticker["price"],
            ticker["last_size"],
            ticker["time"],
            ticker["side"],
        )
    # Heartbeats: once per simulated second per product, carrying the state of the moment.
    for product in PRODUCTS:
        beats = [h for h in heartbeats if h["product_id"] == product]
        assert len(beats) >= 25
        seconds = [parse_time(h["time"]).timestamp() for h in beats]
        assert all(b - a == 1 for a, b in itertools.pairwise(seconds))
        assert [h["last_trade_id"] for h in beats] == sorted(h["last_trade_id"] for h in beats)


async def _ground_truth(seed: int, tmp: Path, name: str) -> list[bytes]:
    path = tmp / name
    config = SimConfig(
        port=0, seed=seed, start_time=datetime(2026, 1, 1, tzinfo=UTC), speed=0, max_trades=500,
        ground_truth=path,
    )  # fmt: skip
    async with SimServer(config) as server:
        await server.market_done.wait()
    return path.read_bytes().splitlines()


async def test_same_seed_and_start_time_give_identical_trades(tmp_path: Path) -> None:
    first = await _ground_truth(3, tmp_path, "a.jsonl")
    second = await _ground_truth(3, tmp_path, "b.jsonl")
    other = await _ground_truth(4, tmp_path, "c.jsonl")
    assert len(first) == 500
    assert first == second
    assert first != other
    record = orjson.loads(first[0])
    assert list(record) == [
        "product_id", "trade_id", "time", "price", "size", "side", "taker_side", "sequence",
    ]  # fmt: skip


async def test_per_product_rates_make_busy_and_quiet_products(tmp_path: Path) -> None:
    """`rates` sets a product's own rate; the others keep `rate`, and their trades are the
    ones they have without `rates` (each product draws from its own generator)."""
    products = ("BTC-USD", "ETH-USD", "SOL-USD")
    config = SimConfig(
        port=0, seed=3, start_time=datetime(2026, 1, 1, tzinfo=UTC), speed=0, max_trades=2000,
        products=products, rate=0.5, rates={"BTC-USD": 100, "ETH-USD": 10},
    )  # fmt: skip
    async with SimServer(config) as server:
        await server.market_done.wait()
        trades = {p: server.ledger.trades(p) for p in products}
    last = max(parse_time(t.time) for ts in trades.values() for t in ts)
    seconds = (last - datetime(2026, 1, 1, tzinfo=UTC)).total_seconds()
    observed = {p: len(ts) / seconds for p, ts in trades.items()}
    assert 85 < observed["BTC-USD"] < 115 and 7 < observed["ETH-USD"] < 13, observed
    assert observed["SOL-USD"] < 1.5, observed
    plain = SimConfig(**{**config.model_dump(), "rates": {}, "max_trades": 60})
    async with SimServer(plain) as server:
        await server.market_done.wait()
        alone = server.ledger.trades("SOL-USD")
    assert len(alone) >= len(trades["SOL-USD"]) > 3
    assert alone[: len(trades["SOL-USD"])] == trades["SOL-USD"]


async def test_paced_mode_follows_event_time(sim: SimFactory) -> None:
    """speed=20: one simulated second of heartbeats takes 50 ms of wall time."""
    async with sim(speed=20, rate=2, products=["BTC-USD"]) as server, feed_client(server) as ws:
        await subscribe(ws, ["heartbeat"], ["BTC-USD"])
        loop = asyncio.get_running_loop()
        started = loop.time()
        beats = await collect_until(
            ws, lambda m: m["type"] == "heartbeat" and m["time"].startswith("2026-01-01T00:00:10")
        )
        elapsed = loop.time() - started
    assert 0.3 < elapsed < 2.0, elapsed
    assert beats[-1]["time"] == "2026-01-01T00:00:10.000000Z"


async def test_slow_consumer_is_cut_off_in_paced_mode(sim: SimFactory) -> None:
    """A client that stops reading is closed once max_queue frames pile up; others go on."""
    async with (
        sim(speed=1000, rate=2000, max_queue=2000, high_water=100) as server,
        feed_client(server, max_queue=1, close_timeout=0.1) as slow,
        feed_client(server) as healthy,
    ):
        await subscribe(slow, ["ticker"], PRODUCTS)
        await subscribe(healthy, ["ticker"], PRODUCTS)
        slow.transport.pause_reading()
        async with asyncio.timeout(20):
            while server.stats.slow_consumer_closes == 0:
                await healthy.recv()
            assert server.stats.slow_consumer_closes == 1
            before = server.stats.trades_published
            while server.stats.trades_published < before + 100:
                await healthy.recv()


async def test_market_waits_for_n_subscribe_requests(sim: SimFactory) -> None:
    async with sim(max_trades=10, await_subscribers=2) as server, feed_client(server) as ws:
        await subscribe(ws, ["ticker", "matches", "heartbeat"], PRODUCTS)
        status, _, stats = await http(server, "/sim/stats")  # lets the loop run a while
        assert status == 200 and stats["trades_published"] == 0
        await subscribe(ws, ["ticker"], ["BTC-USD"])
        await server.market_done.wait()
        assert server.stats.trades_published == 10
