"""Parity: the live pipeline on real Kafka and the backtest, on the same recorded Coinbase
session, give the same signal ids, the same orders and the same portfolio.

Live: coinbase-sim replays the recording, the ingestor publishes it into the raw topic, the
signaler and the bot (paper, `trading.clock=event`) run as the services they are, in this
process. The backtest reads the same file.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from cryptopipeline.backtest import Backtest, BacktestConfig
from cryptopipeline.backtest._inputs import read_messages
from cryptopipeline.bot import Bot, PaperBroker
from cryptopipeline.bot._settings import BotOpsSettings, BotSettings, TradingSettings
from cryptopipeline.core import KafkaSettings, TopicDefaults, TopicNames, TopicSpec, ensure_topics
from cryptopipeline.ingestor._settings import IngestorSettings
from cryptopipeline.ingestor.service import Ingestor
from cryptopipeline.signaler._settings import SignalerSettings
from cryptopipeline.signaler.service import Signaler
from cryptopipeline.sim import SimConfig, SimServer
from cryptopipeline.trading import OrderEventType, RiskLimits

pytestmark = pytest.mark.kafka

REPO_ROOT = Path(__file__).resolve().parents[2]
RECORDING = REPO_ROOT.parent / "shared" / "data" / "coinbase" / "COINBASE.ws.28.0.jsonl"
STRATEGIES = [
    {"name": "sma_crossover", "parameters": {"fast": 1, "slow": 2}},
    {"name": "ema_crossover", "parameters": {"fast": 1, "slow": 3}},
]
# The recording is from 2021 and records carry the exchange time: keep them, or retention
# deletes them mid-test (docs/benchmarks.md, "back-dated records").
KEEP = TopicDefaults(retention_ms=-1)
RISK = RiskLimits(max_order_notional=Decimal("150"), stale_price_s=30, max_open_orders=50)


async def _until(condition: Callable[[], bool], within: float = 60.0) -> None:
    """Polls: the services' state is in other tasks and offers nothing to await."""
    async with asyncio.timeout(within):
        while True:
            if condition():
                return
            await asyncio.sleep(0.05)


def _tickers() -> list[bytes]:
    with RECORDING.open("rb") as stream:
        return [
            orjson.dumps(m)
            for m in read_messages(stream, str(RECORDING))
            if m.get("type") in ("ticker", "heartbeat")
        ]


@pytest.mark.skipif(not RECORDING.exists(), reason="needs ../shared/data/coinbase")
async def test_live_and_backtest_agree(kafka_settings: KafkaSettings) -> None:
    tag = uuid.uuid4().hex[:8]
    names = TopicNames(raw=f"praw_{tag}", trade_signals=f"psig_{tag}", orders=f"pord_{tag}",
                       dead_letter=f"pdlq_{tag}")  # fmt: skip
    ticks = _tickers()
    products = sorted({orjson.loads(t)["product_id"] for t in ticks})
    # The bot trades only the products it is configured for (others' signals are bad input).
    trading = TradingSettings(starting_cash=Decimal("10000"), clock="event", products=products)
    bot = Bot(
        BotSettings(
            kafka=kafka_settings,
            topic_defaults=KEEP,
            topics=names,
            consumer_group=f"pbot_{tag}",
            ops=BotOpsSettings(port=0),
            trading=trading,
            risk=RISK,
            poll_interval_s=0.1,
        ),
        PaperBroker(taker_fee_bps=Decimal(60)),
    )
    signaler = Signaler(
        SignalerSettings(
            kafka=kafka_settings,
            topic_defaults=KEEP,
            topics=names,
            strategies=STRATEGIES,
            candles={"intervals_s": [1], "grace_s": 0},
            signaler={
                "group_id": f"psg_{tag}",
                "transactional_id": f"pst_{tag}",
                "state_topic": f"pstate_{tag}",
                "dead_letter_topic": f"psdlq_{tag}",
            },
            ops={"host": "127.0.0.1", "port": 0},
        )
    )
    backtest = Backtest(
        BacktestConfig(
            strategies=STRATEGIES,
            intervals_s=[1],
            grace_s=0,
            trading=trading,
            risk=RISK,
            fee_rate=Decimal("0.006"),
            slippage="half-spread",
        )
    )
    for tick in ticks:
        backtest.on_message(tick)
    expected_orders = {o.client_order_id for o in backtest.stats.orders}
    assert len(backtest.stats.signals) >= 4 and expected_orders  # the recording trades

    # The raw topic exists before the bot starts, so its tick reader is assigned every
    # partition from offset 0 at once (a topic it had to wait for would be read from "latest").
    await ensure_topics(kafka_settings, [TopicSpec(name=names.raw, retention_ms=-1)])
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(bot.run(stop))
        await _until(lambda: bot.consuming)
        tasks.create_task(signaler.run(stop))
        await _until(lambda: signaler.ready()[0])
        sim_config = SimConfig(port=0, replay=RECORDING, speed=0, await_subscribers=1)
        async with SimServer(sim_config) as sim:
            ingestor = Ingestor(
                IngestorSettings(
                    kafka=kafka_settings,
                    topic_defaults=KEEP,
                    topics=names,
                    exchange={
                        "ws_url": sim.ws_url,
                        "rest_url": sim.http_url,
                        "products": products,
                        "connections": 1,
                    },
                    ops={"host": "127.0.0.1", "port": 0},
                )
            )
            tasks.create_task(ingestor.run(stop))
            await sim.market_done.wait()
            done = {s.signal_id for s in backtest.stats.signals}

            def settled() -> bool:
                orders = bot.blotter.orders
                seen = {o.signal_id for o in orders.values()}
                return seen >= done and all(o.terminal for o in orders.values())

            await _until(settled)
            stop.set()

    live = bot.blotter.orders
    assert {o.signal_id for o in live.values()} == {s.signal_id for s in backtest.stats.signals}
    sent = {coid: (o.side, o.base_size, o.order_type) for coid, o in live.items() if o.submitted}
    assert sent == {
        o.client_order_id: (o.side, o.base_size, o.order_type) for o in backtest.stats.orders
    }
    live_fills = sorted(
        (o.client_order_id, o.state) for o in live.values() if o.state is OrderEventType.FILLED
    )
    assert live_fills == sorted((t.client_order_id, OrderEventType.FILLED) for t in backtest.trades)
    live_book, replay_book = bot.blotter.portfolio.snapshot(), backtest.blotter.portfolio.snapshot()
    live_positions, replay_positions = live_book.pop("positions"), replay_book.pop("positions")
    assert live_book == replay_book
    for product, position in replay_positions.items():
        assert live_positions[product] == position, product
    assert live_positions.keys() == replay_positions.keys()
