"""Keeping the blotter in step with the broker after the first answer: orders submitted
without a logged outcome are looked up (never resent), open orders are polled for fills and
cancels, a kill cancels them, and after a restart the broker says what it no longer holds."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cryptopipeline.bot._broker import Broker, BrokerUnavailable
from cryptopipeline.bot._metrics import BotMetrics
from cryptopipeline.bot._recorder import OrderRecorder
from cryptopipeline.trading import Blotter, BrokerUpdate, OrderEventType, TrackedOrder

log = logging.getLogger(__name__)


class Reconciler:
    def __init__(
        self,
        *,
        broker: Broker,
        blotter: Blotter,
        recorder: OrderRecorder,
        metrics: BotMetrics,
        in_flight: set[str],
    ) -> None:
        self.broker = broker
        self.blotter = blotter
        self.recorder = recorder
        self.metrics = metrics
        self.in_flight = in_flight
        """The bot's orders between "submitted" and the broker's answer: busy, not unresolved."""

    async def after_restart(self) -> None:
        """Once, after the log was replayed: settle what was submitted without an outcome,
        then record what the broker lost with the previous process (paper orders)."""
        for order in self.blotter.unresolved():
            await self.settle(order)
        open_orders = [(o.client_order_id, o.exchange_order_id) for o in self.blotter.open_orders()]
        for update in await self.broker.lost_on_restart(open_orders):
            await self._record(update)

    async def settle(self, order: TrackedOrder) -> None:
        """Ask the broker about an order submitted without a logged outcome; one it never
        received is `failed` (`not_at_broker`), never sent again."""
        request = order.request()
        try:
            update = await self.broker.lookup(request)
        except BrokerUnavailable as exc:
            self.metrics.broker_errors.labels("lookup").inc()
            log.error("cannot look the order up yet", extra={
                "client_order_id": order.client_order_id, "error": str(exc)})  # fmt: skip
            return
        if update is None:
            log.warning("submitted order never reached the broker; not resending", extra={
                "client_order_id": order.client_order_id})  # fmt: skip
            await self.recorder.log(request, OrderEventType.FAILED, reason="not_at_broker")
            return
        log.info("settled an order submitted before a restart", extra={
            "client_order_id": order.client_order_id, "status": update.status.value})  # fmt: skip
        await self.recorder.record(request, update)

    async def run(self, kill_requested: asyncio.Event, interval_s: float) -> None:
        """Every `interval_s`, or at once when a kill is requested, until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval_s):
                    await kill_requested.wait()
            try:
                if kill_requested.is_set():
                    await self.cancel_open_orders()
                    kill_requested.clear()
                for order in self.blotter.unresolved():
                    if order.client_order_id not in self.in_flight:
                        await self.settle(order)
                await self.poll_open_orders()
            except BrokerUnavailable as exc:
                self.metrics.broker_errors.labels("poll").inc()
                log.warning("broker poll failed", extra={"error": str(exc)})
            self.recorder.update_gauges()

    async def cancel_open_orders(self) -> None:
        pairs = self._open_pairs()
        if not pairs:
            return
        for update in await self.broker.cancel(pairs):
            await self._record(update)

    async def poll_open_orders(self) -> None:
        for update in await self.broker.poll(self._open_pairs()):
            order = self.blotter.orders.get(update.client_order_id)
            if order is not None and not order.terminal:
                await self.recorder.record(order.request(), update)

    def _open_pairs(self) -> list[tuple[str, str | None]]:
        """(client_order_id, exchange_order_id) of the open orders the broker answered."""
        return [(o.client_order_id, o.exchange_order_id) for o in self.blotter.open_orders()
                if not o.unresolved]  # fmt: skip

    async def _record(self, update: BrokerUpdate) -> None:
        """The broker's answer about an order the blotter holds."""
        await self.recorder.record(self.blotter.orders[update.client_order_id].request(), update)
