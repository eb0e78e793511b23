"""Risk limits, checked before every order; each rejection carries a reason code and a detail.

Limits: kill switch, stale price, max open orders, cooldown after a fill, max daily loss
(realized + unrealized, net of fees, measured from equity at the daily reset hour in UTC),
max order notional, max position notional per product. Time is passed in (seconds since the
epoch), so the same checks serve live runs, replays and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from cryptopipeline.trading.orders import Side

_DAY_S = 86_400


class RejectReason(StrEnum):
    KILL_SWITCH = "kill_switch"
    STALE_PRICE = "stale_price"
    NO_PRICE = "no_price"
    MAX_OPEN_ORDERS = "max_open_orders"
    COOLDOWN = "cooldown"
    MAX_DAILY_LOSS = "max_daily_loss"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    MAX_POSITION = "max_position"
    BELOW_MIN_SIZE = "below_min_size"
    NO_POSITION = "no_position"


class RiskLimits(BaseModel):
    """Every limit is configuration (CRYPTOPIPELINE_RISK__*)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_position_notional: Decimal = Field(default=Decimal("1000"), gt=0)
    max_position_notional_by_product: dict[str, Annotated[Decimal, Field(gt=0)]] = Field(
        default_factory=dict
    )
    max_order_notional: Decimal = Field(default=Decimal("250"), gt=0)
    max_daily_loss: Decimal = Field(default=Decimal("100"), gt=0)
    daily_reset_hour_utc: int = Field(default=0, ge=0, le=23)
    max_open_orders: int = Field(default=5, ge=0)
    cooldown_after_fill_s: float = Field(default=0.0, ge=0)
    stale_price_s: float = Field(default=10.0, gt=0)

    def position_limit(self, product_id: str) -> Decimal:
        return self.max_position_notional_by_product.get(product_id, self.max_position_notional)


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: RejectReason
    detail: str


class RiskEngine:
    """Holds the state limits need between orders: kill switch, fills' times, the day's start."""

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self.killed = False
        self.kill_reason = ""
        self._last_fill_at: dict[str, float] = {}
        self._day: int | None = None
        self._day_start_equity = Decimal(0)

    def kill(self, reason: str) -> None:
        self.killed = True
        self.kill_reason = reason

    def release(self) -> None:
        """Undo `kill` (an operator's explicit decision; the bot records it first)."""
        self.killed = False
        self.kill_reason = ""

    def note_fill(self, product_id: str, at: float) -> None:
        previous = self._last_fill_at.get(product_id)
        if previous is None or at > previous:
            self._last_fill_at[product_id] = at

    def daily_loss(self, now: float, equity: Decimal) -> Decimal:
        """Loss since the last reset (positive = lost money); the first call of a day resets."""
        day = int((now - self.limits.daily_reset_hour_utc * 3600) // _DAY_S)
        if day != self._day:
            self._day = day
            self._day_start_equity = equity
        return self._day_start_equity - equity

    def check(
        self,
        *,
        product_id: str,
        side: Side,
        notional: Decimal,
        position_notional: Decimal,
        open_orders: int,
        equity: Decimal,
        now: float,
        last_tick_at: float | None,
    ) -> Rejection | None:
        """None if the order may go; else the first limit it breaks.

        `position_notional` is the signed position value (quantity * price) before the order;
        the position limit only stops orders that grow the exposure beyond it.
        """
        limits = self.limits
        if self.killed:
            return Rejection(RejectReason.KILL_SWITCH, f"kill switch tripped: {self.kill_reason}")
        if last_tick_at is None:
            return Rejection(RejectReason.NO_PRICE, f"no tick seen for {product_id}")
        age = now - last_tick_at
        if age > limits.stale_price_s:
            return Rejection(
                RejectReason.STALE_PRICE,
                f"last {product_id} tick {age:.1f}s old > {limits.stale_price_s}s",
            )
        if open_orders >= limits.max_open_orders:
            return Rejection(
                RejectReason.MAX_OPEN_ORDERS,
                f"{open_orders} open orders >= {limits.max_open_orders}",
            )
        last_fill = self._last_fill_at.get(product_id)
        if last_fill is not None and now - last_fill < limits.cooldown_after_fill_s:
            return Rejection(
                RejectReason.COOLDOWN,
                f"{product_id} filled {now - last_fill:.1f}s ago "
                f"< cooldown {limits.cooldown_after_fill_s}s",
            )
        loss = self.daily_loss(now, equity)
        if loss >= limits.max_daily_loss:
            return Rejection(
                RejectReason.MAX_DAILY_LOSS, f"daily loss {loss} >= {limits.max_daily_loss}"
            )
        if notional > limits.max_order_notional:
            return Rejection(
                RejectReason.MAX_ORDER_NOTIONAL,
                f"order notional {notional} > {limits.max_order_notional}",
            )
        delta = notional if side is Side.BUY else -notional
        after = position_notional + delta
        limit = limits.position_limit(product_id)
        if abs(after) > limit and abs(after) > abs(position_notional):
            return Rejection(
                RejectReason.MAX_POSITION,
                f"{product_id} position notional {abs(after)} after the order > {limit}",
            )
        return None
