"""The single ordered path to Kafka: records enter in the order the sequencers release them
and leave through one writer, so no two coroutines can ever reorder a product's trades."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from cryptopipeline.ingestor._decode import TradeFrame


@dataclass(slots=True, frozen=True)
class OutRecord:
    topic: str
    key: str
    value: bytes
    timestamp_ms: int | None
    headers: tuple[tuple[str, bytes], ...]
    product: str
    kind: str  # trade | backfill | heartbeat | dead_letter
    receive_ns: int


@dataclass(slots=True)
class Pending:
    """A trade on its way to the outbox (a sequencer may hold it until its turn), with where
    and when it was received."""

    frame: TradeFrame
    connection: int
    receive_ns: int
    backfill: bool


def ingest_headers(
    receive_ns: int, connection: int, backfill: bool
) -> tuple[tuple[str, bytes], ...]:
    """The ingest metadata every record carries: receive time, connection, REST backfill."""
    return (
        ("receive_time_ns", str(receive_ns).encode()),
        ("connection_id", str(connection).encode()),
        ("backfill", b"true" if backfill else b"false"),
    )


class Outbox:
    """An unbounded FIFO whose producers call `put` synchronously (keeping order) and then
    `await room()` to feel backpressure once more than `bound` records wait."""

    def __init__(self, bound: int) -> None:
        self._items: deque[OutRecord] = deque()
        self._bound = bound
        self._nonempty = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def full(self) -> bool:
        return not self._room.is_set()

    def put(self, record: OutRecord) -> None:
        self._items.append(record)
        self._nonempty.set()
        if len(self._items) >= self._bound:
            self._room.clear()

    async def room(self) -> None:
        await self._room.wait()

    def close(self) -> None:
        """No more records: `get` returns None once the rest is taken."""
        self._closed = True
        self._nonempty.set()

    async def get(self) -> OutRecord | None:
        while not self._items:
            if self._closed:
                return None
            self._nonempty.clear()
            await self._nonempty.wait()
        record = self._items.popleft()
        if len(self._items) < self._bound:
            self._room.set()
        return record
