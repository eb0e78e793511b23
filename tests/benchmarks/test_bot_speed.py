"""Bot speed: risk check + sizing per second (one core), and signal received -> order
acknowledged by the paper broker at 100 signals/s (p99).

The latency benchmark runs the bot's real `handle_signal` path (dedupe, sizing, risk, order
events, paper broker) with the order log kept in memory, so it measures the bot, not Kafka's
acknowledgement time (see docs/bot.md for what a local broker adds).
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import orjson
import pytest

from cryptopipeline.bot import Bot, BotSettings, PaperBroker
from cryptopipeline.records import Action, CandleWindow, TradeSignal
from cryptopipeline.trading import (
    BrokerUpdate,
    OrderEvent,
    OrderRequest,
    OrderSide,
    ProductIncrements,
    RiskEngine,
    RiskLimits,
    SizedOrder,
    Sizing,
    size_order,
)

pytestmark = pytest.mark.benchmark

WINDOW = CandleWindow(start="2026-01-01T00:00:00Z", end="2026-01-01T00:01:00Z", interval_s=60)


def signal(n: int, action: Action) -> TradeSignal:
    return TradeSignal(
        signal_id=f"bench-signal-{n:08d}", product_id="BTC-USD",
        event_time="2026-01-01T00:01:00Z", action=action, strategy="bench", parameters={},
        indicators={}, window=WINDOW, close_price=Decimal("60000"), last_trade_id=n,
    )  # fmt: skip


def ticker(bid: str, ask: str) -> bytes:
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    return orjson.dumps({"type": "ticker", "product_id": "BTC-USD", "price": ask,
                         "best_bid": bid, "best_ask": ask, "time": now})  # fmt: skip


class MemoryOrderLog:
    def __init__(self) -> None:
        self.events: list[OrderEvent] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def flush(self) -> None: ...

    async def write(self, event: OrderEvent, *, durable: bool = True) -> None:
        self.events.append(event)


def test_risk_check_and_sizing_per_second(benchmark: pytest.FixtureRequest) -> None:
    engine = RiskEngine(RiskLimits(max_order_notional=Decimal("1000"), stale_price_s=60))
    sizing = Sizing(quote_amount=Decimal("100"))
    increments = ProductIncrements(
        "BTC-USD", Decimal("0.00000001"), Decimal("0.01"), Decimal("0.00001")
    )
    price, equity, now = Decimal("60123.45"), Decimal("10000"), time.time()

    def one() -> object:
        sized = size_order(sizing, increments, side=OrderSide.BUY, price=price, equity=equity,
                           position=Decimal(0))  # fmt: skip
        assert isinstance(sized, SizedOrder)
        return engine.check(
            product_id="BTC-USD", side=OrderSide.BUY, notional=sized.notional,
            position_notional=Decimal(0), open_orders=0, equity=equity, now=now,
            last_tick_at=now,
        )  # fmt: skip

    assert benchmark(one) is None  # type: ignore[operator]
    stats = benchmark.stats.stats  # type: ignore[attr-defined]
    benchmark.extra_info["checks_per_second"] = round(1 / stats.mean)  # type: ignore[attr-defined]


class TimedPaperBroker(PaperBroker):
    def __init__(self) -> None:
        super().__init__()
        self.acked_at: dict[str, float] = {}

    async def submit(self, order: OrderRequest) -> BrokerUpdate:
        update = await super().submit(order)
        self.acked_at[order.client_order_id] = time.perf_counter()
        return update


def test_signal_to_paper_ack_p99_at_100_per_second(benchmark: pytest.FixtureRequest) -> None:
    def run() -> list[float]:
        broker = TimedPaperBroker()
        settings = BotSettings(risk=RiskLimits(max_order_notional=Decimal("1000"),
                               max_position_notional=Decimal("10000000"), stale_price_s=3600,
                               max_daily_loss=Decimal("1000000")))  # fmt: skip
        bot = Bot(settings, broker, order_log=MemoryOrderLog())  # type: ignore[arg-type]
        bot.on_tick(ticker("60000.00", "60000.10"))
        latencies: list[float] = []

        async def feed() -> None:
            loop = asyncio.get_running_loop()
            start = loop.time()
            for n in range(300):
                await asyncio.sleep(max(0.0, start + n / 100 - loop.time()))  # 100 signals/s
                s = signal(n, Action.BUY if n % 2 == 0 else Action.SELL)
                received = time.perf_counter()
                await bot.handle_signal(s, received=received)
                coid = next(reversed(bot.blotter.orders))
                if coid in broker.acked_at:
                    latencies.append(broker.acked_at[coid] - received)

        asyncio.run(feed())
        return latencies

    latencies = benchmark.pedantic(run, rounds=1, iterations=1)  # type: ignore[attr-defined]
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    p50 = latencies[len(latencies) // 2]
    benchmark.extra_info.update(  # type: ignore[attr-defined]
        orders=len(latencies), p50_ms=round(p50 * 1000, 3), p99_ms=round(p99 * 1000, 3)
    )
    print(f"\nsignal -> paper ack: p50 {p50 * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms")
    assert len(latencies) >= 250
