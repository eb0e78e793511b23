"""The signaler's per-partition engine: pure, restorable, and never crashed by bad input."""

from __future__ import annotations

import orjson
from signal_support import tick_fixture

from cryptopipeline.signaler._engine import PartitionEngine
from cryptopipeline.strategies import StrategyConfig

STRATEGIES = [
    StrategyConfig(name="sma_crossover", parameters={"fast": 5, "slow": 20}),
    StrategyConfig(name="macd_cross", parameters={}),
]


def _run(engine: PartitionEngine, values: list[bytes]) -> list[str]:
    return [s.signal_id for v in values for s in engine.on_record(v).signals]


def test_a_restored_engine_emits_what_an_uninterrupted_one_does() -> None:
    values = list(tick_fixture(("BTC-USD", "ETH-USD"), 3 * 3600))
    expected = _run(PartitionEngine([60], 2.0, STRATEGIES), values)
    assert len(expected) > 10

    half = len(values) // 2
    first = PartitionEngine([60], 2.0, STRATEGIES)
    got = _run(first, values[:half])
    state = orjson.loads(orjson.dumps(first.snapshot()))  # through JSON, as in Kafka
    got += _run(PartitionEngine.restore(state, STRATEGIES), values[half:])

    assert got == expected


def test_a_changed_strategy_starts_afresh_and_the_others_continue() -> None:
    values = list(tick_fixture(("BTC-USD",), 2 * 3600))
    engine = PartitionEngine([60], 2.0, STRATEGIES)
    _run(engine, values)
    changed = [STRATEGIES[0], StrategyConfig(name="macd_cross", parameters={"signal": 5})]
    restored = PartitionEngine.restore(engine.snapshot(), changed)
    [group] = restored.strategies.values()
    assert group[0].snapshot() == engine.strategies[("BTC-USD", 60)][0].snapshot()
    assert group[1].parameters["signal"] == 5


def test_bad_records_are_rejected_and_other_types_ignored() -> None:
    engine = PartitionEngine([60], 2.0, STRATEGIES)
    assert engine.on_record(b"{oops").rejected == "malformed_json"
    assert engine.on_record(None).rejected is not None
    bad_price = b'{"type":"ticker","product_id":"BTC-USD","trade_id":1,"price":"x",'
    bad_price += b'"last_size":"1","side":"buy","time":"2026-01-01T00:00:00.000001Z"}'
    assert engine.on_record(bad_price).rejected == "invalid_field"
    match = b'{"type":"match","product_id":"BTC-USD","trade_id":1}'
    assert engine.on_record(match).kind == "ignored"
