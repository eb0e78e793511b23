"""One raw partition's domain state: candles for every product in it, and a set of
strategies per product and interval. Pure: bytes in, candles and signals out, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptopipeline.core.records import TradeSignal
from cryptopipeline.market import (
    Candle,
    CandleAggregator,
    Heartbeat,
    RawEvent,
    Rejected,
    parse_event,
)
from cryptopipeline.strategies import (
    Strategy,
    StrategyConfig,
    build_strategies,
    restore_strategy,
    to_record,
)

_IGNORED = frozenset({"unknown_type"})  # e.g. `match` records when matches are ingested too


@dataclass(slots=True)
class EngineOutput:
    kind: str  # ticker | heartbeat | ignored | rejected
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
        self.strategies: dict[tuple[str, int], list[Strategy]] = {}

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
        signals: list[TradeSignal] = []
        for strategy in self._strategies_for(candle):
            decision = strategy.on_candle(candle)
            if decision is not None:
                signals.append(to_record(decision, candle))
        return signals

    def _strategies_for(self, candle: Candle) -> list[Strategy]:
        key = (candle.product_id, candle.interval_s)
        strategies = self.strategies.get(key)
        if strategies is None:
            strategies = self.strategies[key] = build_strategies(self._configs)
        return strategies

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state: restoring it continues exactly where this left off."""
        return {
            "aggregator": self.aggregator.snapshot(),
            "strategies": [
                {"product_id": p, "interval_s": i, "states": [s.snapshot() for s in group]}
                for (p, i), group in sorted(self.strategies.items())
            ],
        }

    @classmethod
    def restore(
        cls, state: dict[str, Any], strategies: Sequence[StrategyConfig | dict[str, Any]]
    ) -> PartitionEngine:
        """Continue from `state`; a strategy whose configuration changed since starts afresh."""
        aggregator = CandleAggregator.restore(state["aggregator"])
        engine = cls((), 0.0, strategies, aggregator=aggregator)
        for entry in state["strategies"]:
            key = (str(entry["product_id"]), int(entry["interval_s"]))
            saved = [restore_strategy(s) for s in entry["states"]]
            by_identity = {(s.name, tuple(sorted(s.parameters.items()))): s for s in saved}
            engine.strategies[key] = [
                by_identity.get((fresh.name, tuple(sorted(fresh.parameters.items()))), fresh)
                for fresh in build_strategies(engine._configs)
            ]
        return engine
