"""Each risk limit: one test that trips it and one that does not."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from cryptopipeline.trading import OrderSide, RejectReason, RiskEngine, RiskLimits

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
LIMITS = RiskLimits(
    max_position_notional=D("1000"),
    max_position_notional_by_product={"ETH-USD": D("300")},
    max_order_notional=D("250"),
    max_daily_loss=D("100"),
    daily_reset_hour_utc=6,
    max_open_orders=2,
    cooldown_after_fill_s=30,
    stale_price_s=5,
)


def check(engine: RiskEngine, **override: Any) -> RejectReason | None:
    args: dict[str, Any] = dict(
        product_id="BTC-USD", side=OrderSide.BUY, notional=D("100"), position_notional=D("0"),
        open_orders=0, equity=D("10000"), now=NOW, last_tick_at=NOW - 1,
    )  # fmt: skip
    args.update(override)
    rejection = engine.check(**args)
    return None if rejection is None else rejection.reason


def test_all_clear() -> None:
    assert check(RiskEngine(LIMITS)) is None


def test_kill_switch() -> None:
    engine = RiskEngine(LIMITS)
    assert check(engine) is None
    engine.kill("operator")
    assert check(engine) is RejectReason.KILL_SWITCH


def test_stale_price() -> None:
    engine = RiskEngine(LIMITS)
    assert check(engine, last_tick_at=NOW - 5) is None
    assert check(engine, last_tick_at=NOW - 5.01) is RejectReason.STALE_PRICE
    assert check(engine, last_tick_at=None) is RejectReason.NO_PRICE


def test_max_open_orders() -> None:
    engine = RiskEngine(LIMITS)
    assert check(engine, open_orders=1) is None
    assert check(engine, open_orders=2) is RejectReason.MAX_OPEN_ORDERS


def test_cooldown_after_fill() -> None:
    engine = RiskEngine(LIMITS)
    engine.note_fill("BTC-USD", NOW - 29)
    assert check(engine) is RejectReason.COOLDOWN
    assert check(engine, product_id="ETH-USD") is None  # per product
    assert check(engine, now=NOW + 1, last_tick_at=NOW) is None  # 30 s passed


def test_max_order_notional() -> None:
    engine = RiskEngine(LIMITS)
    assert check(engine, notional=D("250")) is None
    assert check(engine, notional=D("250.01")) is RejectReason.MAX_ORDER_NOTIONAL


def test_max_position_per_product() -> None:
    engine = RiskEngine(LIMITS)
    assert check(engine, position_notional=D("800"), notional=D("200")) is None
    assert check(engine, position_notional=D("800.01"), notional=D("200")) is (
        RejectReason.MAX_POSITION
    )
    assert (
        check(engine, product_id="ETH-USD", position_notional=D("200"), notional=D("100")) is None
    )
    assert check(engine, product_id="ETH-USD", position_notional=D("201"), notional=D("100")) is (
        RejectReason.MAX_POSITION
    )
    # reducing an oversized position is always allowed
    assert (
        check(engine, side=OrderSide.SELL, position_notional=D("5000"), notional=D("100")) is None
    )


def test_max_daily_loss_and_reset_hour() -> None:
    engine = RiskEngine(LIMITS)
    assert check(engine, equity=D("10000")) is None  # the day (since 06:00 UTC) starts here
    assert check(engine, equity=D("9900.01")) is None  # lost 99.99
    assert check(engine, equity=D("9900")) is RejectReason.MAX_DAILY_LOSS
    # still before 06:00 the next day: same day
    assert check(
        engine, equity=D("9900"), now=NOW + 6 * 3600 - 1, last_tick_at=NOW + 6 * 3600 - 1
    ) is (RejectReason.MAX_DAILY_LOSS)
    # 06:00 UTC: a new day starts from the current equity
    later = NOW + 6 * 3600
    assert check(engine, equity=D("9900"), now=later, last_tick_at=later) is None


@pytest.mark.parametrize("reason", list(RejectReason))
def test_every_reason_has_a_stable_code(reason: RejectReason) -> None:
    assert reason.value == reason.value.lower()


@pytest.mark.parametrize("value", ["-1", "0", "NaN", "sNaN", "Infinity"])
def test_a_per_product_position_limit_must_be_a_positive_finite_amount(value: str) -> None:
    with pytest.raises(ValueError, match="max_position_notional_by_product"):
        RiskLimits(max_position_notional_by_product={"BTC-USD": value})  # type: ignore[dict-item]


def test_release_undoes_the_kill_switch() -> None:
    engine = RiskEngine(RiskLimits())
    engine.kill("test")
    engine.release()
    assert engine.killed is False and engine.kill_reason == ""
