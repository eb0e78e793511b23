"""Every order event the bot makes, in one place: built (`trading.order_event`), folded into
the blotter and risk (`trading.fold_event`), counted, and written to `btc_usd_orders`."""

from __future__ import annotations

from collections.abc import Callable

from cryptopipeline.bot._metrics import BotMetrics
from cryptopipeline.bot._orderlog import OrderLog, now_text
from cryptopipeline.trading import (
    Blotter,
    BrokerUpdate,
    Fill,
    OrderEventType,
    OrderRequest,
    RiskEngine,
)
from cryptopipeline.trading.orders import order_event
from cryptopipeline.trading.planning import fold_event, outcome_events


class OrderRecorder:
    def __init__(
        self,
        *,
        blotter: Blotter,
        risk: RiskEngine,
        metrics: BotMetrics,
        order_log: OrderLog,
        broker: str,
        clock: Callable[[], float],
    ) -> None:
        self.blotter = blotter
        self.risk = risk
        self.metrics = metrics
        self.order_log = order_log
        self.broker = broker
        self.clock = clock

    async def log(
        self,
        request: OrderRequest,
        event_type: OrderEventType,
        *,
        reason: str | None = None,
        detail: str | None = None,
        exchange_id: str | None = None,
        fill: Fill | None = None,
        durable: bool = True,
    ) -> None:
        """One event of `request`'s life; `durable` waits until Kafka acknowledged it."""
        event = order_event(
            request, event_type, time=now_text(), broker=self.broker, reason=reason,
            detail=detail, exchange_id=exchange_id, fill=fill,
        )  # fmt: skip
        fold_event(self.blotter, self.risk, event, at=self.clock())
        self.metrics.order_events.labels(request.product_id, event_type.value).inc()
        await self.order_log.write(event, durable=durable)

    async def record(self, request: OrderRequest, update: BrokerUpdate) -> None:
        """The events a broker's answer calls for (`trading.outcome_events`), made durable
        together, then the gauges."""
        for planned in outcome_events(self.blotter, request, update):
            await self.log(
                request, planned.event, exchange_id=planned.exchange_order_id,
                fill=planned.fill, reason=planned.reason, detail=planned.detail, durable=False,
            )  # fmt: skip
            if planned.event is OrderEventType.REJECTED and planned.reason:
                self.metrics.rejections.labels(request.product_id, planned.reason).inc()
        await self.order_log.flush()
        self.update_gauges()

    def update_gauges(self) -> None:
        self.metrics.observe(self.blotter, self.risk, self.clock())
