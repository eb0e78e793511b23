"""The bot's metrics without Kafka: product labels, and the daily loss against its limit."""

from __future__ import annotations

from decimal import Decimal

import orjson
from bot_support import signal, ticker

from cryptopipeline.bot import Bot, BotSettings, PaperBroker
from cryptopipeline.trading import OrderEvent, RiskLimits


class MemoryOrderLog:
    def __init__(self) -> None:
        self.events: list[OrderEvent] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def flush(self) -> None: ...

    async def write(self, event: OrderEvent, *, durable: bool = True) -> None:
        self.events.append(event)


def _tick(bot: Bot, bid: str, ask: str) -> None:
    bot.on_tick(orjson.dumps(ticker("BTC-USD", Decimal(bid), Decimal(ask))))


async def test_per_product_labels_and_the_daily_loss_gauge() -> None:
    settings = BotSettings(
        pipeline_name="btc-main",
        risk=RiskLimits(max_order_notional=Decimal("150"), stale_price_s=3600,
                        max_daily_loss=Decimal("50")),
    )  # fmt: skip
    bot = Bot(settings, PaperBroker(), order_log=MemoryOrderLog())  # type: ignore[arg-type]
    value = bot.metrics.registry.get_sample_value  # pipeline and workload are implied
    _tick(bot, "60000.00", "60000.10")
    bot._update_gauges()
    assert value("cryptopipeline_bot_daily_loss") == 0
    assert value("cryptopipeline_bot_daily_loss_limit") == 50

    await bot.handle_signal(signal(1))
    product = {"product": "BTC-USD"}
    assert value("cryptopipeline_bot_signals_total", {**product, "result": "accepted"}) == 1
    assert value("cryptopipeline_bot_order_events_total", {**product, "event": "filled"}) == 1
    assert value("cryptopipeline_bot_signal_to_ack_seconds_count", product) == 1

    # the price halves: the loss passes the limit before any order is rejected for it
    _tick(bot, "30000.00", "30000.10")
    bot._update_gauges()
    loss = value("cryptopipeline_bot_daily_loss")
    assert loss is not None and loss >= 50
    rejected = {**product, "reason": "max_daily_loss"}
    assert value("cryptopipeline_bot_rejections_total", rejected) is None

    await bot.handle_signal(signal(2))
    assert value("cryptopipeline_bot_rejections_total", rejected) == 1
    assert value("cryptopipeline_bot_order_events_total", {**product, "event": "rejected"}) == 1
