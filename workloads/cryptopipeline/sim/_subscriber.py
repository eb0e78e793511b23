"""One client connection: its subscriptions, its outgoing queue and the writer that drains it.

The market never waits on one connection in paced mode: frames go to a bounded queue, and a
client that falls `max_queue` frames behind is cut off (as Coinbase does with slow consumers).
In max-speed mode the market waits instead, so nothing is lost. Faults are applied here,
per connection, to feed frames only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from cryptopipeline.coinbase import (
    CHANNELS,
    FeedRequest,
    FeedRequestError,
    error_message,
    parse_feed_request,
    subscriptions_message,
)
from cryptopipeline.sim._faults import MALFORMED_FRAME, FaultDice, FaultPlan
from cryptopipeline.sim._feed import Feed
from cryptopipeline.sim._frames import ReplyFrame, text_frame

if TYPE_CHECKING:
    from cryptopipeline.sim._ledger import TradeLedger

log = logging.getLogger("cryptopipeline.sim")

_NO_FAULTS = FaultPlan()
_MALFORMED = text_frame(MALFORMED_FRAME)


class Subscriber:
    """A WebSocket client of the feed."""

    def __init__(
        self,
        ws: ServerConnection,
        index: int,
        feed: Feed[Any],
        ledger: TradeLedger,
        *,
        paced: bool,
        max_queue: int,
        high_water: int,
    ) -> None:
        self.ws = ws
        self.index = index
        self.feed = feed
        self.ledger = ledger
        self.paced = paced
        self.max_queue = max_queue
        self.high_water = high_water
        self.channels: dict[str, list[str]] = {}
        self.queue: list[bytes] = []
        self.wakeup = asyncio.Event()
        self.drained = asyncio.Event()
        self.drained.set()
        self.congested = False
        self.stalled = False
        self.closed = False
        self.feed_frames_sent = 0
        self.dice = FaultDice(feed.seed, index)
        self.connected_at = asyncio.get_running_loop().time()
        self._close_request: tuple[int, str] | None = None

    # -- the market side (synchronous, hot path) --------------------------------------------

    def enqueue(self, frame: bytes) -> None:
        if self.closed:
            return
        queue = self.queue
        queue.append(frame)
        if len(queue) == 1:
            self.wakeup.set()
        if len(queue) >= self.high_water:
            if self.paced:
                if len(queue) > self.max_queue and not self.stalled:
                    self._evict()
            elif not self.congested:
                self.congested = True
                self.drained.clear()

    def _evict(self) -> None:
        """Cut off a client that cannot keep up, without waiting for it."""
        self.feed.stats.slow_consumer_closes += 1
        log.warning("closing slow consumer", extra={"connection": self.index})
        self._mark_closed()
        self.ws.transport.abort()

    def _mark_closed(self) -> None:
        self.closed = True
        self.queue = []
        self.congested = False
        self.drained.set()
        self.wakeup.set()

    def request_close(self, code: int, reason: str) -> None:
        """Ask the writer to close the connection once what is already queued is written."""
        self._close_request = (code, reason)
        self.wakeup.set()

    # -- control messages --------------------------------------------------------------------

    def send_control(self, message: object) -> None:
        self.enqueue(ReplyFrame(text_frame(orjson.dumps(message))))

    def handle_text(self, raw: str | bytes) -> None:
        try:
            request = parse_feed_request(raw)
            self._apply(request)
        except FeedRequestError as exc:
            self.feed.stats.bad_requests += 1
            self.send_control(error_message(exc.message, exc.reason))

    def _apply(self, request: FeedRequest) -> None:
        _check_request(request, self.ledger)
        if request.type == "subscribe":
            newly_matched: list[str] = []
            for name, products in request.channels.items():
                current = self.channels.setdefault(name, [])
                fresh = [p for p in products if p not in current]
                current.extend(fresh)
                self.feed.add(self, name, fresh)
                if name == "matches":
                    newly_matched.extend(fresh)
            self.send_control(subscriptions_message(self.channels))
            self.feed.note_subscribe()
            for product in newly_matched:
                last = self.ledger.last_match(product)
                if last is not None:
                    self.send_control(last)
        else:
            for name, products in request.channels.items():
                current = self.channels.get(name, [])
                gone = list(current) if not products else [p for p in products if p in current]
                self.feed.remove(self, name, gone)
                remaining = [p for p in current if p not in gone]
                if remaining:
                    self.channels[name] = remaining
                else:
                    self.channels.pop(name, None)
            self.send_control(subscriptions_message(self.channels))

    async def read_requests(self) -> None:
        """Answer every client frame until the connection closes."""
        try:
            async for raw in self.ws:
                if isinstance(raw, bytes):
                    self.feed.stats.bad_requests += 1
                    self.send_control(
                        error_message("Failed to parse message", "binary frames are not supported")
                    )
                else:
                    self.handle_text(raw)
        except ConnectionClosed:
            pass

    # -- the writer --------------------------------------------------------------------------

    async def write_frames(self) -> None:
        """Drain the queue to the socket, batch by batch, honouring TCP flow control."""
        ws = self.ws
        transport = ws.transport
        loop = asyncio.get_running_loop()
        try:
            while not self.closed:
                if not self.queue and self._close_request is None:
                    self.wakeup.clear()
                    plan = self._plan()
                    deadline = plan.next_deadline(loop.time() - self.connected_at)
                    if deadline is None:
                        await self.wakeup.wait()
                    else:
                        timeout = deadline - (loop.time() - self.connected_at)
                        try:
                            async with asyncio.timeout(max(timeout, 0.0)):
                                await self.wakeup.wait()
                        except TimeoutError:
                            pass
                if self.closed:
                    return
                plan = self._plan()
                if plan.has_timers and await self._timed_faults(plan):
                    return
                if ws.protocol.state is not State.OPEN or transport.is_closing():
                    self._mark_closed()
                    return
                batch, self.queue = self.queue, []
                if batch:
                    if plan.alters_messages:
                        if await self._write_with_faults(batch, plan):
                            return
                    else:
                        transport.write(b"".join(batch))
                        self.feed.stats.frames_sent += len(batch)
                        self.feed_frames_sent += len(batch)
                    await ws.drain()
                    if self.congested and len(self.queue) < self.high_water:
                        self.congested = False
                        self.drained.set()
                if self._close_request is not None and not self.queue:
                    await self._close(*self._close_request)
                    return
        finally:
            self._mark_closed()

    def _plan(self) -> FaultPlan:
        plan = self.feed.faults
        return plan if plan.applies_to(self.index) else _NO_FAULTS

    async def _timed_faults(self, plan: FaultPlan) -> bool:
        """Apply close-every-seconds and stalls; True when the connection was closed."""
        loop = asyncio.get_running_loop()
        elapsed = loop.time() - self.connected_at
        if plan.close_every_seconds and elapsed >= plan.close_every_seconds:
            self.feed.stats.fault_closes += 1
            await self._close(1000, "fault injection: close every seconds")
            return True
        end = plan.stall_end(elapsed)
        if end is not None:
            self.feed.stats.fault_stalls += 1
            self.stalled = True
            try:
                await asyncio.sleep(end - elapsed)
            finally:
                self.stalled = False
        return False

    async def _write_with_faults(self, batch: list[bytes], plan: FaultPlan) -> bool:
        """Write a batch frame by frame through the dice; True when the connection was closed."""
        stats = self.feed.stats
        transport = self.ws.transport
        out: list[bytes] = []
        for frame in batch:
            if isinstance(frame, ReplyFrame):
                out.append(frame)
                continue
            outcome = self.dice.outcome(plan)
            if outcome == "drop":
                stats.frames_dropped += 1
                continue
            if outcome == "malformed":
                stats.frames_malformed += 1
                out.append(_MALFORMED)
            else:
                out.append(frame)
                if outcome == "duplicate":
                    stats.frames_duplicated += 1
                    out.append(frame)
            self.feed_frames_sent += 1
            if plan.close_every_messages and self.feed_frames_sent >= plan.close_every_messages:
                self._write(out)
                stats.fault_closes += 1
                await self._close(1000, "fault injection: close every messages")
                return True
        if plan.write_delay:
            for frame in out:
                await asyncio.sleep(plan.write_delay)
                if transport.is_closing():
                    return True
                transport.write(frame)
                stats.frames_sent += 1
        else:
            self._write(out)
        return False

    def _write(self, frames: list[bytes]) -> None:
        if frames and not self.ws.transport.is_closing():
            self.ws.transport.write(b"".join(frames))
            self.feed.stats.frames_sent += len(frames)

    async def _close(self, code: int, reason: str) -> None:
        self._mark_closed()
        try:
            async with asyncio.timeout(2):
                await self.ws.close(code, reason)
        except TimeoutError:
            self.ws.transport.abort()


def _check_request(request: FeedRequest, ledger: TradeLedger) -> None:
    """Refuse, as Coinbase does, a channel it does not have, a product it does not list, or a
    subscribe without products."""
    failure = "Failed to subscribe" if request.type == "subscribe" else "Failed to unsubscribe"
    for name, products in request.channels.items():
        if name not in CHANNELS:
            raise FeedRequestError(failure, f"{name} is not a valid channel")
        for product in products:
            if not ledger.has_product(product):
                raise FeedRequestError(failure, f"{product} is not a valid product")
        if request.type == "subscribe" and not products:
            raise FeedRequestError(failure, f"No product ids provided for {name}")
