"""Strategies on hand-made candle series where the right decision is obvious."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest
from pydantic import ValidationError

from cryptopipeline.market import Candle
from cryptopipeline.records import Action, TradeSignal
from cryptopipeline.strategies import (
    Decision,
    StrategyConfig,
    build_strategies,
    restore_strategy,
    signal_id,
    to_record,
)

S = 1_000_000
T0 = 1_700_000_040 * S
ALL = ["sma_crossover", "ema_crossover", "rsi_threshold", "macd_cross", "bollinger_breakout"]


def candles(closes: list[float], product: str = "BTC-USD", interval: int = 60) -> list[Candle]:
    out = []
    for i, close in enumerate(closes):
        price = Decimal(f"{close:.2f}")
        start = T0 + i * interval * S
        out.append(
            Candle(
                product,
                interval,
                start,
                start + interval * S,
                price,
                price,
                price,
                price,
                Decimal(1),
                price,
                1,
                10 * i,
                10 * i + 9,
            )
        )
    return out


def run(name: str, closes: list[float], **parameters: float | int) -> list[tuple[int, Decision]]:
    (strategy,) = build_strategies([StrategyConfig(name=name, parameters=parameters)])  # type: ignore[arg-type]
    out = []
    for i, candle in enumerate(candles(closes)):
        decision = strategy.on_candle(candle)
        if decision is not None:
            out.append((i, decision))
    return out


V_SHAPE = (
    [100 - i for i in range(40)]
    + [61 + 2 * i for i in range(40)]
    + [139 - 2 * i for i in range(40)]
)


@pytest.mark.parametrize("name", ALL)
def test_nothing_on_a_flat_series(name: str) -> None:
    assert run(name, [100.1] * 300) == []


@pytest.mark.parametrize("name", ALL)
def test_nothing_during_warm_up(name: str) -> None:
    # waves with a zig-zag on top: crossings all along, warm-up included
    zigzag = [100 + 10 * math.sin(i / 5) + (3 if i % 2 else -3) for i in range(300)]
    warm_up = {
        "sma_crossover": 30,
        "ema_crossover": 26,
        "rsi_threshold": 15,
        "macd_cross": 34,
        "bollinger_breakout": 20,
    }[name]
    parameters = {"rsi_threshold": {"oversold": 45, "overbought": 55}}.get(name, {})
    decisions = run(name, zigzag, **parameters)
    assert decisions, "the zig-zag should produce signals after warm-up"
    assert min(i for i, _ in decisions) >= warm_up


def test_sma_crossover_buys_the_turn_and_sells_the_top() -> None:
    decisions = run("sma_crossover", V_SHAPE, fast=3, slow=10)
    assert [(d.action) for _, d in decisions] == [Action.BUY, Action.SELL]
    buy_at, buy = decisions[0]
    assert 40 < buy_at < 50
    assert buy.indicators["sma_3"] > buy.indicators["sma_10"]  # type: ignore[operator]
    assert 80 < decisions[1][0] < 90


def test_ema_crossover_buys_the_turn_and_sells_the_top() -> None:
    decisions = run("ema_crossover", V_SHAPE, fast=3, slow=10)
    assert [d.action for _, d in decisions] == [Action.BUY, Action.SELL]


def test_rsi_buys_back_from_oversold_and_sells_back_from_overbought() -> None:
    closes = [100.0 + (i % 2) for i in range(30)]  # chop: RSI around 50
    closes += [closes[-1] - 2 * i for i in range(1, 15)]  # slide: oversold
    closes += [closes[-1] + 3 * i for i in range(1, 4)]  # bounce: back above 30
    closes += [closes[-1] + 2 * i for i in range(1, 25)]  # rally: overbought
    closes += [closes[-1] - 4 * i for i in range(1, 4)]  # drop: back below 70
    decisions = run("rsi_threshold", closes)
    assert [d.action for _, d in decisions] == [Action.BUY, Action.SELL]
    buy = decisions[0][1]
    assert buy.indicators["prev_rsi_14"] < 30 <= buy.indicators["rsi_14"]  # type: ignore[operator]


def test_macd_crosses_its_signal_line_at_the_turns() -> None:
    wave = [100 + 20 * math.sin(i / 15) for i in range(300)]
    troughs = [15 * (1.5 * math.pi + 2 * math.pi * k) for k in range(3)]
    crests = [15 * (0.5 * math.pi + 2 * math.pi * k) for k in range(1, 3)]
    decisions = run("macd_cross", wave)
    buys = [i for i, d in decisions if d.action is Action.BUY]
    sells = [i for i, d in decisions if d.action is Action.SELL]
    assert len(buys) == 3 and len(sells) == 2
    assert all(min(abs(i - t) for t in troughs) < 10 for i in buys)
    assert all(min(abs(i - c) for c in crests) < 10 for i in sells)
    assert all(set(d.indicators) == {"macd", "macd_signal", "macd_hist"} for _, d in decisions)


def test_bollinger_breakout_up_and_down() -> None:
    closes = [100.0 + (0.5 if i % 2 else -0.5) for i in range(40)] + [110.0]
    closes += [100.0 + (0.5 if i % 2 else -0.5) for i in range(40)] + [90.0]
    decisions = run("bollinger_breakout", closes)
    assert [(i, d.action) for i, d in decisions] == [(40, Action.BUY), (81, Action.SELL)]


def test_decisions_carry_a_deterministic_id_and_the_candle_source() -> None:
    first = run("sma_crossover", V_SHAPE, fast=3, slow=10)
    again = run("sma_crossover", V_SHAPE, fast=3, slow=10)
    assert first == again
    index, decision = first[0]
    candle = candles(V_SHAPE)[index]
    assert decision.signal_id == signal_id(
        "BTC-USD", "sma_crossover", {"fast": 3, "slow": 10}, 60, candle.start_us
    )
    assert len(decision.signal_id) == 32
    assert decision.event_time_us == candle.end_us
    assert decision.last_trade_id == candle.last_trade_id
    record = to_record(decision, candle)
    assert isinstance(record, TradeSignal)
    assert record.window.interval_s == 60 and record.close_price == candle.close
    assert record.event_time == record.window.end
    assert TradeSignal.model_validate_json(record.model_dump_json()) == record
    with pytest.raises(ValueError, match="not taken on candle"):
        to_record(decision, candles(V_SHAPE)[index + 1])


def test_signal_ids_differ_by_every_input_and_not_by_defaults_spelled_out() -> None:
    base = ("BTC-USD", "sma_crossover", {"fast": 10, "slow": 30}, 60, T0)
    ids = {
        signal_id(*base),
        signal_id("ETH-USD", *base[1:]),
        signal_id(base[0], "ema_crossover", *base[2:]),
        signal_id(base[0], base[1], {"fast": 11, "slow": 30}, 60, T0),
        signal_id(*base[:3], 300, T0),
        signal_id(*base[:4], T0 + 60 * S),
    }
    assert len(ids) == 6
    (implicit,) = build_strategies([StrategyConfig(name="sma_crossover")])
    assert implicit.parameters == {"fast": 10, "slow": 30}


@pytest.mark.parametrize("name", ALL)
def test_snapshot_restore_mid_series_gives_the_same_later_decisions(name: str) -> None:
    series = candles([100 + 10 * math.sin(i / 7) + (i % 5) for i in range(400)])
    (straight,) = build_strategies([StrategyConfig(name=name)])
    expected = [straight.on_candle(c) for c in series]
    assert any(expected)
    for cut in (10, 35, 200):
        (first,) = build_strategies([StrategyConfig(name=name)])
        got = [first.on_candle(c) for c in series[:cut]]
        restored = restore_strategy(json.loads(json.dumps(first.snapshot())))
        got += [restored.on_candle(c) for c in series[cut:]]
        assert got == expected


def test_one_instance_follows_one_series_and_ignores_replayed_candles() -> None:
    (strategy,) = build_strategies(
        [StrategyConfig(name="sma_crossover", parameters={"fast": 2, "slow": 3})]
    )
    series = candles([1, 2, 3, 4])
    for candle in series:
        strategy.on_candle(candle)
    assert strategy.on_candle(series[1]) is None
    with pytest.raises(ValueError, match="follows BTC-USD/60s"):
        strategy.on_candle(candles([1] * 10, product="ETH-USD")[9])


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"name": "nope"}, "name"),
        ({"name": "sma_crossover", "parameters": {"fast": 30, "slow": 10}}, "below slow"),
        ({"name": "sma_crossover", "parameters": {"speed": 3}}, "unknown parameter"),
        ({"name": "rsi_threshold", "parameters": {"period": 0}}, ">= 1"),
        ({"name": "rsi_threshold", "parameters": {"oversold": 80}}, "oversold < overbought"),
        ({"name": "macd_cross", "parameters": {"signal": 2.5}}, "integer"),
        ({"name": "bollinger_breakout", "parameters": {"multiplier": "x"}}, "number"),
    ],
)
def test_bad_configuration_names_the_problem(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        StrategyConfig.model_validate(config)
