"""Portfolio and PnL with hand-computed expectations, fees included."""

from __future__ import annotations

from decimal import Decimal as D

from cryptopipeline.trading import Fill, OrderSide, Portfolio


def fill(
    fid: str, side: OrderSide, size: str, price: str, fee: str, product: str = "BTC-USD"
) -> Fill:
    return Fill(fid, "coid", product, side, D(price), D(size), D(fee))


def test_buy_then_sell_realizes_pnl_and_fees() -> None:
    p = Portfolio(D("10000"))
    p.apply_fill(fill("1", OrderSide.BUY, "0.1", "50000", "3"))  # cost 5000 + fee 3
    assert p.cash == D("4997")
    assert p.quantity("BTC-USD") == D("0.1")
    assert p.position("BTC-USD").average_entry == D("50000")
    p.apply_fill(fill("2", OrderSide.BUY, "0.1", "52000", "3.12"))  # avg (5000+5200)/0.2 = 51000
    assert p.position("BTC-USD").average_entry == D("51000")
    assert p.cash == D("4997") - D("5200") - D("3.12")
    p.mark("BTC-USD", D("53000"))
    assert p.unrealized_pnl == D("400")  # (53000-51000)*0.2
    p.apply_fill(fill("3", OrderSide.SELL, "0.15", "55000", "4.95"))
    # realized (55000-51000)*0.15 = 600; cash += 8250 - 4.95
    assert p.realized_pnl == D("600")
    assert p.fees == D("11.07")
    assert p.cash == D("-206.12") + D("8250") - D("4.95")
    assert p.quantity("BTC-USD") == D("0.05")
    assert p.position("BTC-USD").average_entry == D("51000")
    p.mark("BTC-USD", D("50000"))
    assert p.unrealized_pnl == D("-50")  # (50000-51000)*0.05
    assert p.net_pnl == D("600") - D("50") - D("11.07")
    assert p.equity == p.cash + D("0.05") * D("50000")
    assert p.equity == D("10000") + p.net_pnl


def test_close_to_flat_resets_entry_and_flip_opens_at_fill_price() -> None:
    p = Portfolio(D("1000"))
    p.apply_fill(fill("1", OrderSide.BUY, "2", "100", "0"))
    p.apply_fill(fill("2", OrderSide.SELL, "2", "90", "0.18"))
    assert p.quantity("BTC-USD") == 0
    assert p.position("BTC-USD").average_entry == 0
    assert p.realized_pnl == D("-20")
    assert p.cash == D("1000") - D("200") + D("180") - D("0.18")
    p.apply_fill(fill("3", OrderSide.SELL, "1", "95", "0"))
    p.apply_fill(fill("4", OrderSide.BUY, "3", "85", "0"))  # closes 1 short (+10), opens 2 long
    assert p.realized_pnl == D("-10")
    assert p.quantity("BTC-USD") == D("2")
    assert p.position("BTC-USD").average_entry == D("85")


def test_the_same_fill_twice_counts_once() -> None:
    p = Portfolio(D("1000"))
    f = fill("x", OrderSide.BUY, "1", "100", "0.5")
    assert p.apply_fill(f) is True
    assert p.apply_fill(f) is False
    assert p.cash == D("899.5")
    assert p.quantity("BTC-USD") == 1


def test_products_are_separate_and_snapshot_is_strings() -> None:
    p = Portfolio(D("1000"))
    p.apply_fill(fill("1", OrderSide.BUY, "1", "100", "1", product="ETH-USD"))
    p.apply_fill(fill("2", OrderSide.BUY, "0.001", "60000", "0.6"))
    snap = p.snapshot()
    assert snap["positions"]["ETH-USD"]["quantity"] == "1"
    assert snap["positions"]["BTC-USD"]["average_entry"] == "60000"
    assert D(snap["cash"]) == D("838.4")
