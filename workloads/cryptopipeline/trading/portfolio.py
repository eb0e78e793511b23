"""Positions, average entry, realized and unrealized PnL, fees, cash and equity — all Decimal.

A fill moves cash by `-side * size * price - fee`. Realized PnL is gross of fees (fees are
their own line); `net_pnl = realized + unrealized - fees` and `equity = cash + sum(qty * mark)`.
Applying the same fill twice (same `fill_id`) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cryptopipeline.trading.orders import Fill, Side

ZERO = Decimal(0)


@dataclass(slots=True)
class Position:
    product_id: str
    quantity: Decimal = ZERO
    """Signed base quantity: positive long, negative short."""
    average_entry: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    mark: Decimal | None = None

    @property
    def unrealized_pnl(self) -> Decimal:
        if self.mark is None or self.quantity == 0:
            return ZERO
        return (self.mark - self.average_entry) * self.quantity

    @property
    def notional(self) -> Decimal:
        price = self.mark if self.mark is not None else self.average_entry
        return abs(self.quantity) * price


class Portfolio:
    """The account in one quote currency (USD by default)."""

    def __init__(self, starting_cash: Decimal, quote_currency: str = "USD") -> None:
        self.starting_cash = starting_cash
        self.cash = starting_cash
        self.quote_currency = quote_currency
        self.positions: dict[str, Position] = {}
        self._fill_ids: set[str] = set()

    def position(self, product_id: str) -> Position:
        position = self.positions.get(product_id)
        if position is None:
            position = self.positions[product_id] = Position(product_id)
        return position

    def quantity(self, product_id: str) -> Decimal:
        position = self.positions.get(product_id)
        return position.quantity if position is not None else ZERO

    def has_fill(self, fill_id: str) -> bool:
        return fill_id in self._fill_ids

    def apply_fill(self, fill: Fill) -> bool:
        """Book a fill; False (and nothing changes) if this fill id was booked before."""
        if fill.fill_id in self._fill_ids:
            return False
        self._fill_ids.add(fill.fill_id)
        position = self.position(fill.product_id)
        signed = fill.size if fill.side is Side.BUY else -fill.size
        self.cash -= signed * fill.price + fill.fee
        position.fees += fill.fee
        old = position.quantity
        new = old + signed
        if old == 0 or (old > 0) == (signed > 0):
            # opening or adding: a new weighted average entry
            position.average_entry = (old * position.average_entry + signed * fill.price) / new
        else:
            closed = min(abs(signed), abs(old))
            direction = 1 if old > 0 else -1
            position.realized_pnl += (fill.price - position.average_entry) * closed * direction
            if new == 0:
                position.average_entry = ZERO
            elif (new > 0) != (old > 0):  # flipped: the remainder opened at this price
                position.average_entry = fill.price
        position.quantity = new
        if position.mark is None:
            position.mark = fill.price
        return True

    def mark(self, product_id: str, price: Decimal) -> None:
        """The latest price of a product (mid or last), for unrealized PnL and equity."""
        self.position(product_id).mark = price

    @property
    def realized_pnl(self) -> Decimal:
        return sum((p.realized_pnl for p in self.positions.values()), ZERO)

    @property
    def unrealized_pnl(self) -> Decimal:
        return sum((p.unrealized_pnl for p in self.positions.values()), ZERO)

    @property
    def fees(self) -> Decimal:
        return sum((p.fees for p in self.positions.values()), ZERO)

    @property
    def net_pnl(self) -> Decimal:
        return self.realized_pnl + self.unrealized_pnl - self.fees

    @property
    def equity(self) -> Decimal:
        value = self.cash
        for position in self.positions.values():
            if position.quantity:
                price = position.mark if position.mark is not None else position.average_entry
                value += position.quantity * price
        return value

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state (Decimals as strings)."""
        return {
            "quote_currency": self.quote_currency,
            "starting_cash": str(self.starting_cash),
            "cash": str(self.cash),
            "equity": str(self.equity),
            "realized_pnl": str(self.realized_pnl),
            "unrealized_pnl": str(self.unrealized_pnl),
            "fees": str(self.fees),
            "net_pnl": str(self.net_pnl),
            "positions": {
                p.product_id: {
                    "quantity": str(p.quantity),
                    "average_entry": str(p.average_entry),
                    "realized_pnl": str(p.realized_pnl),
                    "unrealized_pnl": str(p.unrealized_pnl),
                    "fees": str(p.fees),
                    "mark": None if p.mark is None else str(p.mark),
                }
                for p in self.positions.values()
            },
        }
