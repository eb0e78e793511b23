"""Which trade ids the ingestor believes (docs/ingestor.md, "Forged or broken ids").

A trade id (or a heartbeat's `last_trade_id`) more than `max_trade_id_jump` above the
highest id trusted for its product is a suspect: it waits aside, never touching a sequencer,
until the exchange's REST API confirms that such a trade exists; unconfirmed, it is
dead-lettered and counted. One forged frame can then neither skip a gap nor make every real
trade after it look like a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from cryptopipeline.ingestor._backfill import BackfillError, TradeBackfiller
from cryptopipeline.ingestor._decode import Family, HeartbeatFrame, Reject, RejectedFrame
from cryptopipeline.ingestor._metrics import IngestorMetrics
from cryptopipeline.ingestor._outbox import OutRecord, Pending
from cryptopipeline.ingestor._settings import IngestSettings

log = logging.getLogger(__name__)

_REST_LAG_IDS = 1_000
"""A suspect id is confirmed if it is at most this far above REST's newest trade id: REST
may trail the feed by a moment (a second of the busiest product is far fewer trades), and a
forged jump is far more than this (max_trade_id_jump, 100,000 by default)."""


@dataclass(slots=True)
class Suspect:
    """A trade or heartbeat whose id is implausibly far ahead, waiting for REST to confirm."""

    trade_id: int
    trade: Pending | None
    heartbeat: HeartbeatFrame | None
    connection: int
    receive_ns: int


class SuspectSink(Protocol):
    """Where confirmed suspects go back in, and unconfirmed ones go out (the intake)."""

    def on_trade(self, pending: Pending) -> None: ...

    def on_heartbeat(self, frame: HeartbeatFrame, connection: int, receive_ns: int) -> None: ...

    def dead_letter(self, frame: RejectedFrame, connection: int, receive_ns: int) -> OutRecord: ...

    async def room(self) -> None: ...


class TrustedIds:
    """Per product: the highest trade id known real, and the suspects waiting above it."""

    def __init__(
        self,
        products: Iterable[str],
        ingest: IngestSettings,
        metrics: IngestorMetrics,
        sink: SuspectSink,
    ) -> None:
        self._products = list(products)
        self._ingest = ingest
        self._metrics = metrics
        self._sink = sink
        self._jump = ingest.max_trade_id_jump
        self._trusted: dict[str, int] = {}  # per product: the highest trade id known real
        self._suspects: dict[str, list[Suspect]] = {p: [] for p in self._products}
        self._signals: dict[str, asyncio.Event] = {}

    def reset(self, last: Mapping[tuple[str, Family], int]) -> None:
        """A new session: trust what the log holds (`last` published id per key), no suspects."""
        self._trusted = {}
        for (product, _), trade_id in last.items():
            self._trusted[product] = max(trade_id, self._trusted.get(product, -1))
        self._suspects = {p: [] for p in self._products}
        self._signals = {p: asyncio.Event() for p in self._products}

    def admits(self, product: str, trade_id: int) -> bool:
        """True, raising the trusted id if `trade_id` is above it, unless it is implausibly
        far above it: then False, and the caller must `hold` the trade."""
        trusted = self._trusted.get(product)
        if trusted is None or trade_id > trusted:
            if trusted is not None and trade_id - trusted > self._jump:
                return False
            self._trusted[product] = trade_id
        return True

    def implausible(self, product: str, trade_id: int) -> bool:
        """`trade_id` is too far above the trusted id to believe without REST (heartbeats)."""
        trusted = self._trusted.get(product)
        return trusted is not None and trade_id - trusted > self._jump

    def oldest_waiting_ns(self, product: str) -> int | None:
        """When the longest-waiting suspect of `product` was received, if one waits."""
        suspects = self._suspects[product]
        return suspects[0].receive_ns if suspects else None

    def hold(self, product: str, suspect: Suspect) -> None:
        suspects = self._suspects[product]
        if len(suspects) >= self._ingest.max_pending_trades:
            self._reject(product, suspect, "too many suspects wait for confirmation")
            return
        if not suspects:
            log.warning(
                "trade id implausibly far ahead; confirming over REST before trusting it",
                extra={
                    "product_id": product,
                    "trade_id": suspect.trade_id,
                    "trusted": self._trusted.get(product),
                    "max_trade_id_jump": self._jump,
                },
            )
        suspects.append(suspect)
        self._signals[product].set()

    def _reject(self, product: str, suspect: Suspect, why: str) -> None:
        self._metrics.implausible_ids.labels(product).inc()
        frame = suspect.trade.frame if suspect.trade is not None else suspect.heartbeat
        assert frame is not None
        log.warning(
            "implausible trade id dead-lettered",
            extra={"product_id": product, "trade_id": suspect.trade_id, "why": why},
        )
        self._sink.dead_letter(
            RejectedFrame(
                Reject.IMPLAUSIBLE_TRADE_ID,
                f"id {suspect.trade_id} vs trusted {self._trusted.get(product)}: {why}",
                frame.raw,
                product,
            ),
            suspect.connection,
            suspect.receive_ns,
        )

    async def confirm(self, product: str, backfiller: TradeBackfiller) -> None:
        """Ask REST for the newest trade id; let confirmed suspects in, dead-letter the rest."""
        signal = self._signals[product]
        while True:
            await signal.wait()
            signal.clear()
            if not self._suspects[product]:
                continue
            try:
                latest = await backfiller.latest_trade_id(product)
            except BackfillError as exc:
                log.warning(
                    "cannot confirm a suspect trade id yet (the product waits)",
                    extra={"product_id": product, "error": str(exc)[:300]},
                )
                await asyncio.sleep(max(self._ingest.gap_grace_s, 0.5))
                signal.set()
                continue
            suspects, self._suspects[product] = self._suspects[product], []
            for suspect in sorted(suspects, key=lambda s: s.trade_id):
                if latest is not None and suspect.trade_id <= latest + _REST_LAG_IDS:
                    self._trusted[product] = max(
                        suspect.trade_id, self._trusted.get(product, suspect.trade_id)
                    )
                    if suspect.trade is not None:
                        self._sink.on_trade(suspect.trade)
                    elif suspect.heartbeat is not None:
                        self._sink.on_heartbeat(
                            suspect.heartbeat, suspect.connection, suspect.receive_ns
                        )
                else:
                    self._reject(product, suspect, f"the exchange's newest trade id is {latest}")
            await self._sink.room()
