"""Per product and family, release trades exactly once and in trade-id order.

Trade ids are contiguous per product (+1 per trade), so anything below the next expected id
is a duplicate (another redundant connection, a repeated frame) and anything above it opens
a gap: later trades wait in a bounded buffer until the gap is filled, by a slower connection
or by REST backfill, or is given up after backfill found nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Gap:
    """Trade ids `first..last` (inclusive) have not been seen yet."""

    first: int
    last: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1


@dataclass(slots=True)
class Offer(Generic[T]):
    """The result of offering one trade: what may be published now, in order."""

    ready: list[T] = field(default_factory=list)
    duplicate: bool = False


class TradeSequencer(Generic[T]):
    """Orders the trades of one product and family by trade id; T carries the payload."""

    __slots__ = ("_next_id", "_pending", "max_pending")

    def __init__(self, next_id: int | None = None, max_pending: int = 100_000) -> None:
        self._next_id = next_id
        self._pending: dict[int, T] = {}
        self.max_pending = max_pending

    @property
    def next_id(self) -> int | None:
        """The trade id that is published next; None until the first trade is seen."""
        return self._next_id

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def overflowing(self) -> bool:
        return len(self._pending) >= self.max_pending

    def offer(self, trade_id: int, trade: T) -> Offer[T]:
        if self._next_id is None:
            self._next_id = trade_id
        if trade_id < self._next_id or trade_id in self._pending:
            return Offer(duplicate=True)
        if trade_id > self._next_id:
            self._pending[trade_id] = trade
            return Offer()
        ready = [trade]
        self._next_id = trade_id + 1
        self._drain(ready)
        return Offer(ready)

    def _drain(self, ready: list[T]) -> None:
        pending = self._pending
        next_id = self._next_id
        assert next_id is not None
        while pending:
            trade = pending.pop(next_id, None)
            if trade is None:
                break
            ready.append(trade)
            next_id += 1
        self._next_id = next_id

    def gap(self) -> Gap | None:
        """The first run of missing ids before a waiting trade, if any."""
        if not self._pending or self._next_id is None:
            return None
        return Gap(self._next_id, min(self._pending) - 1)

    def gap_to(self, last_trade_id: int) -> Gap | None:
        """Missing ids up to `last_trade_id` (a heartbeat's): trades never seen at all."""
        if self._next_id is None or last_trade_id < self._next_id:
            return None
        upper = min(self._pending) - 1 if self._pending else last_trade_id
        return Gap(self._next_id, min(upper, last_trade_id))

    def give_up(self, gap: Gap) -> list[T]:
        """Skip a gap nobody could fill (counted and logged by the caller); release what waits."""
        if self._next_id is None or gap.first != self._next_id:
            return []
        self._next_id = gap.last + 1
        ready: list[T] = []
        self._drain(ready)
        return ready

    def reset(self, next_id: int | None) -> None:
        """Forget everything: after the log was re-read, it alone says what landed."""
        self._next_id = next_id
        self._pending.clear()
