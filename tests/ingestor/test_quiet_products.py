"""Quiet products and the stuck check: a product trading once a minute is not stuck because
its next trade waits a moment behind a gap; one whose trades keep arriving for
`stuck_after_s` with none released is."""

from __future__ import annotations

import time

import orjson
import pytest
from ingest_support import ingestor_settings, running, wait_for

from cryptopipeline.coinbase import format_time
from cryptopipeline.core import KafkaSettings
from cryptopipeline.ingestor._decode import TradeFrame, decode
from cryptopipeline.ingestor.service import Ingestor
from cryptopipeline.sim._config import SimConfig
from cryptopipeline.sim._server import SimServer

pytestmark = pytest.mark.kafka

QUIET = "ETH-USD"


def _trade(trade_id: int) -> TradeFrame:
    body = {
        "type": "ticker", "sequence": trade_id, "product_id": QUIET, "price": "100.5",
        "best_bid": "100.4", "best_ask": "100.5", "side": "buy",
        "time": format_time(time.time_ns() // 1000), "trade_id": trade_id, "last_size": "0.1",
    }  # fmt: skip
    frame = decode(orjson.dumps(body).decode(), frozenset({QUIET}), 64 * 1024)
    assert isinstance(frame, TradeFrame), frame
    return frame


async def test_a_quiet_products_trade_held_by_a_gap_is_not_stuck(
    kafka_settings: KafkaSettings, raw_topics: tuple[str, str]
) -> None:
    raw, dlq = raw_topics
    # ETH-USD never trades on its own here: its trades are the ones this test hands over
    config = SimConfig(port=0, products=("BTC-USD", QUIET), rate=20, rates={QUIET: 1e-6},
                       await_subscribers=2)  # fmt: skip
    async with SimServer(config) as sim:
        settings = ingestor_settings(kafka_settings.bootstrap_servers, sim, raw, dlq,
                                     stuck_after_s=1.0)  # fmt: skip
        ingestor = Ingestor(settings)
        async with running(ingestor):
            await wait_for(lambda: ingestor.ready()[0])
            now = time.time_ns()
            # No awaits below: the gap worker cannot fill or skip the gap in between.
            ingestor.accept(_trade(1000), 0, now - 60 * 10**9)  # a minute ago, published
            ingestor.accept(_trade(1002), 0, now)  # 1001 is missing: 1002 waits
            assert QUIET not in ingestor.ready()[1]["stuck_products"], (
                "a trade that has waited no time is not a stuck product, however long the "
                "product was quiet before it"
            )
            ingestor.accept(_trade(1003), 0, now + 2 * 10**9)  # still waiting, 2 s later
            assert QUIET in ingestor.ready()[1]["stuck_products"], (
                "trades kept arriving for longer than stuck_after_s and none was released"
            )
            ingestor.accept(_trade(1001), 0, now + 2 * 10**9)  # the gap closes: all go out
            assert QUIET not in ingestor.ready()[1]["stuck_products"]
            assert ingestor.ready()[0]
