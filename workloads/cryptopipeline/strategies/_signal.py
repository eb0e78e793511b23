"""Decisions, their deterministic signal ids, and the `TradeSignal` record built from them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import NamedTuple

from cryptopipeline.coinbase import format_time
from cryptopipeline.market import Candle
from cryptopipeline.records import Action, CandleWindow, TradeSignal

Parameters = Mapping[str, float | int | str]


def signal_id(
    product_id: str,
    strategy: str,
    parameters: Parameters,
    interval_s: int,
    window_start_us: int,
) -> str:
    """sha256 of the canonical JSON of (product, strategy, parameters, interval, window start),
    first 32 hex digits. A replay of the same ticks yields the same ids.
    """
    return SignalIds(product_id, strategy, parameters, interval_s).at(window_start_us)


class SignalIds:
    """`signal_id` for one strategy on one series. The canonical JSON (sorted keys, no
    spaces, ASCII) ends with the window start, so all of it before that is built once."""

    __slots__ = ("_prefix", "interval_s", "product_id")

    def __init__(
        self, product_id: str, strategy: str, parameters: Parameters, interval_s: int
    ) -> None:
        canonical = json.dumps(
            {
                "interval_s": interval_s,
                "parameters": dict(parameters),
                "product_id": product_id,
                "strategy": strategy,
                "window_start_us": 0,
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
            allow_nan=False,
        )
        assert canonical.endswith(',"window_start_us":0}'), canonical  # last in sorted order
        self._prefix = canonical[:-2].encode("ascii")  # all but the "0}"
        self.product_id = product_id
        self.interval_s = interval_s

    def at(self, window_start_us: int) -> str:
        """The id of the signal taken on the candle that starts at `window_start_us`."""
        canonical = self._prefix + b"%d}" % window_start_us
        return hashlib.sha256(canonical).hexdigest()[:32]


class Decision(NamedTuple):
    """A strategy's BUY or SELL at one candle's close, with everything that decided it.

    Immutable. A named tuple rather than a frozen dataclass: a frozen dataclass spends a
    microsecond per instance on `object.__setattr__`, a fifth of a signal's cost."""

    signal_id: str
    product_id: str
    interval_s: int
    window_start_us: int
    window_end_us: int
    action: Action
    strategy: str
    parameters: Parameters
    indicators: Mapping[str, float | None]
    last_trade_id: int
    close: Decimal

    @property
    def event_time_us(self) -> int:
        """The candle's close time (its window end), exchange time."""
        return self.window_end_us


def decide(
    candle: Candle,
    action: Action,
    strategy: str,
    parameters: Parameters,
    indicators: Mapping[str, float | None],
    ids: SignalIds | None = None,
) -> Decision:
    """A `Decision` at `candle`'s close, its id derived from the candle window (by `ids`,
    when the caller keeps the strategy's `SignalIds` for the candle's series)."""
    if ids is None:
        ids = SignalIds(candle.product_id, strategy, parameters, candle.interval_s)
    start = candle.start_us
    return Decision(
        ids.at(start),
        candle.product_id,
        candle.interval_s,
        start,
        candle.end_us,
        action,
        strategy,
        parameters,
        indicators,
        candle.last_trade_id,
        candle.close,
    )


def to_record(decision: Decision, candle: Candle) -> TradeSignal:
    """The `btc_usd_trade_signals` record of a decision taken on `candle`."""
    if (decision.product_id, decision.interval_s, decision.window_start_us) != (
        candle.product_id,
        candle.interval_s,
        candle.start_us,
    ):
        raise ValueError(
            f"decision {decision.signal_id} was not taken on candle "
            f"{candle.product_id}/{candle.interval_s}s@{candle.start_us}"
        )
    return TradeSignal(
        signal_id=decision.signal_id,
        product_id=decision.product_id,
        event_time=format_time(candle.end_us),
        action=decision.action,
        strategy=decision.strategy,
        parameters=dict(decision.parameters),
        indicators=dict(decision.indicators),
        window=CandleWindow(
            start=format_time(candle.start_us),
            end=format_time(candle.end_us),
            interval_s=candle.interval_s,
        ),
        close_price=candle.close,
        last_trade_id=candle.last_trade_id,
    )
