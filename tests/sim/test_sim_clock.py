"""Issue 17, break 9: the simulator never dates an event after its own wall clock, so a
max-speed run stays inside what Kafka accepts (`message.timestamp.after.max.ms`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sim_helpers import feed_client, receive, subscribe

from cryptopipeline.coinbase import parse_time
from cryptopipeline.coinbase._time import to_micros
from cryptopipeline.sim import SimConfig, SimServer
from cryptopipeline.sim._server import default_start

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_real_time_starts_now_and_faster_markets_start_in_the_past() -> None:
    assert default_start(SimConfig(speed=1), NOW) == NOW
    assert default_start(SimConfig(speed=0.5), NOW) == NOW
    assert default_start(SimConfig(speed=0), NOW) == NOW - timedelta(days=1)
    assert default_start(SimConfig(speed=10), NOW) == NOW - timedelta(days=1)
    # 10 million trades of 2 products at 5 a second: 1e6 s; twice that lead
    big = SimConfig(speed=0, max_trades=10_000_000, rate=5, products="BTC-USD,ETH-USD")
    assert default_start(big, NOW) == NOW - timedelta(seconds=2_000_000)


async def test_max_speed_events_are_never_dated_after_the_wall_clock() -> None:
    """A market that starts 2 s from now at max speed: it waits for the wall clock instead
    of running ahead of it (the event stream itself is unchanged)."""
    start = datetime.now(UTC) + timedelta(seconds=2)
    config = SimConfig(port=0, speed=0, rate=50, products=("BTC-USD",), start_time=start,
                       max_trades=200, seed=2)  # fmt: skip
    async with SimServer(config) as server, feed_client(server) as ws:
        await subscribe(ws, ["ticker", "heartbeat"], ["BTC-USD"])
        seen = 0
        while seen < 150:
            message = await receive(ws)
            received_us = time.time_ns() // 1000
            assert to_micros(parse_time(message["time"])) <= received_us, message
            seen += message["type"] == "ticker"


async def test_max_speed_without_a_start_time_runs_behind_the_wall_clock() -> None:
    config = SimConfig(port=0, speed=0, rate=5, products=("BTC-USD", "ETH-USD"),
                       max_trades=20_000, seed=2)  # fmt: skip
    async with SimServer(config) as server:
        await server.market_done.wait()
        last = max(parse_time(server.ledger.trades(p)[-1].time) for p in ("BTC-USD", "ETH-USD"))
    assert server.stats.trades_published == 20_000
    assert last <= datetime.now(UTC)  # 2,000 s of event time, and all of it already past
