"""`SimServer`: the WebSocket feeds and the REST API on one port, plus the market that feeds them.

The Exchange feed is at `/`, the Advanced Trade market-data feed at `/advanced-trade`
(`_advanced_feed`); with `tls` both are `wss://` and REST is `https://` (`_tls`).

async with SimServer(SimConfig(port=0, speed=0, max_trades=100)) as sim:
    sim.ws_url, sim.http_url, await sim.market_done.wait()
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

import cryptopipeline.sim._tls as _tls
from cryptopipeline.coinbase._time import to_micros
from cryptopipeline.sim._advanced_feed import ADVANCED_PATH, AdvancedFeed, AdvancedSubscriber
from cryptopipeline.sim._advanced_rest import MarketTradesApi
from cryptopipeline.sim._config import SimConfig
from cryptopipeline.sim._events import MarketEvent
from cryptopipeline.sim._faults import FaultPlan
from cryptopipeline.sim._feed import Feed
from cryptopipeline.sim._http import RestApi
from cryptopipeline.sim._ledger import TradeLedger
from cryptopipeline.sim._orders import SimAccount
from cryptopipeline.sim._products import product_spec
from cryptopipeline.sim._replay import ReplayMarket
from cryptopipeline.sim._stats import SimStats
from cryptopipeline.sim._subscriber import Subscriber
from cryptopipeline.sim._synthetic import SyntheticMarket
from cryptopipeline.sim._trade_api import TradeApi, load_trade_keys

log = logging.getLogger("cryptopipeline.sim")

_YIELD_EVERY = 256
"""Events published between two yields to the event loop when the market runs ahead."""

_DEFAULT_LEAD = timedelta(days=1)
"""How far in the past a fast market (speed > 1 or max) starts when no start time is given."""


def default_start(config: SimConfig, now: datetime) -> datetime:
    """The synthetic market's start when `--start-time` is not given.

    At real time (or slower) it is now. A faster market starts in the past, far enough that
    its event time does not reach the wall clock before it ends (twice the expected duration
    of `--max-trades`, at least a day), so an event never carries a time Kafka would call
    the future; the wall-clock cap in the market loop holds even when that is not enough.
    """
    if 0 < config.speed <= 1:
        return now
    lead = _DEFAULT_LEAD
    if config.max_trades:
        expected_s = config.max_trades / sum(config.rate_of(p) for p in config.products)
        lead = max(lead, timedelta(seconds=2 * expected_s))
    return now - lead


class SimServer:
    """The simulator as an async context manager; `port=0` picks a free port."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.stats = SimStats()
        self.ledger = TradeLedger(config.ground_truth)
        self.feed: Feed[Subscriber] = Feed(faults=config.faults, stats=self.stats, seed=config.seed)
        self.feed.await_subscribers = config.await_subscribers
        if config.await_subscribers == 0:
            self.feed.subscribed.set()
        self.market_done = asyncio.Event()
        self.port = config.port
        keys = load_trade_keys(config.trade_keys) if config.trade_keys else {}
        self.advanced = AdvancedFeed(
            self.feed, keys=keys, auth_required=config.advanced_auth == "required"
        )
        self.tls: _tls.TlsFiles | None = None
        self._ssl: ssl.SSLContext | None = None
        self._tls_dir: tempfile.TemporaryDirectory[str] | None = None
        if config.tls:
            self.tls, self._ssl = self._tls_setup(config)
        self._market: Iterable[MarketEvent]
        self._start_us: int
        if config.replay is not None:
            replay = ReplayMarket(config.replay, max_trades=config.max_trades)
            self._market, self._start_us = replay, replay.start_us
            for product in replay.product_ids:
                self.ledger.add_product(product)
        else:
            start = config.start_time or default_start(config, datetime.now(UTC))
            self._start_us = to_micros(start)
            specs = [product_spec(p) for p in config.products]
            for spec in specs:
                self.ledger.add_product(spec.product_id)
            self._market = SyntheticMarket(
                specs,
                seed=config.seed,
                rate=config.rate,
                start_us=self._start_us,
                max_trades=config.max_trades,
                rates=config.rates,
            )
        self._rest = RestApi(
            ledger=self.ledger,
            feed=self.feed,
            stats=self.stats,
            set_faults=self.set_faults,
            disconnect=self.disconnect_all,
            market_trades=MarketTradesApi(self.ledger),
        )
        self.account = SimAccount(
            self.ledger,
            cash=config.trade_cash,
            taker_fee_bps=config.trade_taker_fee_bps,
            maker_fee_bps=config.trade_maker_fee_bps,
        )
        self.trade_api: TradeApi | None = None
        if config.trade_port is not None:
            self.trade_api = TradeApi(
                self.account, keys, host=config.host, port=config.trade_port, ssl=self._ssl
            )
        self._connections = 0
        self._server: Server | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._market_task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> SimServer:
        self._server = await serve(
            self._handle,
            self.config.host,
            self.config.port,
            process_request=self._process_request,
            compression=None,
            max_size=self.config.max_message_size,
            server_header="coinbase-sim",
            ssl=self._ssl,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self.trade_api is not None:
            await self.trade_api.start()
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        self._market_task = self._tasks.create_task(self._run_market())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._market_task is not None:
            self._market_task.cancel()
        assert self._server is not None and self._tasks is not None
        self._server.close()
        await self._server.wait_closed()
        if self.trade_api is not None:
            await self.trade_api.close()
        await self._tasks.__aexit__(exc_type, exc, tb)
        self.ledger.close()
        if self._tls_dir is not None:
            self._tls_dir.cleanup()

    def _tls_setup(self, config: SimConfig) -> tuple[_tls.TlsFiles, ssl.SSLContext]:
        """The given certificate, or a fresh CA and certificate in `tls_dir` (or a temp dir)."""
        if config.tls_cert is not None and config.tls_key is not None:
            files = _tls.TlsFiles(config.tls_cert, config.tls_key, config.tls_ca or config.tls_cert)
        else:
            directory = config.tls_dir
            if directory is None:
                self._tls_dir = tempfile.TemporaryDirectory(prefix="coinbase-sim-tls-")
                directory = Path(self._tls_dir.name)
            files = _tls.generate(directory, [config.host])
        return files, _tls.server_context(files)

    async def serve_until(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set (the CLI's signal handler sets it)."""
        await stop.wait()

    @property
    def ws_url(self) -> str:
        """The Exchange feed."""
        return f"{'wss' if self._ssl else 'ws'}://{self.config.host}:{self.port}/"

    @property
    def advanced_ws_url(self) -> str:
        """The Advanced Trade market-data feed."""
        return f"{'wss' if self._ssl else 'ws'}://{self.config.host}:{self.port}{ADVANCED_PATH}"

    @property
    def http_url(self) -> str:
        return f"{'https' if self._ssl else 'http'}://{self.config.host}:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        """The certificate authority clients must trust (with `tls`)."""
        return self.tls.ca if self.tls is not None else None

    async def disconnect_all(self) -> int:
        """Close every client connection of both feeds now; return how many were open."""
        return await self.feed.disconnect_all() + await self.advanced.disconnect_all()

    @property
    def trade_url(self) -> str | None:
        """The Advanced Trade order API, when `trade_port` is set."""
        return self.trade_api.url if self.trade_api is not None else None

    def set_faults(self, plan: FaultPlan) -> None:
        """Replace the fault plan; connections pick it up at their next write."""
        self.feed.faults = plan
        self.advanced.faults = plan
        for subscriber in [*self.feed.subscribers, *self.advanced.subscribers]:
            subscriber.wakeup.set()
        log.info("fault plan changed", extra={"faults": plan.model_dump(mode="json")})

    # -- the market --------------------------------------------------------------------------

    async def _run_market(self) -> None:
        config = self.config
        feed, ledger, stats, advanced = self.feed, self.ledger, self.stats, self.advanced
        await feed.subscribed.wait()
        loop = asyncio.get_running_loop()
        started = loop.time()
        speed = config.speed
        count = 0
        wall_us = 0  # the wall clock when last read: re-read only when an event passes it
        try:
            for event in self._market:
                if event.at_us > wall_us:
                    wall_us = time.time_ns() // 1000
                    if event.at_us > wall_us:  # never publish an event dated in the future
                        ledger.flush()
                        await asyncio.sleep((event.at_us - wall_us) / 1_000_000)
                        wall_us = time.time_ns() // 1000
                        count = 0
                if speed > 0:
                    due = started + (event.at_us - self._start_us) / 1_000_000 / speed
                    delay = due - loop.time()
                    if delay > 0:
                        ledger.flush()
                        await asyncio.sleep(delay)
                        count = 0
                if event.trade is not None:
                    ledger.record(event.trade, event.quote)
                    stats.trades_published += 1
                elif event.quote is not None:
                    ledger.note_quote(event.product_id, event.quote)
                feed.publish(event)
                advanced.publish(event)
                stats.events_published += 1
                count += 1
                if speed <= 0:
                    congested = feed.congested() + advanced.congested()
                    if congested:
                        for subscriber in congested:
                            await subscriber.drained.wait()
                        count = 0
                if count >= _YIELD_EVERY:
                    count = 0
                    await asyncio.sleep(0)
            log.info("market finished", extra={"trades": stats.trades_published})
        finally:
            ledger.flush()
            stats.market_done = True
            self.market_done.set()

    # -- connections -------------------------------------------------------------------------

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        upgrade = request.headers.get("Upgrade", "")
        path = request.path.split("?", 1)[0]
        if upgrade.lower() == "websocket" and path in ("/", ADVANCED_PATH):
            return None
        return await self._rest.answer(request)

    async def _handle(self, ws: ServerConnection) -> None:
        index = self._connections
        self._connections += 1
        advanced = ws.request is not None and ws.request.path.split("?", 1)[0] == ADVANCED_PATH
        kind = AdvancedSubscriber if advanced else Subscriber
        feed: Feed[Any] = self.advanced if advanced else self.feed
        subscriber = kind(
            ws,
            index,
            feed,  # type: ignore[arg-type]
            self.ledger,
            paced=self.config.paced,
            max_queue=self.config.max_queue,
            high_water=self.config.high_water,
        )
        feed.attach(subscriber)
        self.stats.connections_opened += 1
        self.stats.connections_open += 1
        try:
            async with asyncio.TaskGroup() as tasks:
                writer = tasks.create_task(subscriber.write_frames())
                await subscriber.read_requests()
                writer.cancel()
        finally:
            feed.detach(subscriber)
            self.stats.connections_open -= 1
