"""Filling trade-id gaps: give a slower socket `gap_grace_s` to deliver the missing trades,
then fetch them over REST; after `gap_attempts` fruitless tries, skip the gap (counted as
unfilled trades) so the product's later trades are not held forever."""

from __future__ import annotations

import asyncio
import logging
import time

from cryptopipeline.ingestor._backfill import BackfillError, TradeBackfiller
from cryptopipeline.ingestor._intake import Intake, Key
from cryptopipeline.ingestor._metrics import IngestorMetrics
from cryptopipeline.ingestor._outbox import Pending
from cryptopipeline.ingestor._sequencer import Gap

log = logging.getLogger(__name__)


class GapFiller:
    """The gap workers of one session: one `run(key)` per product and family."""

    def __init__(
        self, intake: Intake, backfiller: TradeBackfiller, metrics: IngestorMetrics
    ) -> None:
        self._intake = intake
        self._backfiller = backfiller
        self._metrics = metrics
        self._ingest = intake.settings.ingest

    def current_gap(self, key: Key) -> Gap | None:
        """The first gap of `key`: between released and waiting trades, or up to the last
        trade id a heartbeat announced."""
        sequencer = self._intake.sequencers[key]
        gap = sequencer.gap()
        heartbeat_trade = self._intake.last_heartbeat_trade
        if gap is None and key[0] in heartbeat_trade:
            gap = sequencer.gap_to(heartbeat_trade[key[0]])
        return gap

    async def run(self, key: Key) -> None:
        """Fill the gaps of one product and family: wait for a slower socket, then REST."""
        product, family = key
        signal = self._intake.gap_signals[key]
        sequencer = self._intake.sequencers[key]
        ingest = self._ingest
        attempts = 0
        while True:
            await signal.wait()
            signal.clear()
            if not sequencer.overflowing:
                await asyncio.sleep(ingest.gap_grace_s)  # a deliberate grace period
            gap = self.current_gap(key)
            if gap is None:
                attempts = 0
                continue
            if attempts == 0:
                self._metrics.gaps.labels(product).inc()
                log.info(
                    "trade-id gap; backfilling",
                    extra={"product_id": product, "first": gap.first, "last": gap.last},
                )
            try:
                trades = await self._backfiller.fetch(product, family, gap)
            except BackfillError as exc:
                log.warning("backfill failed", extra={"product_id": product, "error": str(exc)})
                trades = []
            now = time.time_ns()
            for trade in trades:
                offer = sequencer.offer(trade.trade_id, Pending(trade, -1, now, backfill=True))
                if not offer.duplicate:
                    self._metrics.trades_backfilled.labels(product).inc()
                for ready in offer.ready:
                    self._intake.emit_trade(ready)
            still = self.current_gap(key)
            if still is not None and still.first == gap.first:
                attempts += 1
                if attempts >= ingest.gap_attempts:
                    self._give_up(key, still)
                    attempts = 0
            else:
                attempts = 0
            self._metrics.pending_trades.labels(product).set(sequencer.pending)
            if self.current_gap(key) is not None:
                signal.set()
            await self._intake.room()

    def _give_up(self, key: Key, gap: Gap) -> None:
        product = key[0]
        self._metrics.trades_unfilled.labels(product).inc(gap.size)
        log.error(
            "gap could not be filled by any socket or by REST; skipping it",
            extra={"product_id": product, "first": gap.first, "last": gap.last},
        )
        for ready in self._intake.sequencers[key].give_up(gap):
            self._intake.emit_trade(ready)
