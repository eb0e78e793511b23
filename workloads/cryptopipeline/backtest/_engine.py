"""The backtest engine: raw feed messages or closed candles, in event time, through the
signaler's `PartitionEngine` and the trading package's planning, risk, sizing and paper broker.

Nothing here decides anything itself: candles and signals come from `PartitionEngine`, orders
from `trading.plan_signal`, fills from `trading.PaperBroker`, their events from
`trading.outcome_events`, positions from the `Blotter` (`trading.fold_event`). The clock is
the event clock of `trading.books`: a signal is decided at its candle's close and priced at
the book as of that close.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cryptopipeline.backtest._metrics import Metrics, compute_metrics
from cryptopipeline.coinbase import format_time
from cryptopipeline.market import Candle, Heartbeat, Rejected, Tick, parse_event
from cryptopipeline.records import TradeSignal
from cryptopipeline.signaler._engine import PartitionEngine
from cryptopipeline.strategies import StrategyConfig
from cryptopipeline.trading import (
    Blotter,
    Fill,
    OrderEventType,
    OrderRequest,
    PaperBroker,
    RiskEngine,
    RiskLimits,
    Side,
    TradingSettings,
    client_order_id_for,
)
from cryptopipeline.trading.books import BookHistory
from cryptopipeline.trading.orders import order_event
from cryptopipeline.trading.planning import PlanRejection, fold_event, outcome_events, plan_signal

Slippage = Literal["none", "bps", "half-spread"]
_BPS = Decimal(10_000)
_ZERO = Decimal(0)


class BacktestConfig(BaseModel):
    """What a backtest runs: strategies and candles as the signaler takes them, trading and
    risk as the bot takes them, and the fill model."""

    model_config = ConfigDict(extra="forbid")

    strategies: list[StrategyConfig] = Field(min_length=1)
    intervals_s: list[int] = Field(default_factory=lambda: [60])
    grace_s: float = Field(default=2.0, ge=0)
    trading: TradingSettings = Field(default_factory=TradingSettings)
    risk: RiskLimits = Field(default_factory=RiskLimits)
    fee_rate: Decimal = Field(default=Decimal("0.006"), ge=0, lt=1)
    """Taker fee as a fraction of notional (0.006 = 60 bps, the paper broker's default)."""
    slippage: Slippage = "none"
    slippage_bps: Decimal = Field(default=Decimal(0), ge=0)

    @field_validator("intervals_s")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if not value or any(v <= 0 for v in value):
            raise ValueError("intervals must be positive seconds, at least one")
        return sorted(set(value))

    @field_validator("trading")
    @classmethod
    def _market_only(cls, value: TradingSettings) -> TradingSettings:
        if value.order_type != "market":
            raise ValueError("the backtest fills market orders only (order_type: market)")
        return value


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill, with the candle and the signal that caused it."""

    time: str
    """RFC 3339 close time of the candle whose signal led to this order."""
    candle_start: str
    product_id: str
    strategy: str
    signal_id: str
    client_order_id: str
    side: Side
    size: Decimal
    price: Decimal
    fee: Decimal
    realized_pnl: Decimal | None
    """For a fill that reduced a position: its PnL net of its fee and its share of the
    entry fees; None for a fill that opened or added."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time, "candle_start": self.candle_start, "product_id": self.product_id,
            "strategy": self.strategy, "signal_id": self.signal_id,
            "client_order_id": self.client_order_id, "side": self.side.value,
            "size": str(self.size), "price": str(self.price), "fee": str(self.fee),
            "notional": str(self.size * self.price),
            "realized_pnl": None if self.realized_pnl is None else str(self.realized_pnl),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class EquityPoint:
    time_us: int
    equity: Decimal
    price: Decimal
    """The close of the candle that ended here (of the first product, for the chart)."""
    exposed: bool


@dataclass(slots=True)
class BacktestStats:
    records: int = 0
    ticks: int = 0
    heartbeats: int = 0
    ignored: int = 0
    rejected_input: dict[str, int] = field(default_factory=dict)
    candles: int = 0
    late_trades: int = 0
    signals: list[TradeSignal] = field(default_factory=list)
    rejections: dict[str, int] = field(default_factory=dict)
    orders: list[OrderRequest] = field(default_factory=list)


def _plain(value: Decimal) -> Decimal:
    """60.0000 as 60: the bot's settings spell fees in whole bps, and the fees it books carry
    the exponent of what they were computed from (the same money, the same digits)."""
    integral = value.to_integral_value()
    return integral if integral == value else value.normalize()


class Backtest:
    """Feed it raw messages (`on_message`) or closed candles (`on_candle`) in event order."""

    def __init__(self, config: BacktestConfig) -> None:
        self.config = config
        self.engine = PartitionEngine(config.intervals_s, config.grace_s, config.strategies)
        fee_bps = _plain(config.fee_rate * _BPS)
        slip = config.slippage_bps if config.slippage == "bps" else _ZERO
        self.broker = PaperBroker(slippage_bps=slip, maker_fee_bps=fee_bps, taker_fee_bps=fee_bps)
        self.blotter = Blotter(config.trading.starting_cash)
        self.risk = RiskEngine(config.risk)
        horizon = 2 * max(config.intervals_s) + config.grace_s + 60
        self.books = BookHistory(horizon_s=horizon)
        self.stats = BacktestStats()
        self.trades: list[Trade] = []
        self.equity: list[EquityPoint] = []
        self._primary = config.intervals_s[0]
        self._closes: dict[str, Decimal] = {}
        self._entry_fees: dict[str, Decimal] = {}
        self._spread = config.slippage == "half-spread"
        self._now_us = 0
        self._time_text = (-1, "")

    # ---- input -------------------------------------------------------------------------------

    def on_message(self, raw: bytes | str | Mapping[str, Any]) -> None:
        """One raw-topic body (Coinbase `ticker` / `heartbeat` JSON, or its parsed mapping)."""
        stats = self.stats
        stats.records += 1
        event = parse_event(raw)
        if isinstance(event, Tick):
            stats.ticks += 1
            price = event.price
            if self._spread:
                bid = event.best_bid or price
                ask = event.best_ask or price
                self.books.on_tick(event.product_id, event.time_us, bid, ask)
            else:
                self.books.on_tick(event.product_id, event.time_us, price, price)
        elif isinstance(event, Heartbeat):
            stats.heartbeats += 1
            self.books.on_heartbeat(event.product_id, event.time_us)
        out = self.engine.on_event(event)
        if isinstance(event, Rejected):
            if out.kind == "ignored":
                stats.ignored += 1
            else:
                stats.rejected_input[event.reason] = stats.rejected_input.get(event.reason, 0) + 1
            return
        stats.late_trades += out.late
        if not out.candles:
            return
        signals = iter(out.signals)
        pending = next(signals, None)
        for candle in out.candles:
            while (
                pending is not None
                and pending.window.start == format_time(candle.start_us)
                and (
                    pending.product_id == candle.product_id
                    and pending.window.interval_s == candle.interval_s
                )
            ):
                self._on_signal(pending, candle)
                pending = next(signals, None)
            self._candle_closed(candle)

    def on_candle(self, candle: Candle) -> None:
        """One closed candle (e.g. from a CSV): its close is the book at its end."""
        stats = self.stats
        stats.records += 1
        self.books.on_tick(candle.product_id, candle.end_us - 1, candle.close, candle.close)
        for signal in self.engine.on_candle(candle):
            self._on_signal(signal, candle)
        self._candle_closed(candle)

    # ---- the bot's rules, in event time -------------------------------------------------------

    def _on_signal(self, signal: TradeSignal, candle: Candle) -> None:
        stats = self.stats
        stats.signals.append(signal)
        coid = client_order_id_for(signal.signal_id)
        if self.blotter.decided(coid):
            return
        product = signal.product_id
        end_us = candle.end_us
        self._now_us = end_us
        book = self.books.as_of(product, end_us)
        if book is not None:
            self.blotter.portfolio.mark(product, book.mid)
        plan = plan_signal(
            self.config.trading, signal, book=None if book is None else (book.bid, book.ask),
            blotter=self.blotter, risk=self.risk, now=end_us / 1_000_000,
            last_tick_at=None if book is None else book.time_us / 1_000_000,
        )  # fmt: skip
        if coid not in self.blotter.orders:
            self._log(plan.received, OrderEventType.RECEIVED)
        order = plan.decision
        if isinstance(order, PlanRejection):
            stats.rejections[order.reason] = stats.rejections.get(order.reason, 0) + 1
            self._log(plan.received, OrderEventType.REJECTED, reason=order.reason,
                      detail=order.detail)  # fmt: skip
            return
        stats.orders.append(order)
        self._log(order, OrderEventType.SUBMITTED)
        if book is not None:
            self.broker.on_tick(product, book.bid, book.ask, format_time(book.time_us))
        update = self.broker.submit_now(order)
        for planned in outcome_events(self.blotter, order, update):
            if planned.fill is not None:
                self._trade(signal, candle, planned.fill)
            self._log(
                order, planned.event, exchange_id=planned.exchange_order_id, fill=planned.fill,
                reason=planned.reason, detail=planned.detail,
            )  # fmt: skip

    def _log(
        self,
        request: OrderRequest,
        event_type: OrderEventType,
        *,
        reason: str | None = None,
        detail: str | None = None,
        exchange_id: str | None = None,
        fill: Fill | None = None,
    ) -> None:
        """The order event the bot would write, folded as the bot folds it (at the close)."""
        if self._time_text[0] != self._now_us:
            self._time_text = (self._now_us, format_time(self._now_us))
        # trusted: the fields are the engine's own typed values, as the bot's are.
        event = order_event(
            request,
            event_type,
            time=self._time_text[1],
            broker=self.broker.name,
            reason=reason,
            detail=detail,
            exchange_id=exchange_id,
            fill=fill,
            trusted=True,
        )
        fold_event(self.blotter, self.risk, event, at=self._now_us / 1_000_000)

    def _trade(self, signal: TradeSignal, candle: Candle, fill: Fill) -> None:
        """Record a fill before the blotter books it (to see the position it changes)."""
        position = self.blotter.portfolio.positions.get(fill.product_id)
        held = position.quantity if position is not None else _ZERO
        entry = position.average_entry if position is not None else _ZERO
        entry_fees = self._entry_fees.get(fill.product_id, _ZERO)
        signed = fill.size if fill.side is Side.BUY else -fill.size
        realized: Decimal | None = None
        if held == 0 or (held > 0) == (signed > 0):
            self._entry_fees[fill.product_id] = entry_fees + fill.fee
        else:
            closed = min(abs(signed), abs(held))
            share = entry_fees * closed / abs(held)
            direction = 1 if held > 0 else -1
            realized = (fill.price - entry) * closed * direction - fill.fee - share
            remaining = entry_fees - share
            if abs(signed) > abs(held):  # flipped: the rest opens at this fill
                remaining = fill.fee * (abs(signed) - abs(held)) / abs(signed)
            self._entry_fees[fill.product_id] = remaining
        self.trades.append(
            Trade(
                time=signal.event_time,
                candle_start=signal.window.start,
                product_id=fill.product_id,
                strategy=signal.strategy,
                signal_id=signal.signal_id,
                client_order_id=fill.client_order_id,
                side=fill.side,
                size=fill.size,
                price=fill.price,
                fee=fill.fee,
                realized_pnl=realized,
            )
        )

    # ---- the equity curve ----------------------------------------------------------------------

    def _candle_closed(self, candle: Candle) -> None:
        self.stats.candles += 1
        self._closes[candle.product_id] = candle.close
        if candle.interval_s != self._primary:
            return
        portfolio = self.blotter.portfolio
        equity = portfolio.cash
        exposed = False
        for product, position in portfolio.positions.items():
            if position.quantity:
                exposed = True
                mark = self._closes.get(product, position.mark or position.average_entry)
                equity += position.quantity * mark
        point = EquityPoint(candle.end_us, equity, candle.close, exposed)
        if self.equity and self.equity[-1].time_us == candle.end_us:
            self.equity[-1] = point
        else:
            self.equity.append(point)

    def metrics(self) -> Metrics:
        """The run's metrics on the equity curve of the shortest candle interval."""
        closed = [t.realized_pnl for t in self.trades if t.realized_pnl is not None]
        return compute_metrics(
            self.config.trading.starting_cash,
            [p.equity for p in self.equity],
            [p.exposed for p in self.equity],
            self._primary,
            closed,
            len(self.trades),
            self.blotter.portfolio.fees,
        )
