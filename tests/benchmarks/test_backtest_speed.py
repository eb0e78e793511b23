"""Backtest speed on one core: candles through five strategies and the bot's rules, raw ticks
to orders, and the memory of a long streamed run. Measurements, not assertions: `make bench`.
"""

from __future__ import annotations

import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal

import orjson
import pytest

from cryptopipeline.backtest import Backtest, BacktestConfig
from cryptopipeline.market import Candle

pytestmark = pytest.mark.benchmark

CANDLES = 20_000
TICKS = 200_000
T0_S = 1_700_000_040
STRATEGIES = [
    {"name": name}
    for name in ("sma_crossover", "ema_crossover", "rsi_threshold", "macd_cross",
                 "bollinger_breakout")
]  # fmt: skip
# Limits wide enough that the rules run in full on every signal instead of stopping early.
RISK = {"stale_price_s": 3600, "max_position_notional": "1e9", "max_daily_loss": "1e9",
        "max_order_notional": "1e9", "max_open_orders": 1000}  # fmt: skip


def _config(**overrides: object) -> BacktestConfig:
    values: dict[str, object] = {"strategies": STRATEGIES, "intervals_s": [60], "risk": RISK}
    values.update(overrides)
    return BacktestConfig.model_validate(values)


def _candles() -> list[Candle]:
    rng = random.Random(1)
    price = 67_000.0
    out = []
    for i in range(CANDLES):
        price *= 1 + rng.gauss(0, 0.002)
        p = Decimal(f"{price:.2f}")
        start = (T0_S + 60 * i) * 1_000_000
        out.append(Candle("BTC-USD", 60, start, start + 60_000_000, p, p, p, p, Decimal(1), p,
                          1, i, i))  # fmt: skip
    return out


def ticks(count: int, seed: int = 1) -> Iterator[bytes]:
    """Coinbase `ticker` bodies, 40 a second, generated as they are consumed."""
    rng = random.Random(seed)
    price = 67_000.0
    for i in range(count):
        price *= 1 + rng.gauss(0, 0.0002)
        at = T0_S * 1_000_000 + i * 25_000
        seconds, micros = divmod(at, 1_000_000)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"
        yield orjson.dumps({
            "type": "ticker", "product_id": "BTC-USD", "trade_id": i, "sequence": i,
            "price": f"{price:.2f}", "last_size": "0.01", "side": "buy",
            "best_bid": f"{price - 0.01:.2f}", "best_ask": f"{price + 0.01:.2f}", "time": stamp,
        })  # fmt: skip


def test_candles_through_five_strategies_and_bot_rules(benchmark: pytest.FixtureRequest) -> None:
    candles = _candles()

    def run() -> Backtest:
        bt = Backtest(_config())
        for candle in candles:
            bt.on_candle(candle)
        return bt

    bt = benchmark.pedantic(run, rounds=3, iterations=1)  # type: ignore[attr-defined]
    assert len(bt.stats.signals) > 1000 and bt.trades
    seconds = benchmark.stats.stats.median  # type: ignore[attr-defined]
    print(f"\n{CANDLES / seconds:,.0f} candles/s; {len(bt.stats.signals)} signals, "
          f"{len(bt.stats.orders)} orders per round")  # fmt: skip


def test_raw_ticks_to_orders(benchmark: pytest.FixtureRequest) -> None:
    bodies = list(ticks(TICKS))

    def run() -> Backtest:
        bt = Backtest(_config(slippage="half-spread"))
        for body in bodies:
            bt.on_message(body)
        return bt

    bt = benchmark.pedantic(run, rounds=3, iterations=1)  # type: ignore[attr-defined]
    assert bt.stats.ticks == TICKS and bt.stats.orders
    seconds = benchmark.stats.stats.median  # type: ignore[attr-defined]
    print(f"\n{TICKS / seconds:,.0f} ticks/s; {bt.stats.candles} candles, "
          f"{len(bt.stats.orders)} orders per round")  # fmt: skip


_STREAM = """
import resource, sys, time
sys.path.insert(0, {here!r})
from test_backtest_speed import _config, ticks
from cryptopipeline.backtest import Backtest
bt = Backtest(_config(slippage="half-spread"))
started = time.perf_counter()
for body in ticks({count}):
    bt.on_message(body)
took = time.perf_counter() - started
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(rss, took, bt.stats.ticks, bt.stats.candles, len(bt.stats.orders))
"""


@pytest.mark.timeout(3600)  # about six minutes on a quiet core
@pytest.mark.parametrize("count", [10_000_000])
def test_memory_of_a_long_streamed_run(count: int) -> None:
    """10 million ticks generated as they are consumed (about 2.5 GB as a file), in a fresh
    process so its peak RSS is the backtest's alone."""
    here = str(__import__("pathlib").Path(__file__).parent)
    done = subprocess.run(
        [sys.executable, "-c", _STREAM.format(here=here, count=count)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    rss_kb, took, seen, candles, orders = done.stdout.split()
    assert int(seen) == count
    print(
        f"\n{count:,} ticks streamed: peak RSS {int(rss_kb) / 1024:.0f} MB, "
        f"{count / float(took):,.0f} ticks/s, {candles} candles, {orders} orders"
    )
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0
