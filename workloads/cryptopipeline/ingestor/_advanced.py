"""The Advanced Trade feed (`exchange.feed: advanced-trade`): its connection, its decoder
and its REST backfill, behind the same interfaces as the Exchange feed's, so the service,
sequencers, outbox and recovery run unchanged.

Each `market_trades` trade becomes one record under the raw topic's ticker contract:
`{"type": "ticker", "product_id", "price", "side", "time", "trade_id", "last_size"}` with
`side` the taker's (Advanced Trade's `side` is the maker's, upper case), `trade_id` the
decimal string as an integer, `size` as `last_size` and `time` in Coinbase's six-digit form.
What `market_trades` lacks is absent, never invented: `sequence`, the 24-hour statistics,
`volume_30d` and the book top (docs/ingestor.md, "The Advanced Trade feed").

Gaps are seen three ways: a trade id skipped (the sequencer), a `sequence_num` skipped on a
connection, and a `heartbeat_counter` skipped. The last two say "this socket lost
something" without saying what: after `gap_grace_s` the connection asks REST for each
product's newest trade id and hands it to the service as a last-trade hint (a heartbeat
that is never published), so a trade lost at the tail is backfilled even in a quiet market.
A repeated `sequence_num` is a repeated frame and is dropped before decoding.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import orjson

from cryptopipeline.coinbase._advanced_market import (
    MARKET_TRADES_PATH,
    subscribe_request,
)
from cryptopipeline.ingestor._advanced_decode import (
    AdvancedDecoder,
    last_trade_hint,
    ticker_record,
)
from cryptopipeline.ingestor._backfill import BackfillError, TradeBackfiller
from cryptopipeline.ingestor._connection import (
    Backoff,
    FeedConnection,
    FrameSink,
    RecentFrames,
    _KindCounters,
    time_window,
)
from cryptopipeline.ingestor._decode import (
    MAX_ID,
    ControlFrame,
    Family,
    TimeWindow,
    TradeFrame,
)
from cryptopipeline.ingestor._metrics import IngestorMetrics
from cryptopipeline.ingestor._sequencer import Gap
from cryptopipeline.ingestor._settings import IngestorSettings
from cryptopipeline.ingestor._socket import FeedSocket

log = logging.getLogger(__name__)


_PAGE = 1_000
_MAX_PAGES = 1_000


class AdvancedFeedConnection(FeedConnection):
    """One redundant socket to the Advanced Trade feed: subscribes `market_trades` and
    `heartbeats`, decodes with `AdvancedDecoder`, and probes REST after a loss."""

    def __init__(
        self,
        conn_id: int,
        settings: IngestorSettings,
        sink: FrameSink,
        metrics: IngestorMetrics,
        backfiller: TradeBackfiller,
    ) -> None:
        super().__init__(conn_id, settings.exchange, settings.ingest, sink, metrics)
        self._backfiller = backfiller
        self._lost = asyncio.Event()
        self.losses = 0

    def subscribe_requests(self) -> list[bytes]:
        products = self._exchange.products
        return [
            orjson.dumps(subscribe_request("market_trades", products)),
            orjson.dumps(subscribe_request("heartbeats", products)),
        ]

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._probe_after_losses())
            await super().run()

    async def _probe_after_losses(self) -> None:
        """After a loss, give the other sockets `gap_grace_s`, then tell the service each
        product's newest trade id, so the gap workers see what this socket missed."""
        grace = max(self._ingest.gap_grace_s, 0.05)
        while True:
            await self._lost.wait()
            await asyncio.sleep(grace)  # a deliberate grace period, and a rate limit
            self._lost.clear()
            for product in self._exchange.products:
                try:
                    latest = await self._backfiller.latest_trade_id(product)
                except BackfillError as exc:
                    log.warning(
                        "cannot ask REST for the newest trade after a loss; retrying",
                        extra={"product_id": product, "error": str(exc)[:300]},
                    )
                    self._lost.set()
                    continue
                if latest is not None:
                    self._sink.accept(last_trade_hint(product, latest), -1, time.time_ns())

    async def _read(self, ws: FeedSocket, backoff: Backoff) -> str:
        timeout = self._ingest.heartbeat_timeout_s
        decoder = AdvancedDecoder(
            self._products, self._ingest.max_frame_bytes, time_window(self._ingest)
        )
        sink = self._sink
        counters = _KindCounters(self._metrics, self._label)
        clock = asyncio.get_running_loop().time
        async with asyncio.timeout(timeout) as liveness:
            while True:
                for frame in await ws.receive():
                    receive_ns = time.time_ns()
                    decoded = decoder.decode(frame, receive_ns // 1000)
                    if decoded.repeated:
                        counters.repeated()
                        continue
                    if decoded.alive:
                        liveness.reschedule(clock() + timeout)
                        backoff.reset()
                    if decoded.lost:
                        self.losses += 1
                        self._lost.set()
                    for item in decoded.frames:
                        counters.count(item)
                        if isinstance(item, ControlFrame) and item.type == "subscriptions":
                            self.subscribed = True
                            self._metrics.connected.labels(self._label).set(1)
                        sink.accept(item, self.conn_id, receive_ns)
                    if sink.full:
                        liveness.reschedule(None)
                        await sink.room()
                        liveness.reschedule(clock() + timeout)


class AdvancedBackfiller(TradeBackfiller):
    """Backfill from Advanced Trade's public market trades (`MARKET_TRADES_PATH`). It has no
    trade-id cursor: pages go back in time by `end` (whole UNIX seconds), newest first, until
    the gap's first id is passed. A full page inside one second cannot be paged past; its
    older trades stay missing and the gap is handled as any unfillable gap."""

    async def _market_page(
        self, product_id: str, end_s: int | None, limit: int = _PAGE
    ) -> list[dict[str, Any]]:
        url = MARKET_TRADES_PATH.format(product_id=product_id)
        params = {"limit": str(limit)}
        if end_s is not None:
            params["end"] = str(end_s)
        body = await self._get_json(url, params, product_id)
        trades = body.get("trades") if isinstance(body, dict) else None
        if not isinstance(trades, list):
            raise BackfillError(f"GET {url} answered {str(body)[:200]!r}")
        return [trade for trade in trades if isinstance(trade, dict)]

    async def latest_trade_id(self, product_id: str) -> int | None:
        page = await self._market_page(product_id, None, limit=1)
        ids = [_int_id(t.get("trade_id")) for t in page]
        valid = [i for i in ids if i is not None]
        if ids and not valid:
            raise BackfillError(f"newest trade of {product_id} has no valid trade_id")
        return max(valid) if valid else None

    async def fetch(self, product_id: str, family: Family, gap: Gap) -> list[TradeFrame]:
        found: dict[int, TradeFrame] = {}
        end_s: int | None = None
        refused: list[str] = []
        for _ in range(_MAX_PAGES):
            page = await self._market_page(product_id, end_s)
            if not page:
                break
            oldest_id, oldest_us = None, None
            for trade in page:
                trade_id = _int_id(trade.get("trade_id"))
                try:
                    frame = ticker_record(trade, None, time.time_ns() // 1000, self._window)
                except (ValueError, TypeError) as exc:
                    refused.append(str(exc)[:200])
                    continue
                if frame.product_id != product_id:
                    refused.append(f"a trade of {frame.product_id[:40]!r}")
                    continue
                micros = frame.time_ms * 1000
                if oldest_id is None or frame.trade_id < oldest_id:
                    oldest_id = frame.trade_id
                if oldest_us is None or micros < oldest_us:
                    oldest_us = micros
                if trade_id is not None and gap.first <= trade_id <= gap.last:
                    found[trade_id] = frame
            if oldest_id is None or oldest_us is None or oldest_id <= gap.first:
                break
            if len(page) < _PAGE:
                break  # the answer held every trade before `end`: nothing older exists
            next_end = oldest_us // 1_000_000 + 1
            if end_s is not None and next_end >= end_s:
                break  # a full page inside one second: no whole-second `end` gets past it
            end_s = next_end
        if refused:
            log.error(
                "skipping malformed REST trades",
                extra={"product_id": product_id, "count": len(refused), "first": refused[0]},
            )
        return [found[trade_id] for trade_id in sorted(found)]


def _int_id(value: object) -> int | None:
    if type(value) is str and value.isascii() and value.isdigit() and len(value) <= 19:
        number = int(value)
        return number if number <= MAX_ID else None
    return None


# ---- what the service asks for ----------------------------------------------------------


def backfiller_for(
    settings: IngestorSettings, client: httpx.AsyncClient, window: TimeWindow
) -> TradeBackfiller:
    """The REST backfill of the configured feed."""
    kind = AdvancedBackfiller if settings.exchange.feed == "advanced-trade" else TradeBackfiller
    return kind(client, window=window)


def connections_for(
    settings: IngestorSettings,
    sink: FrameSink,
    metrics: IngestorMetrics,
    backfiller: TradeBackfiller,
) -> list[FeedConnection]:
    """The redundant sockets of the configured feed (Exchange ones share a repeat filter)."""
    count = settings.exchange.connections
    if settings.exchange.feed == "advanced-trade":
        return [
            AdvancedFeedConnection(i, settings, sink, metrics, backfiller) for i in range(count)
        ]
    recent = RecentFrames()
    return [
        FeedConnection(i, settings.exchange, settings.ingest, sink, metrics, recent)
        for i in range(count)
    ]


def http_verify(settings: IngestorSettings) -> Any:
    """httpx's `verify=`: the CA bundle setting, or the system's trust store."""
    ca_file = settings.exchange.ca_file
    if ca_file:
        import ssl

        return ssl.create_default_context(cafile=ca_file)
    return True
