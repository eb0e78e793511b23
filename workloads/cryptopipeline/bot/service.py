"""The bot service: trade signals -> risk -> sizing -> broker, every step logged to
`btc_usd_orders`, which is also where positions, PnL and open orders come back from at start.

No order twice: the client order id is a function of the signal id; a signal whose order is
already in the log is skipped; "submitted" is durable in Kafka before the broker is called; an
order "submitted" without an outcome is looked up at the broker, never sent again.

The decisions are the trading package's (`plan_signal`, `outcome_events`, `fold_event`,
`replay_log`); this module does the I/O around them: Kafka, the broker, logs and metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from cryptopipeline.bot._api import BotApi
from cryptopipeline.bot._broker import Broker, BrokerUnavailable
from cryptopipeline.bot._coinbase import AdvancedTradeClient, AuthenticationFailed, CoinbaseBroker
from cryptopipeline.bot._inputs import BadInput, decode_signal
from cryptopipeline.bot._killswitch import kill_switch_topic_spec, read_kill_switch
from cryptopipeline.bot._market import MarketView
from cryptopipeline.bot._metrics import BotMetrics
from cryptopipeline.bot._orderlog import OrderLog, read_order_log
from cryptopipeline.bot._reconcile import Reconciler
from cryptopipeline.bot._recorder import OrderRecorder
from cryptopipeline.bot._settings import BotSettings
from cryptopipeline.coinbase import epoch_us
from cryptopipeline.core.kafka import ensure_topics, new_consumer, partitions_of
from cryptopipeline.core.ops import OpsRequest, OpsServer
from cryptopipeline.records import TradeSignal
from cryptopipeline.trading import (
    Blotter,
    OrderEventType,
    OrderRequest,
    PaperBroker,
    RiskEngine,
    client_order_id_for,
)
from cryptopipeline.trading.planning import PlanRejection, plan_signal, replay_log

log = logging.getLogger(__name__)

AfterSubmit = Callable[[OrderRequest], Awaitable[None]]
"""Awaited after the broker answered an order and before the answer is logged."""


def build_broker(settings: BotSettings) -> Broker:
    """The configured broker (paper unless `mode=coinbase`)."""
    b = settings.broker
    if b.mode == "paper":
        return PaperBroker(
            slippage_bps=b.slippage_bps,
            maker_fee_bps=b.maker_fee_bps,
            taker_fee_bps=b.taker_fee_bps,
        )
    client = AdvancedTradeClient(
        b.api_url, b.credentials(), timeout_s=b.timeout_s, max_attempts=b.max_attempts,
        dry_run=b.dry_run,
    )  # fmt: skip
    return CoinbaseBroker(client)


class Bot:
    """Signals in, orders out: the I/O around the trading package's decisions."""

    def __init__(
        self,
        settings: BotSettings,
        broker: Broker | None = None,
        *,
        order_log: OrderLog | None = None,
        metrics: BotMetrics | None = None,
        clock: Callable[[], float] = time.time,
        after_submit: AfterSubmit | None = None,
    ) -> None:
        self.settings = settings
        self.broker = broker or build_broker(settings)
        self.metrics = metrics or BotMetrics(pipeline=settings.pipeline_name)
        self.order_log = order_log or OrderLog(settings.kafka, settings.topics.orders)
        self.after_submit = after_submit
        self.blotter = Blotter(settings.trading.starting_cash)
        self.risk = RiskEngine(settings.risk)
        self.recovered = False
        self.consuming = False
        self.auth_failed = False
        self.kill_requested = asyncio.Event()
        self.ops: OpsServer | None = None
        self.api = BotApi(self)
        self._products = frozenset(settings.trading.products)
        self._bad_logged: set[tuple[str, str]] = set()
        self._in_flight: set[str] = set()
        """Orders between "submitted" and the broker's answer: not unresolved, just busy."""
        self.market = MarketView(
            self._products, event_clock=settings.trading.clock == "event",
            portfolio=self.blotter.portfolio, broker=self.broker,
            on_bad=lambda exc, where: self.bad_input("tick", exc, where),
            wait_s=settings.risk.stale_price_s,
        )  # fmt: skip
        self.clock = clock
        if self.market.event_clock:
            self.clock = lambda: self.market.event_now
        self.recorder = OrderRecorder(
            blotter=self.blotter, risk=self.risk, metrics=self.metrics,
            order_log=self.order_log, broker=self.broker.name, clock=lambda: self.clock(),
        )  # fmt: skip
        self.reconciler = Reconciler(
            broker=self.broker, blotter=self.blotter, recorder=self.recorder,
            metrics=self.metrics, in_flight=self._in_flight,
        )  # fmt: skip

    def ops_server(self) -> OpsServer:
        """Probes and /metrics (open), and the token-guarded API (`bot._api`)."""
        return self.api.server()

    def portfolio_route(self, request: OpsRequest) -> tuple[int, Any]:
        return self.api.portfolio_route(request)

    def kill(self, reason: str) -> None:
        """Block every new order now; open orders are cancelled by the running service."""
        if not self.risk.killed:
            log.warning("kill switch tripped", extra={"reason": reason})
        self.risk.kill(reason)
        self.metrics.killed.set(1)
        self.kill_requested.set()

    # ---- lifecycle --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        self.ops = self.ops_server()
        async with self.ops:
            mine = {settings.topics.orders, settings.topics.trade_signals, settings.topics.raw}
            specs = [s for s in settings.topic_specs() if s.name in mine]
            specs.append(kill_switch_topic_spec(
                settings.kill_switch_topic,
                replication_factor=settings.topic_defaults.replication_factor,
            ))  # fmt: skip
            await ensure_topics(settings.kafka, specs)
            await self.order_log.start()
            try:
                await self.recover()
                signals = self._consumer(group=True)
                ticks = self._consumer(group=False)
                await signals.start()
                await ticks.start()
                try:
                    await self._seek_last_ticks(ticks)
                    signals.subscribe([settings.topics.trade_signals])
                    self.consuming = True
                    async with asyncio.TaskGroup() as tasks:
                        workers = [
                            tasks.create_task(self._consume_ticks(ticks)),
                            tasks.create_task(self._consume_signals(signals)),
                            tasks.create_task(
                                self.reconciler.run(self.kill_requested, settings.poll_interval_s)
                            ),
                        ]
                        await stop.wait()
                        for worker in workers:
                            worker.cancel()
                finally:
                    self.consuming = False
                    await signals.stop()
                    await ticks.stop()
            finally:
                await self.order_log.stop()
                await self.broker.aclose()

    def _consumer(self, *, group: bool) -> AIOKafkaConsumer:
        return new_consumer(
            self.settings.kafka, "bot",
            group_id=self.settings.consumer_group if group else None,
            auto_offset_reset="earliest" if group else "latest",
        )  # fmt: skip

    async def recover(self) -> None:
        """Rebuild the blotter from the order log; settle orders submitted without outcome.
        A kill switch recorded before the restart holds again before any signal is read."""
        switch = await read_kill_switch(self.settings.kafka, self.settings.kill_switch_topic)
        if switch.killed:
            self.kill(f"recorded before this start: {switch.reason}")
        events = await read_order_log(
            self.settings.kafka, self.settings.topics.orders,
            lambda exc, where: self.bad_input("order_log", exc, where),
        )  # fmt: skip
        replay_log(self.blotter, self.risk, events, seconds=_event_seconds)
        log.info(
            "recovered from the order log",
            extra={"events": len(events), "orders": len(self.blotter.orders),
                   "unresolved": len(self.blotter.unresolved())},
        )  # fmt: skip
        await self.reconciler.after_restart()
        self._update_gauges()
        self.recovered = True

    def bad_input(self, source: str, exc: BadInput, where: str = "") -> None:
        """Count a refused record; log the first of each (source, reason) with its detail."""
        self.metrics.bad_input.labels(source, exc.reason).inc()
        if (source, exc.reason) not in self._bad_logged:
            self._bad_logged.add((source, exc.reason))
            log.error("bad input skipped (further ones of this reason are only counted)",
                      extra={"source": source, "reason": exc.reason, "detail": exc.detail,
                             "at": where})  # fmt: skip

    # ---- ticks ------------------------------------------------------------------------------

    async def _seek_last_ticks(self, consumer: AIOKafkaConsumer) -> None:
        topic = self.settings.topics.raw
        partitions = await partitions_of(consumer, topic)
        if not partitions:
            consumer.subscribe([topic])
            return
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, max(ends[tp] - 1, 0))

    async def _consume_ticks(self, consumer: AIOKafkaConsumer) -> None:
        async for record in consumer:
            self.on_tick(record.value or b"", f"{record.topic}/{record.partition}@{record.offset}")

    def on_tick(self, raw: bytes, where: str = "") -> None:
        """One raw-topic record (`bot._market`)."""
        self.market.on_tick(raw, where)

    # ---- signals ----------------------------------------------------------------------------

    async def _consume_signals(self, consumer: AIOKafkaConsumer) -> None:
        async for record in consumer:
            received = time.perf_counter()
            try:
                signal = decode_signal(record.value or b"", self._products)
            except BadInput as exc:
                self.metrics.signals.labels("", "invalid").inc()
                self.bad_input("signal", exc, f"{record.topic}/{record.partition}@{record.offset}")
            else:
                await self.handle_signal(signal, received=received)
            tp = TopicPartition(record.topic, record.partition)
            await consumer.commit({tp: record.offset + 1})

    async def handle_signal(self, signal: TradeSignal, *, received: float | None = None) -> None:
        """One signal, end to end; safe to call again with the same signal."""
        received = time.perf_counter() if received is None else received
        coid = client_order_id_for(signal.signal_id)
        product = signal.product_id
        if self.blotter.decided(coid):
            self.metrics.signals.labels(product, "duplicate").inc()
            return
        self.metrics.signals.labels(product, "accepted").inc()
        quote = await self.market.quote(signal)
        plan = plan_signal(
            self.settings.trading, signal, book=quote.book, blotter=self.blotter,
            risk=self.risk, now=self.clock(), last_tick_at=quote.tick_at,
        )  # fmt: skip
        if coid not in self.blotter.orders:
            await self.recorder.log(plan.received, OrderEventType.RECEIVED, durable=False)
        decision = plan.decision
        if isinstance(decision, PlanRejection):
            self.metrics.rejections.labels(product, decision.reason).inc()
            log.info("order rejected", extra={"client_order_id": coid, "signal_id":
                     signal.signal_id, "reason": decision.reason,
                     "detail": decision.detail})  # fmt: skip
            await self.recorder.log(plan.received, OrderEventType.REJECTED,
                                    reason=decision.reason, detail=decision.detail)  # fmt: skip
            return
        self.market.before_submit(quote)
        self._in_flight.add(coid)
        try:
            await self._submit(decision, received)
        finally:
            self._in_flight.discard(coid)

    async def _submit(self, decision: OrderRequest, received: float) -> None:
        coid = decision.client_order_id
        await self.recorder.log(decision, OrderEventType.SUBMITTED)
        try:
            update = await self.broker.submit(decision)
        except AuthenticationFailed as exc:
            self.auth_failed = True
            self.metrics.broker_errors.labels("auth").inc()
            log.error("broker refused our credentials", extra={"error": str(exc)})
            await self.recorder.log(
                decision, OrderEventType.FAILED, reason="broker_auth", detail=str(exc)
            )
            return
        except BrokerUnavailable as exc:
            self.metrics.broker_errors.labels("unavailable").inc()
            log.error("broker unavailable; the order will be looked up, not resent",
                      extra={"client_order_id": coid, "error": str(exc)})  # fmt: skip
            return
        self.metrics.signal_to_ack.labels(decision.product_id).observe(
            time.perf_counter() - received
        )
        if self.after_submit is not None:
            await self.after_submit(decision)
        await self.recorder.record(decision, update)

    def _update_gauges(self) -> None:
        self.recorder.update_gauges()


def _event_seconds(text: str) -> float:
    try:
        return epoch_us(text) / 1_000_000
    except ValueError:
        return 0.0
