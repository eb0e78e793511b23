"""What every broker offers the bot: submit, look up by client_order_id, cancel, poll, the
market's book tops, what a restart lost, and closing. The bot knows no broker by its class:
`trading.PaperBroker` and `CoinbaseBroker` are two implementations of this protocol."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol

from cryptopipeline.trading import BrokerUpdate, OrderRequest


class BrokerUnavailable(Exception):
    """The broker could not be reached (retries exhausted): the order's outcome is unknown
    and it must be looked up later, never sent again under another id."""


class Broker(Protocol):
    name: str

    async def submit(self, order: OrderRequest) -> BrokerUpdate:
        """Place the order; the answer's status says if it is open, filled or refused."""
        ...

    async def lookup(self, order: OrderRequest) -> BrokerUpdate | None:
        """The broker's state of an order by its client_order_id; None if it never arrived."""
        ...

    async def cancel(self, orders: Sequence[tuple[str, str | None]]) -> list[BrokerUpdate]:
        """Cancel open orders given as (client_order_id, exchange_order_id)."""
        ...

    async def poll(self, orders: Sequence[tuple[str, str | None]]) -> list[BrokerUpdate]:
        """News (fills, cancels) about these open orders; called with none too (a broker
        that has nothing to ask then answers at once)."""
        ...

    def on_tick(self, product_id: str, bid: Decimal, ask: Decimal, time: str) -> None:
        """The book top the bot trades at (`time`: the exchange time). A simulated venue fills
        against it; a real one has its own book and ignores it."""
        ...

    async def lost_on_restart(self, orders: Sequence[tuple[str, str | None]]) -> list[BrokerUpdate]:
        """Once at start, the orders the log says are open: the answers for those the broker
        no longer holds because this process restarted (none for a real exchange)."""
        ...

    async def aclose(self) -> None:
        """Release connections; the bot calls it once, last."""
        ...
