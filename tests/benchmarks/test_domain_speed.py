"""Signaler domain speed on one core: ticks folded into candles, and candles through all seven
indicators and five strategies. Measurements, not assertions: `make bench`."""

from __future__ import annotations

import random
import time
from decimal import Decimal
from typing import Any

import pytest

from cryptopipeline.indicators import Atr, BollingerBands, Ema, Indicator, Macd, Rsi, Sma, Vwap
from cryptopipeline.market import Candle, CandleAggregator, parse_tick
from cryptopipeline.strategies import Decision, StrategyConfig, StrategySet, build_strategies

pytestmark = pytest.mark.benchmark

TICKS = 200_000
CANDLES = 20_000
T0 = 1_700_000_040 * 1_000_000


def _ticks() -> list[tuple[str, int, int, Decimal, Decimal]]:
    rng = random.Random(1)
    price = 67_000.0
    out = []
    for i in range(TICKS):
        price *= 1 + rng.gauss(0, 0.0002)
        out.append(
            ("BTC-USD", i, T0 + i * 25_000, Decimal(f"{price:.2f}"), Decimal(f"{rng.random():.8f}"))
        )
    return out


def test_ticks_into_one_minute_candles(benchmark: pytest.FixtureRequest) -> None:
    ticks = _ticks()

    def fold() -> int:
        aggregator = CandleAggregator((60,), grace_s=2.0)
        on_trade = aggregator.on_trade
        closed = 0
        for product, trade_id, time_us, price, size in ticks:
            closed += len(on_trade(product, trade_id, time_us, price, size))
        return closed

    closed = benchmark.pedantic(fold, rounds=3, iterations=1)  # type: ignore[attr-defined]
    assert closed > 0
    benchmark.extra_info["ticks_per_round"] = TICKS  # type: ignore[attr-defined]


def test_ticks_into_three_intervals(benchmark: pytest.FixtureRequest) -> None:
    ticks = _ticks()

    def fold() -> None:
        aggregator = CandleAggregator((60, 300, 3600), grace_s=2.0)
        on_trade = aggregator.on_trade
        for product, trade_id, time_us, price, size in ticks:
            on_trade(product, trade_id, time_us, price, size)

    benchmark.pedantic(fold, rounds=3, iterations=1)  # type: ignore[attr-defined]


def test_parse_ticker_bodies(benchmark: pytest.FixtureRequest) -> None:
    body = (
        b'{"type":"ticker","sequence":1,"product_id":"BTC-USD","price":"67234.12",'
        b'"open_24h":"1","volume_24h":"1.00000000","low_24h":"1","high_24h":"1",'
        b'"volume_30d":"1.00000000","best_bid":"67234.11","best_bid_size":"0.1",'
        b'"best_ask":"67234.13","best_ask_size":"0.2","side":"buy",'
        b'"time":"2024-05-01T12:00:00.123456Z","trade_id":42,"last_size":"0.00012345"}'
    )
    bodies = [body] * 20_000

    def parse() -> None:
        for raw in bodies:
            parse_tick(raw)

    benchmark.pedantic(parse, rounds=3, iterations=1)  # type: ignore[attr-defined]


def _candles() -> list[Candle]:
    rng = random.Random(2)
    price = 67_000.0
    out = []
    for i in range(CANDLES):
        price *= 1 + rng.gauss(0, 0.002)
        p = Decimal(f"{price:.2f}")
        h = Decimal(f"{price * 1.001:.2f}")
        lo = Decimal(f"{price * 0.999:.2f}")
        start = T0 + i * 60_000_000
        out.append(
            Candle(
                "BTC-USD",
                60,
                start,
                start + 60_000_000,
                p,
                h,
                lo,
                p,
                Decimal("3.5"),
                p,
                50,
                i * 50,
                i * 50 + 49,
            )
        )
    return out


NAMES = ["sma_crossover", "ema_crossover", "rsi_threshold", "macd_cross", "bollinger_breakout"]
SEVEN: list[tuple[type[Indicator], tuple[Any, ...]]] = [
    (Sma, (20,)), (Ema, (12,)), (Rsi, (14,)), (Macd, ()), (BollingerBands, ()), (Atr, (14,)),
    (Vwap, (20,)),
]  # fmt: skip


def _shared(candles: list[Candle]) -> tuple[list[Decision], list[Indicator]]:
    """The signaler's way: one `StrategySet` for the series, the seven indicators asked of
    its `IndicatorSet` too (EMA 12, RSI 14, MACD and the bands are the strategies' own)."""
    group = StrategySet([StrategyConfig(name=n) for n in NAMES])
    seven = [group.indicators.get(kind, *arguments) for kind, arguments in SEVEN]
    on_candle = group.on_candle
    decisions: list[Decision] = []
    for candle in candles:
        decisions += on_candle(candle)
    return decisions, seven


def _unshared(candles: list[Candle]) -> tuple[list[Decision], list[Indicator]]:
    """The reference: every indicator and every strategy on its own, as before sharing."""
    sma, ema, rsi, macd = Sma(20), Ema(12), Rsi(14), Macd()
    bands, atr, vwap = BollingerBands(), Atr(14), Vwap(20)
    seven: list[Indicator] = [sma, ema, rsi, macd, bands, atr, vwap]
    strategies = build_strategies([StrategyConfig(name=n) for n in NAMES])
    decisions: list[Decision] = []
    for candle in candles:
        close = float(candle.close)
        sma.update(close)
        ema.update(close)
        rsi.update(close)
        macd.update(close)
        bands.update(close)
        atr.update(float(candle.high), float(candle.low), close)
        vwap.update(float(candle.vwap), float(candle.volume))
        for strategy in strategies:
            decision = strategy.on_candle(candle)
            if decision is not None:
                decisions.append(decision)
    return decisions, seven


def test_candles_through_seven_indicators_and_five_strategies(
    benchmark: pytest.FixtureRequest,
) -> None:
    """Issue 13 goal 3 (>= 150,000 candles/s on one core). Asserted: the shared indicators
    give exactly the decisions and indicator values of the unshared reference. Printed: the
    figure, and both ways in interleaved rounds of CPU time (a ratio that survives a busy
    machine)."""
    candles = _candles()
    decisions, seven = benchmark.pedantic(_shared, args=(candles,), rounds=5, iterations=1)  # type: ignore[attr-defined]
    seconds = benchmark.stats.stats.median  # type: ignore[attr-defined]
    expected, reference = _unshared(candles)
    assert len(decisions) > 1000
    assert decisions == expected
    assert [i.snapshot() for i in seven] == [i.snapshot() for i in reference]

    cpu: dict[str, list[float]] = {"shared": [], "unshared": []}
    for _ in range(3):
        for way, run in (("unshared", _unshared), ("shared", _shared)):
            started = time.process_time()
            run(candles)
            cpu[way].append(time.process_time() - started)
    shared_s, unshared_s = min(cpu["shared"]), min(cpu["unshared"])
    print(
        f"\n{CANDLES / seconds:,.0f} candles/s through 7 indicators + 5 strategies "
        f"(median of 5 rounds; {len(decisions)} decisions per round). CPU time, best of 3 "
        f"interleaved: shared {CANDLES / shared_s:,.0f}/s, unshared reference "
        f"{CANDLES / unshared_s:,.0f}/s (x{unshared_s / shared_s:.2f})"
    )
