"""One raw partition's domain state: candles for every product in it, and a set of
strategies per product and interval. Pure: bytes in, candles and signals out, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptopipeline.market import (
    Candle,
    CandleAggregator,
    Heartbeat,
    RawEvent,
    Rejected,
    parse_event,
)
from cryptopipeline.records import TradeSignal
from cryptopipeline.strategies import StrategyConfig, StrategySet, to_record

_IGNORED = frozenset({"unknown_type"})  # e.g. `match` records when matches are ingested too
#: 2: per series, the shared indicators once and each strategy's memory; 1 had no version key
#: and each strategy's own indicators (still read by `restore`).
_STATE_VERSION = 2

EventKind = Literal["ticker", "heartbeat", "ignored", "rejected"]


@dataclass(slots=True)
class EngineOutput:
    kind: EventKind
    candles: list[Candle] = field(default_factory=list)
    signals: list[TradeSignal] = field(default_factory=list)
    rejected: str | None = None
    late: int = 0
    product: str = ""  # of a ticker or heartbeat


class PartitionEngine:
    def __init__(
        self,
        intervals_s: Sequence[int],
        grace_s: float,
        strategies: Sequence[StrategyConfig | dict[str, Any]],
        aggregator: CandleAggregator | None = None,
    ) -> None:
        self._configs = [
            s if isinstance(s, StrategyConfig) else StrategyConfig.model_validate(s)
            for s in strategies
        ]
        self.aggregator = aggregator or CandleAggregator(intervals_s, grace_s)
        #: per (product, interval): its strategies on their shared indicators
        self.strategies: dict[tuple[str, int], StrategySet] = {}

    def on_record(self, value: bytes | None) -> EngineOutput:
        return self.on_event(parse_event(value or b""))

    def on_event(self, event: RawEvent) -> EngineOutput:
        """One parsed raw-topic body (`parse_event`): the candles it closed and their signals."""
        if isinstance(event, Rejected):
            if event.reason in _IGNORED:
                return EngineOutput("ignored")
            return EngineOutput("rejected", rejected=event.reason)
        late_before = self.aggregator.late_trades
        if isinstance(event, Heartbeat):
            out = EngineOutput("heartbeat")
            out.candles = self.aggregator.on_heartbeat(event.product_id, event.time_us)
        else:
            out = EngineOutput("ticker")
            out.candles = self.aggregator.on_trade(
                event.product_id, event.trade_id, event.time_us, event.price, event.size
            )
        out.late = self.aggregator.late_trades - late_before
        out.product = event.product_id
        for candle in out.candles:
            out.signals.extend(self.on_candle(candle))
        return out

    def on_candle(self, candle: Candle) -> list[TradeSignal]:
        """The signals every strategy of the candle's product and interval takes at its close
        (candles from the aggregator, or closed candles read elsewhere, e.g. a backtest CSV)."""
        key = (candle.product_id, candle.interval_s)
        group = self.strategies.get(key)
        if group is None:
            group = self.strategies[key] = StrategySet(self._configs)
        return [to_record(decision, candle) for decision in group.on_candle(candle)]

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state: restoring it continues exactly where this left off."""
        return {
            "version": _STATE_VERSION,
            "aggregator": self.aggregator.snapshot(),
            "strategies": [
                {"product_id": p, "interval_s": i, **group.snapshot()}
                for (p, i), group in sorted(self.strategies.items())
            ],
        }

    @classmethod
    def restore(
        cls, state: dict[str, Any], strategies: Sequence[StrategyConfig | dict[str, Any]]
    ) -> PartitionEngine:
        """Continue from `state` (of version 1 or 2); a strategy whose configuration changed
        since starts with an empty memory (`StrategySet.restore`)."""
        version = state.get("version", 1)
        if version not in (1, _STATE_VERSION):
            raise ValueError(f"unknown signaler engine state version {version!r}")
        aggregator = CandleAggregator.restore(state["aggregator"])
        engine = cls((), 0.0, strategies, aggregator=aggregator)
        for entry in state["strategies"]:
            key = (str(entry["product_id"]), int(entry["interval_s"]))
            engine.strategies[key] = StrategySet.restore(entry, engine._configs)
        return engine
