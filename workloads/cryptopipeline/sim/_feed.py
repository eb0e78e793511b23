"""The feed: who subscribed to which (channel, product), and publishing frames to them.

The feed knows its clients only as `FeedClient`s: the connection code (`_subscriber.py`)
depends on the feed, never the other way round.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar

import orjson

from cryptopipeline.sim._events import MarketEvent
from cryptopipeline.sim._faults import FaultPlan
from cryptopipeline.sim._frames import text_frame
from cryptopipeline.sim._stats import SimStats


class FeedClient(Protocol):
    """What the feed needs of a client connection."""

    @property
    def congested(self) -> bool:
        """Above its high-water mark (max-speed mode waits for it to drain)."""
        ...

    def enqueue(self, frame: bytes) -> None: ...

    def request_close(self, code: int, reason: str) -> None: ...


ClientT = TypeVar("ClientT", bound=FeedClient)


class Feed(Generic[ClientT]):
    """Routes each market event's messages to the subscribers of its (channel, product)."""

    def __init__(self, *, faults: FaultPlan, stats: SimStats, seed: int) -> None:
        self.faults = faults
        self.stats = stats
        self.seed = seed
        self._index: dict[tuple[str, str], dict[ClientT, None]] = {}
        self.subscribers: dict[ClientT, None] = {}
        self.subscribe_count = 0
        self.subscribed = asyncio.Event()
        self.await_subscribers = 0

    def attach(self, subscriber: ClientT) -> None:
        self.subscribers[subscriber] = None

    def detach(self, subscriber: ClientT) -> None:
        self.subscribers.pop(subscriber, None)
        for key in list(self._index):
            members = self._index[key]
            members.pop(subscriber, None)
            if not members:
                del self._index[key]

    def add(self, subscriber: ClientT, channel: str, products: Iterable[str]) -> None:
        for product in products:
            self._index.setdefault((channel, product), {})[subscriber] = None

    def note_subscribe(self) -> None:
        """Count one accepted subscribe request (the market may be waiting for N of them)."""
        self.subscribe_count += 1
        if self.subscribe_count >= self.await_subscribers:
            self.subscribed.set()

    def remove(self, subscriber: ClientT, channel: str, products: Iterable[str]) -> None:
        for product in products:
            members = self._index.get((channel, product))
            if members is not None:
                members.pop(subscriber, None)
                if not members:
                    del self._index[(channel, product)]

    def publish(self, event: MarketEvent) -> None:
        """Encode each message once (only if someone listens) and queue it for its audience."""
        index = self._index
        for channel in event.channels:
            audience = index.get((channel, event.product_id))
            if audience:
                frame = text_frame(orjson.dumps(event.render(channel)))
                for subscriber in audience:
                    subscriber.enqueue(frame)

    def inject(self, channel: str, product_id: str, payload: bytes) -> int:
        """Send `payload` as it is (forged or hostile input, for tests and drills) to every
        subscriber of (channel, product); it is not a market event and enters no ground
        truth. Returns how many subscribers it was queued for."""
        audience = list(self._index.get((channel, product_id), ()))
        frame = text_frame(payload)
        for subscriber in audience:
            subscriber.enqueue(frame)
        return len(audience)

    def congested(self) -> list[ClientT]:
        """Subscribers above the high-water mark (max-speed mode waits for them)."""
        return [s for s in self.subscribers if s.congested]

    async def disconnect_all(self) -> int:
        """Close every client connection now; return how many were open."""
        subscribers = list(self.subscribers)
        for subscriber in subscribers:
            subscriber.request_close(1001, "disconnect requested")
        return len(subscribers)
