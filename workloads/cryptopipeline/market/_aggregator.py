"""Trades into candles by exchange event time: windows close on a per-product watermark."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Context, Decimal
from typing import Any

from cryptopipeline.market._candle import Candle

_NO_TIME = -(1 << 62)
_NEVER = 1 << 62
_VWAP_CONTEXT = Context(prec=28)
_STATE_VERSION = 1


class _Window:
    """The running OHLCV of one open window; mutated in place on the hot path."""

    __slots__ = (
        "close",
        "close_id",
        "close_time",
        "count",
        "end_us",
        "high",
        "low",
        "notional",
        "open",
        "open_id",
        "open_time",
        "start_us",
        "trade_ids",
        "volume",
    )

    def __init__(self, start_us: int, end_us: int) -> None:
        self.start_us = start_us
        self.end_us = end_us
        self.count = 0
        self.trade_ids: set[int] = set()
        zero = Decimal(0)
        self.open = self.high = self.low = self.close = zero
        self.volume = self.notional = zero
        self.open_time = self.close_time = 0
        self.open_id = self.close_id = 0

    def candle(self, product_id: str, interval_s: int) -> Candle:
        return Candle(
            product_id=product_id,
            interval_s=interval_s,
            start_us=self.start_us,
            end_us=self.end_us,
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=self.volume,
            vwap=_VWAP_CONTEXT.divide(self.notional, self.volume),
            trade_count=self.count,
            first_trade_id=self.open_id,
            last_trade_id=self.close_id,
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "start_us": self.start_us,
            "end_us": self.end_us,
            "count": self.count,
            "trade_ids": sorted(self.trade_ids),
            "open": str(self.open),
            "high": str(self.high),
            "low": str(self.low),
            "close": str(self.close),
            "volume": str(self.volume),
            "notional": str(self.notional),
            "open_time": self.open_time,
            "open_id": self.open_id,
            "close_time": self.close_time,
            "close_id": self.close_id,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _Window:
        window = cls(int(state["start_us"]), int(state["end_us"]))
        window.count = int(state["count"])
        window.trade_ids = {int(t) for t in state["trade_ids"]}
        for key in ("open", "high", "low", "close", "volume", "notional"):
            setattr(window, key, Decimal(state[key]))
        for key in ("open_time", "open_id", "close_time", "close_id"):
            setattr(window, key, int(state[key]))
        return window


class _Series:
    """One product at one interval: its open windows, oldest first (usually one or two)."""

    __slots__ = ("current", "interval_s", "interval_us", "windows")

    def __init__(self, interval_s: int) -> None:
        self.interval_s = interval_s
        self.interval_us = interval_s * 1_000_000
        self.windows: list[_Window] = []
        self.current: _Window | None = None

    def window(self, start_us: int) -> _Window:
        """The open window starting at `start_us`, created in order if it is new."""
        windows = self.windows
        for index, window in enumerate(windows):
            if window.start_us == start_us:
                return window
            if window.start_us > start_us:
                created = _Window(start_us, start_us + self.interval_us)
                windows.insert(index, created)
                return created
        created = _Window(start_us, start_us + self.interval_us)
        windows.append(created)
        self.current = created
        return created


class _Product:
    __slots__ = ("next_close_us", "series", "watermark_us")

    def __init__(self, intervals_s: Sequence[int]) -> None:
        self.watermark_us = _NO_TIME
        self.next_close_us = _NEVER
        self.series = [_Series(interval) for interval in intervals_s]


class CandleAggregator:
    """Folds trades into candles per product and interval, by exchange event time only.

    A window `[start, start + interval)` closes once the product's event time (the latest
    trade or heartbeat time seen for it) reaches `end + grace`. A trade whose window has
    already closed is late: counted in `late_trades` and dropped, never reopening it. A
    trade id already in its window is a duplicate: counted in `duplicate_trades`, dropped.
    A window without trades produces no candle. Same events in, same candles out.
    """

    __slots__ = ("_grace_us", "_intervals_s", "_products", "duplicate_trades", "late_trades")

    def __init__(self, intervals_s: Sequence[int] = (60,), grace_s: float = 2.0) -> None:
        intervals = sorted({int(i) for i in intervals_s})
        if not intervals or intervals[0] <= 0:
            raise ValueError(f"intervals_s must be positive seconds, got {list(intervals_s)}")
        if grace_s < 0:
            raise ValueError(f"grace_s must be >= 0, got {grace_s}")
        self._intervals_s = intervals
        self._grace_us = round(grace_s * 1_000_000)
        self._products: dict[str, _Product] = {}
        self.late_trades = 0
        self.duplicate_trades = 0

    @property
    def intervals_s(self) -> tuple[int, ...]:
        return tuple(self._intervals_s)

    @property
    def grace_s(self) -> float:
        return self._grace_us / 1_000_000

    def watermark_us(self, product_id: str) -> int | None:
        """The product's event time so far (None before its first event)."""
        product = self._products.get(product_id)
        if product is None or product.watermark_us == _NO_TIME:
            return None
        return product.watermark_us

    def on_trade(
        self, product_id: str, trade_id: int, time_us: int, price: Decimal, size: Decimal
    ) -> list[Candle]:
        """Fold one trade in; return the candles its event time closed, oldest first."""
        product = self._products.get(product_id)
        if product is None:
            product = self._products[product_id] = _Product(self._intervals_s)
        watermark = product.watermark_us
        grace = self._grace_us
        late = duplicate = False
        for series in product.series:
            interval = series.interval_us
            start = time_us - time_us % interval
            window = series.current
            if window is None or window.start_us != start:
                if start + interval + grace <= watermark:
                    late = True
                    continue
                window = series.window(start)
                closes_at = window.end_us + grace
                if closes_at < product.next_close_us:
                    product.next_close_us = closes_at
            ids = window.trade_ids
            if trade_id in ids:
                duplicate = True
                continue
            ids.add(trade_id)
            if window.count:
                if price > window.high:
                    window.high = price
                elif price < window.low:
                    window.low = price
                close_time = window.close_time
                if time_us > close_time or (time_us == close_time and trade_id > window.close_id):
                    window.close = price
                    window.close_time = time_us
                    window.close_id = trade_id
                else:
                    open_time = window.open_time
                    if time_us < open_time or (time_us == open_time and trade_id < window.open_id):
                        window.open = price
                        window.open_time = time_us
                        window.open_id = trade_id
                window.volume += size
                window.notional += price * size
                window.count += 1
            else:
                window.open = window.high = window.low = window.close = price
                window.open_time = window.close_time = time_us
                window.open_id = window.close_id = trade_id
                window.volume = size
                window.notional = price * size
                window.count = 1
        if late:
            self.late_trades += 1
        if duplicate:
            self.duplicate_trades += 1
        if time_us > watermark:
            product.watermark_us = time_us
            if time_us >= product.next_close_us:
                return self._close(product_id, product)
        return []

    def on_heartbeat(self, product_id: str, time_us: int) -> list[Candle]:
        """Move the product's event time on; return the candles that closed, oldest first."""
        product = self._products.get(product_id)
        if product is None:
            product = self._products[product_id] = _Product(self._intervals_s)
        if time_us > product.watermark_us:
            product.watermark_us = time_us
            if time_us >= product.next_close_us:
                return self._close(product_id, product)
        return []

    def _close(self, product_id: str, product: _Product) -> list[Candle]:
        watermark = product.watermark_us
        grace = self._grace_us
        closed: list[Candle] = []
        next_close = _NEVER
        for series in product.series:
            windows = series.windows
            while windows and windows[0].end_us + grace <= watermark:
                closed.append(windows.pop(0).candle(product_id, series.interval_s))
            if windows:
                next_close = min(next_close, windows[0].end_us + grace)
                series.current = windows[-1]
            else:
                series.current = None
        product.next_close_us = next_close
        if len(closed) > 1:
            closed.sort(key=lambda candle: (candle.end_us, candle.interval_s))
        return closed

    def open_windows(self, product_id: str) -> int:
        """How many windows of the product are open (all intervals)."""
        product = self._products.get(product_id)
        return 0 if product is None else sum(len(s.windows) for s in product.series)

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state: `restore` of it continues exactly where this left off."""
        products: dict[str, Any] = {}
        for product_id, product in self._products.items():
            products[product_id] = {
                "watermark_us": None if product.watermark_us == _NO_TIME else product.watermark_us,
                "series": {
                    str(series.interval_s): [w.to_state() for w in series.windows]
                    for series in product.series
                },
            }
        return {
            "version": _STATE_VERSION,
            "intervals_s": list(self._intervals_s),
            "grace_us": self._grace_us,
            "late_trades": self.late_trades,
            "duplicate_trades": self.duplicate_trades,
            "products": products,
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> CandleAggregator:
        """The aggregator `snapshot` described; `ValueError` if the state is not one."""
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"unknown candle aggregator state version {state.get('version')!r}")
        aggregator = cls(state["intervals_s"], int(state["grace_us"]) / 1_000_000)
        aggregator._grace_us = int(state["grace_us"])
        aggregator.late_trades = int(state["late_trades"])
        aggregator.duplicate_trades = int(state["duplicate_trades"])
        grace = aggregator._grace_us
        for product_id, saved in state["products"].items():
            product = _Product(aggregator._intervals_s)
            watermark = saved["watermark_us"]
            product.watermark_us = _NO_TIME if watermark is None else int(watermark)
            for series in product.series:
                series.windows = [
                    _Window.from_state(w) for w in saved["series"][str(series.interval_s)]
                ]
                series.current = series.windows[-1] if series.windows else None
                if series.windows:
                    product.next_close_us = min(
                        product.next_close_us, series.windows[0].end_us + grace
                    )
            aggregator._products[product_id] = product
        return aggregator
