"""What every broker offers the bot: submit, look up by client_order_id, cancel, poll."""

from __future__ import annotations

from collections.abc import Sequence
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
        """News (fills, cancels) about these open orders."""
        ...
