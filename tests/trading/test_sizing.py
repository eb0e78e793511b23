"""Sizing and rounding to the product's increments."""

from __future__ import annotations

from decimal import Decimal as D

from cryptopipeline.trading import OrderSide, ProductIncrements, SizedOrder, Sizing, size_order

BTC = ProductIncrements("BTC-USD", D("0.00000001"), D("0.01"), D("0.00001"))
DOGE = ProductIncrements("DOGE-USD", D("0.1"), D("0.00001"), D("1"), min_notional=D("1"))


def test_fixed_quote_rounds_down_to_base_increment() -> None:
    sized = size_order(
        Sizing(quote_amount=D("100")), BTC, side=OrderSide.BUY, price=D("60123.45"),
        equity=D("0"), position=D("0"),
    )  # fmt: skip
    # 100 / 60123.45 = 0.0016632446...; floored to 1e-8
    assert sized == SizedOrder(D("0.00166324"), D("0.00166324") * D("60123.45"))


def test_equity_fraction() -> None:
    sized = size_order(
        Sizing(mode="equity_fraction", fraction=D("0.1")), DOGE, side=OrderSide.BUY,
        price=D("0.15"), equity=D("1000"), position=D("0"),
    )  # fmt: skip
    assert isinstance(sized, SizedOrder)
    assert sized.base_size == D("666.6")  # 100 / 0.15 = 666.66.. floored to 0.1


def test_below_minimum_is_a_rejection() -> None:
    assert (
        size_order(
            Sizing(quote_amount=D("0.5")),
            BTC,
            side=OrderSide.BUY,
            price=D("60000"),
            equity=D("0"),
            position=D("0"),
        )
        == "below_min_size"
    )
    assert (
        size_order(
            Sizing(quote_amount=D("0.9")),
            DOGE,
            side=OrderSide.BUY,
            price=D("0.15"),
            equity=D("0"),
            position=D("0"),
        )
        == "below_min_size"  # 6.0 DOGE is above 1 DOGE but 0.90 USD < 1 USD min notional
    )


def test_sell_is_capped_by_position_and_needs_one() -> None:
    sizing = Sizing(quote_amount=D("1000"))
    sized = size_order(
        sizing, BTC, side=OrderSide.SELL, price=D("50000"), equity=D("0"), position=D("0.005")
    )
    assert sized == SizedOrder(D("0.005"), D("250"))
    assert (
        size_order(sizing, BTC, side=OrderSide.SELL, price=D("50000"), equity=D("0"), position=0)
        == "no_position"
    )


def test_limit_price_rounding_is_never_more_aggressive() -> None:
    assert BTC.round_price(D("60000.019"), OrderSide.BUY) == D("60000.01")
    assert BTC.round_price(D("60000.011"), OrderSide.SELL) == D("60000.02")
