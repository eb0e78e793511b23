"""The signaler engine's checkpoints across versions, and the shared indicators they hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from signal_support import tick_fixture

from cryptopipeline.signaler._engine import PartitionEngine
from cryptopipeline.strategies import restore_strategy

# Written by the signaler before indicators were shared (each strategy saved its own copies;
# engine state without a version): 6 strategies, 2 products, 1- and 5-minute candles, the
# engine's state after the first half of four hours of `tick_fixture`.
V1 = Path(__file__).parent / "data" / "engine_state_v1.json"


def _run(engine: PartitionEngine, values: list[bytes]) -> list[str]:
    return [s.signal_id for v in values for s in engine.on_record(v).signals]


def test_a_version_1_checkpoint_continues_like_an_uninterrupted_engine() -> None:
    saved = json.loads(V1.read_text())
    assert "version" not in saved["engine"]
    values = list(tick_fixture(tuple(saved["products"]), saved["seconds"]))
    folded = saved["records_folded"]
    uninterrupted = PartitionEngine(saved["intervals_s"], 2.0, saved["strategies"])
    _run(uninterrupted, values[:folded])
    expected = _run(uninterrupted, values[folded:])
    assert len(expected) > 50

    restored = PartitionEngine.restore(saved["engine"], saved["strategies"])
    assert _run(restored, values[folded:]) == expected
    assert restored.snapshot() == uninterrupted.snapshot()


def _indicators(engine: PartitionEngine) -> dict[tuple[str, int], list[tuple[str, list[Any]]]]:
    return {
        key: [(e["kind"], e["arguments"]) for e in group.snapshot()["indicators"]["indicators"]]
        for key, group in engine.strategies.items()
    }


def test_strategies_share_indicators_and_a_restore_drops_the_unread_ones() -> None:
    configs: list[dict[str, Any]] = [
        {"name": "sma_crossover", "parameters": {"fast": 5, "slow": 20}},
        {"name": "sma_crossover", "parameters": {"fast": 5, "slow": 40}},
        {"name": "ema_crossover", "parameters": {"fast": 12, "slow": 26}},
        {"name": "macd_cross", "parameters": {}},
    ]
    values = list(tick_fixture(("BTC-USD",), 2 * 3600))
    engine = PartitionEngine([60], 2.0, configs)
    _run(engine, values)
    assert _indicators(engine) == {
        ("BTC-USD", 60): [
            ("Sma", [5]), ("Sma", [20]), ("Sma", [40]), ("Ema", [12, 0]), ("Ema", [26, 0]),
            ("Macd", [12, 26, 9]),
        ]
    }  # fmt: skip

    state = orjson.loads(orjson.dumps(engine.snapshot()))
    restored = PartitionEngine.restore(state, configs[:1] + configs[2:])
    assert _indicators(restored)[("BTC-USD", 60)] == [
        ("Sma", [5]), ("Sma", [20]), ("Ema", [12, 0]), ("Ema", [26, 0]), ("Macd", [12, 26, 9])
    ]  # fmt: skip
    [group] = restored.strategies.values()
    assert group[0].snapshot() == engine.strategies[("BTC-USD", 60)][0].snapshot()


def test_a_version_1_strategy_state_restores_alone() -> None:
    saved = json.loads(V1.read_text())
    engine = PartitionEngine.restore(saved["engine"], saved["strategies"])
    for entry in saved["engine"]["strategies"]:
        group = engine.strategies[(entry["product_id"], entry["interval_s"])]
        for state, member in zip(entry["states"], group, strict=True):
            assert state["version"] == 1
            assert restore_strategy(state).snapshot() == member.snapshot()
