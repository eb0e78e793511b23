"""The backtest engine on hand-built candles and ticks: signals, orders, fees, equity."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal as D
from typing import Any

import orjson
import pytest

from cryptopipeline.backtest import Backtest, BacktestConfig, max_drawdown
from cryptopipeline.market import Candle
from cryptopipeline.trading import OrderSide

DAY_S = 86_400
T0_S = 1_600_041_600  # 2020-09-14T00:00:00Z, a day boundary


def _config(**overrides: Any) -> BacktestConfig:
    values: dict[str, Any] = dict(
        strategies=[{"name": "sma_crossover", "parameters": {"fast": 3, "slow": 5}}],
        intervals_s=[DAY_S], fee_rate=D("0.006"),
        trading={"sizing": {"mode": "fixed_quote", "quote_amount": "200"}},
    )  # fmt: skip
    values.update(overrides)
    return BacktestConfig.model_validate(values)


def _candles(closes: list[D]) -> list[Candle]:
    out = []
    for i, close in enumerate(closes):
        start = (T0_S + i * DAY_S) * 1_000_000
        out.append(
            Candle(
                "BTC-USD",
                DAY_S,
                start,
                start + DAY_S * 1_000_000,
                close,
                close,
                close,
                close,
                D(1),
                close,
                1,
                i,
                i,
            )
        )
    return out


# 20 falling days (fast SMA below slow), a rally, a turn, then flat to 60 candles.
CLOSES = [D(110 - i) for i in range(20)] + [D(x) for x in (100, 110, 120, 130, 140, 135, 125)]
CLOSES += [D(125)] * (60 - len(CLOSES))


def test_sma_crossover_hand_checked() -> None:
    bt = Backtest(_config())
    for candle in _candles(CLOSES):
        bt.on_candle(candle)
    # Candle 19 (close 91): SMA3 92 < SMA5 93. Candle 20 (close 100): SMA3 (92+91+100)/3 =
    # 94.33 > SMA5 (94+93+92+91+100)/5 = 94: BUY. Candle 26 (125): SMA3 133.33 > SMA5 130;
    # candle 27 (125): SMA3 (135+125+125)/3 = 128.33 < SMA5 (130+140+135+125+125)/5 = 131:
    # SELL. The flat tail brings both averages to 125 (no side): no third signal.
    assert [(s.action.value, s.close_price) for s in bt.stats.signals] == [
        ("BUY", D(100)), ("SELL", D(125))
    ]  # fmt: skip
    buy, sell = bt.trades
    assert buy.time == "2020-10-05T00:00:00.000000Z"  # candle 20's close (its end)
    assert sell.time == "2020-10-12T00:00:00.000000Z"
    # BUY: 200 USD at 100 = 2 BTC, fee 2 * 100 * 0.006 = 1.2.
    assert (buy.side, buy.size, buy.price, buy.fee) == (OrderSide.BUY, D(2), D(100), D("1.2"))
    # SELL: 200 USD at 125 = 1.6 BTC (less than the 2 held), fee 1.6 * 125 * 0.006 = 1.2.
    assert (sell.side, sell.size, sell.price, sell.fee) == (OrderSide.SELL, D("1.6"), D(125),
                                                           D("1.2"))  # fmt: skip
    # Net of its fee and 1.6/2 of the entry fee: 25 * 1.6 - 1.2 - 0.96 = 37.84.
    assert sell.realized_pnl == D("37.84")
    portfolio = bt.blotter.portfolio
    # cash 10000 - 200 - 1.2 + 200 - 1.2; 0.4 BTC left, worth 0.4 * 125 at the last close.
    assert portfolio.cash == D("9997.6")
    assert portfolio.quantity("BTC-USD") == D("0.4")
    assert portfolio.fees == D("2.4")
    metrics = bt.metrics()
    assert metrics.final_equity == D("10047.6")
    assert metrics.total_return == pytest.approx(0.00476)
    assert metrics.trades == 2 and metrics.closed_trades == 1 and metrics.win_rate == 1.0
    assert metrics.fees == D("2.4")
    # Peak 9798.8 + 2 * 140 = 10078.8 (day 24); trough 10047.6 after the sell.
    assert metrics.max_drawdown == pytest.approx(31.2 / 10078.8)
    assert metrics.exposure == pytest.approx(40 / 60)  # held from candle 20 to the end
    assert bt.stats.orders[0].client_order_id == buy.client_order_id


def test_same_input_same_report() -> None:
    runs = []
    for _ in range(2):
        bt = Backtest(_config())
        for candle in _candles(CLOSES):
            bt.on_candle(candle)
        runs.append([t.to_dict() for t in bt.trades])
    assert runs[0] == runs[1]


def test_risk_limits_reject_with_reason() -> None:
    bt = Backtest(_config(risk={"max_order_notional": "150"}))
    for candle in _candles(CLOSES):
        bt.on_candle(candle)
    assert bt.trades == []
    assert bt.stats.rejections == {"max_order_notional": 1, "no_position": 1}


def _tick(trade_id: int, second: float, price: str, bid: str, ask: str) -> bytes:
    whole = int(second)
    micros = round((second - whole) * 1_000_000)
    return orjson.dumps({
        "type": "ticker", "product_id": "BTC-USD", "trade_id": trade_id, "sequence": trade_id,
        "price": price, "last_size": "0.5", "side": "buy", "best_bid": bid, "best_ask": ask,
        "time": f"2026-01-01T00:00:{whole:02d}.{micros:06d}Z",
    })  # fmt: skip


def test_ticks_half_spread_fills_at_the_book_of_the_candle_close() -> None:
    # 1-second candles, no grace. SMA 1/2: second 1 (100 < 100.5) sets the side, second 2
    # (101 > 100.5) crosses up: BUY, closed by the tick at 3.5 s.
    config = _config(intervals_s=[1], grace_s=0, slippage="half-spread",
                     strategies=[{"name": "sma_crossover", "parameters": {"fast": 1, "slow": 2}}],
                     risk={"stale_price_s": 5})  # fmt: skip
    bt = Backtest(config)
    prices = ["101", "100", "101", "102", "102"]
    for n, price in enumerate(prices):
        p = D(price)
        bt.on_message(_tick(n + 1, n + 0.5, price, str(p - 1), str(p + 1)))
    assert [s.action.value for s in bt.stats.signals] == ["BUY"]
    (buy,) = bt.trades
    assert buy.price == D(102)  # the ask of the last tick before the candle's end (101 + 1)
    assert buy.time == "2026-01-01T00:00:03.000000Z"
    assert buy.fee == buy.size * D(102) * D("0.006")


def test_ticks_bps_slippage_moves_the_trade_price() -> None:
    config = _config(intervals_s=[1], grace_s=0, slippage="bps", slippage_bps=D(50),
                     strategies=[{"name": "sma_crossover", "parameters": {"fast": 1, "slow": 2}}],
                     risk={"stale_price_s": 5})  # fmt: skip
    bt = Backtest(config)
    for n, price in enumerate(["101", "100", "101", "102", "102"]):
        bt.on_message(_tick(n + 1, n + 0.5, price, "1", "100000"))
    (buy,) = bt.trades
    assert buy.price == D(101) * D("1.005")  # the trade price, not the (absurd) book


def test_bad_messages_are_counted_not_fatal() -> None:
    bt = Backtest(_config(intervals_s=[1], grace_s=0))
    bt.on_message(b"{oops")
    bt.on_message(b'{"type":"match"}')
    assert bt.stats.rejected_input == {"malformed_json": 1}
    assert bt.stats.ignored == 1


def test_max_drawdown() -> None:
    assert max_drawdown([D(100), D(120), D(90), D(130), D(117)]) == pytest.approx(0.25)
    assert max_drawdown([D(1), D(2), D(3)]) == 0.0


def test_limit_orders_are_refused_by_the_config() -> None:
    with pytest.raises(ValueError, match="market orders only"):
        _config(trading={"order_type": "limit"})


def test_the_engine_runs_on_domain_code_only() -> None:
    """No bot module (the service, its Kafka order log, Coinbase's REST) and no Kafka client
    behind the engine: the paper broker, planning and the trading settings are the trading
    package's; only the CLI's topic reader (`backtest._kafka`) speaks Kafka."""
    code = (
        "import sys, cryptopipeline.backtest\n"
        "print(sorted(m for m in sys.modules if m.startswith('cryptopipeline.bot')"
        " or m.split('.')[0] in ('aiokafka', 'httpx', 'kubernetes', 'kopf', 'websockets')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
