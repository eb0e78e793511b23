"""The bot service: trade signals -> risk -> sizing -> broker, every step logged to
`btc_usd_orders`, which is also where positions, PnL and open orders come back from at start.

No order twice: the client order id is a function of the signal id; a signal whose order is
already in the log is skipped; "submitted" is durable in Kafka before the broker is called; an
order "submitted" without an outcome is looked up at the broker, never sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition

from cryptopipeline.bot._broker import Broker, BrokerUnavailable
from cryptopipeline.bot._coinbase import AdvancedTradeClient, AuthenticationFailed, CoinbaseBroker
from cryptopipeline.bot._inputs import BadInput, Tick, decode_signal, decode_tick
from cryptopipeline.bot._killswitch import (
    KILL_SWITCH_KEY,
    KillSwitchRecord,
    kill_switch_topic_spec,
    read_kill_switch,
)
from cryptopipeline.bot._metrics import BotMetrics
from cryptopipeline.bot._orderlog import OrderLog, read_order_log
from cryptopipeline.bot._paper import PaperBroker
from cryptopipeline.bot._settings import BotSettings
from cryptopipeline.coinbase import epoch_us, format_time
from cryptopipeline.core import ensure_topics
from cryptopipeline.core.ops import OpsRequest, OpsServer
from cryptopipeline.core.records import Action, TradeSignal
from cryptopipeline.market import Heartbeat
from cryptopipeline.trading import (
    Blotter,
    BrokerUpdate,
    Fill,
    OrderEventType,
    OrderRequest,
    OrderSide,
    OrderType,
    RiskEngine,
    TrackedOrder,
    client_order_id_for,
)
from cryptopipeline.trading.books import BookAt, BookHistory
from cryptopipeline.trading.orders import order_event
from cryptopipeline.trading.planning import PlanRejection, outcome_events, plan_order

log = logging.getLogger(__name__)


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    def __init__(
        self,
        settings: BotSettings,
        broker: Broker | None = None,
        *,
        order_log: OrderLog | None = None,
        metrics: BotMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.broker = broker or build_broker(settings)
        self.metrics = metrics or BotMetrics(pipeline=settings.pipeline_name)
        self.order_log = order_log or OrderLog(settings.kafka, settings.topics.orders)
        self.clock = clock
        self.blotter = Blotter(settings.trading.starting_cash)
        self.risk = RiskEngine(settings.risk)
        self.books: dict[str, tuple[Decimal, Decimal]] = {}
        self.last_tick_at: dict[str, float] = {}
        self.recovered = False
        self.consuming = False
        self.auth_failed = False
        self.kill_requested = asyncio.Event()
        self.ops: OpsServer | None = None
        self._paused_once = False
        self._products = frozenset(settings.trading.products)
        self._bad_logged: set[tuple[str, str]] = set()
        self._in_flight: set[str] = set()
        """Orders between "submitted" and the broker's answer: not unresolved, just busy."""
        self.event_clock = settings.trading.clock == "event"
        self.market = BookHistory()
        self._market_moved = asyncio.Event()
        self._event_now = 0.0
        if self.event_clock:
            self.clock = lambda: self._event_now

    # ---- probes and API ---------------------------------------------------------------------

    def live(self) -> tuple[bool, dict[str, Any]]:
        return True, {}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        ok = self.recovered and self.consuming and not self.auth_failed
        return ok, {
            "recovered": self.recovered,
            "consuming": self.consuming,
            "broker": self.broker.name,
            "broker_auth_failed": self.auth_failed,
            "kill_switch": self.risk.killed,
        }

    def _refused(self, request: OpsRequest) -> tuple[int, Any] | None:
        """None when the request carries the ops token; else the answer that refuses it.
        No token configured (or an empty one) disables the guarded routes: 403."""
        token = self.settings.ops.kill_token
        if token is None:
            return 403, {"error": "disabled: no kill token is configured "
                                  "(CRYPTOPIPELINE_OPS__KILL_TOKEN)"}  # fmt: skip
        header = request.headers.get("authorization", "")
        given = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""
        if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            return 401, {"error": "bad or missing bearer token"}
        return None

    def portfolio_route(self, request: OpsRequest) -> tuple[int, Any]:
        """Positions are private: the token is needed whenever one is configured; without
        one the view answers only on a loopback bind (the local run), else 403."""
        ops = self.settings.ops
        if ops.kill_token is None and _is_loopback(ops.host):
            return self.portfolio_view()
        return self._refused(request) or self.portfolio_view()

    def portfolio_view(self) -> tuple[int, Any]:
        body = self.blotter.portfolio.snapshot()
        body["open_orders"] = [
            {"client_order_id": o.client_order_id, "product_id": o.product_id,
             "state": o.state.value, "exchange_order_id": o.exchange_order_id}
            for o in self.blotter.open_orders()
        ]  # fmt: skip
        body["kill_switch"] = self.risk.killed
        body["broker"] = self.broker.name
        return 200, body

    async def kill_route(self, request: OpsRequest) -> tuple[int, Any]:
        refused = self._refused(request)
        if refused is not None:
            return refused
        self.kill("kill endpoint")  # orders stop now, before the record is durable
        try:
            await self._record_kill_switch(True, "kill endpoint")
        except Exception as exc:  # still killed in this process; say it is not durable yet
            problem = str(exc)[:200] or type(exc).__name__
            log.error("kill switch tripped but not recorded", extra={"error": problem})
            return 503, {"kill_switch": True, "durable": False, "error": problem}
        return 200, {"kill_switch": True, "durable": True}

    async def release_route(self, request: OpsRequest) -> tuple[int, Any]:
        refused = self._refused(request)
        if refused is not None:
            return refused
        try:
            await self._record_kill_switch(False, "release endpoint")
        except Exception as exc:  # not recorded: stay killed, a restart would kill again
            problem = str(exc)[:200] or type(exc).__name__
            log.error("kill switch release not recorded; still killed",
                      extra={"error": problem})  # fmt: skip
            return 503, {"kill_switch": self.risk.killed, "error": problem}
        if self.risk.killed:
            log.warning("kill switch released", extra={"was": self.risk.kill_reason})
        self.risk.release()
        self.metrics.killed.set(0)
        return 200, {"kill_switch": False}

    async def _record_kill_switch(self, killed: bool, reason: str) -> None:
        record = KillSwitchRecord(killed=killed, reason=reason, time=_now_text())
        limit = self.settings.ops.record_timeout_s  # an answer even when Kafka is down
        async with asyncio.timeout(limit):
            await self.order_log.publish(
                self.settings.kill_switch_topic, KILL_SWITCH_KEY, record.model_dump_json().encode()
            )

    def kill(self, reason: str) -> None:
        """Block every new order now; open orders are cancelled by the running service."""
        if not self.risk.killed:
            log.warning("kill switch tripped", extra={"reason": reason})
        self.risk.kill(reason)
        self.metrics.killed.set(1)
        self.kill_requested.set()

    # ---- lifecycle --------------------------------------------------------------------------

    def ops_server(self) -> OpsServer:
        """Probes and /metrics (open), and the token-guarded API: /api/portfolio (GET),
        /api/kill and /api/release (POST)."""
        ops = self.settings.ops
        return OpsServer(
            self.metrics.registry, live=self.live, ready=self.ready, host=ops.host, port=ops.port,
            routes={("GET", "/api/portfolio"): self.portfolio_route,
                    ("POST", "/api/kill"): self.kill_route,
                    ("POST", "/api/release"): self.release_route},
        )  # fmt: skip

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
                            tasks.create_task(self._maintain()),
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
                close = getattr(getattr(self.broker, "client", None), "close", None)
                if close is not None:
                    await close()

    def _consumer(self, *, group: bool) -> AIOKafkaConsumer:
        kafka = self.settings.kafka
        return AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap_servers,
            client_id=f"{kafka.client_id}-bot",
            group_id=self.settings.consumer_group if group else None,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if group else "latest",
            isolation_level="read_committed",
        )

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
        for event in events:
            self.blotter.apply(event)
            fill = event.to_fill()
            if fill is not None:
                self.risk.note_fill(event.product_id, _event_seconds(event.time))
        log.info(
            "recovered from the order log",
            extra={"events": len(events), "orders": len(self.blotter.orders),
                   "unresolved": len(self.blotter.unresolved())},
        )  # fmt: skip
        for order in self.blotter.unresolved():
            await self._settle_unresolved(order)
        if isinstance(self.broker, PaperBroker):
            for order in self.blotter.open_orders():  # resting paper orders died with the process
                await self._log(order.request(), OrderEventType.CANCELLED, reason="paper_restart")
        self._update_gauges()
        self.recovered = True

    async def _settle_unresolved(self, order: TrackedOrder) -> None:
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
            await self._log(request, OrderEventType.FAILED, reason="not_at_broker")
            return
        log.info("settled an order submitted before a restart", extra={
            "client_order_id": order.client_order_id, "status": update.status.value})  # fmt: skip
        await self._record(request, update)

    # ---- ticks ------------------------------------------------------------------------------

    async def _seek_last_ticks(self, consumer: AIOKafkaConsumer) -> None:
        topic = self.settings.topics.raw
        await consumer._client.force_metadata_update()  # as the ingestor's recovery does
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
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
        """One raw-topic record: a checked ticker moves the book and the marks; anything
        else that claims to be a ticker is bad input (counted, logged once, skipped)."""
        try:  # the one parser, on either clock
            tick = decode_tick(raw, self._products, heartbeats=self.event_clock)
        except BadInput as exc:
            self.bad_input("tick", exc, where)
            return
        if self.event_clock:
            self._on_event_time_tick(tick)
            return
        if not isinstance(tick, Tick):
            return
        product = tick.product_id
        self.books[product] = (tick.bid, tick.ask)
        self.last_tick_at[product] = max(tick.at, self.last_tick_at.get(product, 0.0))
        self.blotter.portfolio.mark(product, (tick.bid + tick.ask) / 2)
        if isinstance(self.broker, PaperBroker):
            self.broker.on_tick(product, tick.bid, tick.ask, tick.time)

    def bad_input(self, source: str, exc: BadInput, where: str = "") -> None:
        """Count a refused record; log the first of each (source, reason) with its detail."""
        self.metrics.bad_input.labels(source, exc.reason).inc()
        if (source, exc.reason) not in self._bad_logged:
            self._bad_logged.add((source, exc.reason))
            log.error("bad input skipped (further ones of this reason are only counted)",
                      extra={"source": source, "reason": exc.reason, "detail": exc.detail,
                             "at": where})  # fmt: skip

    def _on_event_time_tick(self, event: Tick | Heartbeat | None) -> None:
        """Event clock: the market as event time saw it; marks and paper books move at signals."""
        if isinstance(event, Tick):
            self.market.on_tick(event.product_id, event.time_us, event.bid, event.ask)
        elif isinstance(event, Heartbeat):
            self.market.on_heartbeat(event.product_id, event.time_us)
        else:
            return
        self._market_moved.set()

    async def _book_at_close(self, signal: TradeSignal) -> BookAt | None:
        """Event clock: wait until the product's event time reaches the signal's candle end,
        then the book as of that end (trading.books); None if the feed never gets there."""
        end_us = epoch_us(signal.window.end)
        product = signal.product_id
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.risk.stale_price_s):
                while (self.market.watermark_us(product) or -1) < end_us:
                    self._market_moved.clear()
                    await self._market_moved.wait()
        self._event_now = end_us / 1_000_000
        return self.market.as_of(product, end_us)

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
        known = self.blotter.orders.get(coid)
        if known is not None and known.state is not OrderEventType.RECEIVED:
            self.metrics.signals.labels(signal.product_id, "duplicate").inc()
            return
        self.metrics.signals.labels(signal.product_id, "accepted").inc()
        side = OrderSide.BUY if signal.action is Action.BUY else OrderSide.SELL
        product = signal.product_id
        at_close = await self._book_at_close(signal) if self.event_clock else None
        if at_close is not None:
            self.books[product] = (at_close.bid, at_close.ask)
            self.blotter.portfolio.mark(product, at_close.mid)
        book = self.books.get(product) if not self.event_clock or at_close else None
        price = (book[1] if side is OrderSide.BUY else book[0]) if book else signal.close_price
        base = OrderRequest(coid, signal.signal_id, product, side, OrderType.MARKET, Decimal(0),
                            reference_price=price)  # fmt: skip
        if known is None:
            await self._log(base, OrderEventType.RECEIVED, durable=False)
        last_tick: float | Literal["latest"] | None = "latest"
        if self.event_clock:  # the tick the price came from, not the latest one read
            last_tick = at_close.time_us / 1e6 if at_close else None
        decision = self.decide(signal, side, price, last_tick)
        if isinstance(decision, tuple):
            reason, detail = decision
            self.metrics.rejections.labels(product, reason).inc()
            log.info("order rejected", extra={"client_order_id": coid, "signal_id":
                     signal.signal_id, "reason": reason, "detail": detail})  # fmt: skip
            await self._log(base, OrderEventType.REJECTED, reason=reason, detail=detail)
            return
        if at_close is not None and isinstance(self.broker, PaperBroker):
            self.broker.on_tick(product, at_close.bid, at_close.ask, format_time(at_close.time_us))
        self._in_flight.add(coid)
        try:
            await self._submit(decision, received)
        finally:
            self._in_flight.discard(coid)

    async def _submit(self, decision: OrderRequest, received: float) -> None:
        coid = decision.client_order_id
        await self._log(decision, OrderEventType.SUBMITTED)
        try:
            update = await self.broker.submit(decision)
        except AuthenticationFailed as exc:
            self.auth_failed = True
            self.metrics.broker_errors.labels("auth").inc()
            log.error("broker refused our credentials", extra={"error": str(exc)})
            await self._log(decision, OrderEventType.FAILED, reason="broker_auth", detail=str(exc))
            return
        except BrokerUnavailable as exc:
            self.metrics.broker_errors.labels("unavailable").inc()
            log.error("broker unavailable; the order will be looked up, not resent",
                      extra={"client_order_id": coid, "error": str(exc)})  # fmt: skip
            return
        self.metrics.signal_to_ack.labels(decision.product_id).observe(
            time.perf_counter() - received
        )
        if self.settings.test_pause_after_submit and not self._paused_once:
            self._paused_once = True
            print("TEST HOOK: paused after submit, before logging the outcome", flush=True)
            await asyncio.Event().wait()  # the crash test kills -9 the process here
        await self._record(decision, update)

    def decide(
        self,
        signal: TradeSignal,
        side: OrderSide,
        price: Decimal,
        last_tick_at: float | Literal["latest"] | None = "latest",
    ) -> OrderRequest | tuple[str, str]:
        """Sizing and risk for one signal: the order to send, or (reason, detail)."""
        product = signal.product_id
        if last_tick_at == "latest":
            last_tick_at = self.last_tick_at.get(product)
        plan = plan_order(
            self.settings.trading, client_order_id=client_order_id_for(signal.signal_id),
            signal_id=signal.signal_id, product_id=product, side=side, price=price,
            blotter=self.blotter, risk=self.risk, now=self.clock(),
            last_tick_at=last_tick_at,
        )  # fmt: skip
        if isinstance(plan, PlanRejection):
            return plan.reason, plan.detail
        return plan

    # ---- outcomes ---------------------------------------------------------------------------

    async def _record(self, request: OrderRequest, update: BrokerUpdate) -> None:
        for planned in outcome_events(self.blotter, request, update):
            await self._log(
                request, planned.event, exchange_id=planned.exchange_order_id,
                fill=planned.fill, reason=planned.reason, detail=planned.detail, durable=False,
            )  # fmt: skip
            if planned.fill is not None:
                self.risk.note_fill(request.product_id, self.clock())
            if planned.event is OrderEventType.REJECTED and planned.reason:
                self.metrics.rejections.labels(request.product_id, planned.reason).inc()
        await self._flush(request)
        self._update_gauges()

    async def _flush(self, request: OrderRequest) -> None:
        await self.order_log.flush()

    async def _log(
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
        event = order_event(
            request, event_type, time=_now_text(), broker=self.broker.name, reason=reason,
            detail=detail, exchange_id=exchange_id, fill=fill,
        )  # fmt: skip
        self.blotter.apply(event)
        self.metrics.order_events.labels(request.product_id, event_type.value).inc()
        await self.order_log.write(event, durable=durable)

    def _update_gauges(self) -> None:
        portfolio = self.blotter.portfolio
        m = self.metrics
        for product, position in portfolio.positions.items():
            m.position.labels(product).set(float(position.quantity))
        m.equity.set(float(portfolio.equity))
        m.cash.set(float(portfolio.cash))
        m.pnl.labels("realized").set(float(portfolio.realized_pnl))
        m.pnl.labels("unrealized").set(float(portfolio.unrealized_pnl))
        m.pnl.labels("fees").set(float(portfolio.fees))
        m.pnl.labels("net").set(float(portfolio.net_pnl))
        m.open_orders.set(len(self.blotter.open_orders()))
        m.daily_loss.set(float(self.risk.daily_loss(self.clock(), portfolio.equity)))
        m.daily_loss_limit.set(float(self.risk.limits.max_daily_loss))

    # ---- maintenance: open orders, unresolved submits, the kill switch ---------------------

    async def _maintain(self) -> None:
        interval = self.settings.poll_interval_s
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self.kill_requested.wait()
            try:
                if self.kill_requested.is_set():
                    await self._cancel_open_orders()
                    self.kill_requested.clear()
                for order in self.blotter.unresolved():
                    if order.client_order_id not in self._in_flight:
                        await self._settle_unresolved(order)
                await self._poll_open_orders()
            except BrokerUnavailable as exc:
                self.metrics.broker_errors.labels("poll").inc()
                log.warning("broker poll failed", extra={"error": str(exc)})
            self._update_gauges()

    async def _cancel_open_orders(self) -> None:
        open_orders = [o for o in self.blotter.open_orders() if not o.unresolved]
        if not open_orders:
            return
        pairs = [(o.client_order_id, o.exchange_order_id) for o in open_orders]
        for update in await self.broker.cancel(pairs):
            await self._record(self.blotter.orders[update.client_order_id].request(), update)

    async def _poll_open_orders(self) -> None:
        open_orders = [o for o in self.blotter.open_orders() if not o.unresolved]
        pairs = [(o.client_order_id, o.exchange_order_id) for o in open_orders]
        if not pairs and not isinstance(self.broker, PaperBroker):
            return
        for update in await self.broker.poll(pairs):
            order = self.blotter.orders.get(update.client_order_id)
            if order is not None and not order.terminal:
                await self._record(order.request(), update)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _event_seconds(text: str) -> float:
    try:
        return epoch_us(text) / 1_000_000
    except ValueError:
        return 0.0
