"""What the bot reads from outside, forged: ticks, trade signals, order events read back from
Kafka, and the exchange's fills. Each is a checked value or a `BadInput` with a reason, never
a crash (`decimal.InvalidOperation` from sNaN used to stop the bot), and the bot keeps going.

Property tests (hypothesis) throw well-formed JSON with forged values at each decoder.
"""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal
from typing import Any

import orjson
import pytest
from bot_support import signal, ticker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptopipeline.bot import Bot, BotSettings, PaperBroker
from cryptopipeline.bot._coinbase import _fill
from cryptopipeline.bot._inputs import (
    BadInput,
    Tick,
    decode_order_event,
    decode_signal,
    decode_tick,
    money,
)
from cryptopipeline.core import KafkaSettings
from cryptopipeline.trading import OrderEvent, OrderEventType, OrderSide, OrderType

PRODUCTS = frozenset({"BTC-USD"})


def dumps(value: Any) -> bytes:
    """JSON as any producer may write it (the stdlib: integers of any size)."""
    return json.dumps(value, allow_nan=False).encode()


FORGED_NUMBERS = ["sNaN", "NaN", "-NaN", "Infinity", "-Infinity", "inf", "1e999999999",
                  "1e-999999999", "-1", "0", "-0", "", " ", "0x10", "1_000", "1e12000"]  # fmt: skip


@pytest.mark.parametrize("field", ["best_bid", "best_ask", "price"])
@pytest.mark.parametrize("value", ["sNaN", "NaN", "Infinity", "-Infinity", "-5", "0"])
def test_a_non_finite_or_non_positive_price_is_bad_input(field: str, value: str) -> None:
    tick = ticker("BTC-USD", Decimal("60000"), Decimal("60001"))
    tick[field] = value
    if field == "price":  # price is read only when the book top is missing
        del tick["best_bid"], tick["best_ask"]
    with pytest.raises(BadInput) as caught:
        decode_tick(orjson.dumps(tick), PRODUCTS)
    assert caught.value.reason == "bad_decimal"
    assert field.replace("price", "best_bid") in caught.value.detail or field in str(caught.value)


def test_a_good_tick_and_a_heartbeat() -> None:
    tick = decode_tick(orjson.dumps(ticker("BTC-USD", Decimal("1.5"), Decimal("1.6"))), PRODUCTS)
    assert isinstance(tick, Tick) and (tick.bid, tick.ask) == (Decimal("1.5"), Decimal("1.6"))
    assert decode_tick(b'{"type":"heartbeat","product_id":"BTC-USD"}', PRODUCTS) is None
    other = ticker("ETH-USD", Decimal("sNaN") if False else Decimal(1), Decimal(2))
    assert decode_tick(orjson.dumps(other), PRODUCTS) is None  # not traded here: not ours


def bot_settings() -> BotSettings:
    return BotSettings(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9"))


async def test_the_bot_counts_a_bad_tick_logs_it_once_and_keeps_its_book(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = Bot(bot_settings(), PaperBroker())
    good = ticker("BTC-USD", Decimal("60000"), Decimal("60001"))
    bot.on_tick(orjson.dumps(good))
    for _ in range(3):
        bot.on_tick(orjson.dumps(good | {"best_bid": "sNaN"}), "raw/0@7")
    bot.on_tick(orjson.dumps(good | {"best_ask": "Infinity"}), "raw/0@8")
    assert bot.market.books["BTC-USD"] == (Decimal("60000"), Decimal("60001"))
    assert bot.metrics.bad_input.labels("tick", "bad_decimal")._value.get() == 4
    logged = [r for r in caplog.records if r.getMessage().startswith("bad input skipped")]
    assert len(logged) == 1 and logged[0].__dict__["reason"] == "bad_decimal"
    assert "sNaN" in logged[0].__dict__["detail"] and logged[0].__dict__["at"] == "raw/0@7"
    equity = bot.blotter.portfolio.equity  # the marks stayed finite
    assert equity.is_finite()


def test_a_signal_must_be_for_a_traded_product_with_a_sane_price() -> None:
    good = signal(1)
    assert decode_signal(good.model_dump_json().encode(), PRODUCTS) == good
    raw = orjson.loads(good.model_dump_json())
    for change, reason in [
        ({"close_price": "sNaN"}, "schema"),
        ({"close_price": "-1"}, "bad_decimal"),
        ({"close_price": "1e-40"}, "bad_decimal"),
        ({"close_price": "1e40"}, "bad_decimal"),
        ({"product_id": "DOGE-USD"}, "unknown_product"),
        ({"action": "HODL"}, "schema"),
        ({"last_trade_id": -1}, "schema"),
        ({"extra": 1}, "schema"),
    ]:
        with pytest.raises(BadInput) as caught:
            decode_signal(orjson.dumps(raw | change), PRODUCTS)
        assert caught.value.reason == reason, change


def order_event(**change: Any) -> dict[str, Any]:
    event = OrderEvent(
        event=OrderEventType.SUBMITTED, client_order_id="c-1", signal_id="s-1",
        product_id="BTC-USD", time="2026-01-01T00:00:00Z", broker="paper", side=OrderSide.BUY,
        order_type=OrderType.MARKET, base_size=Decimal("0.1"), reference_price=Decimal("60000"),
    )  # fmt: skip
    return orjson.loads(event.model_dump_json()) | change


def test_order_events_read_back_are_checked_before_the_blotter_folds_them() -> None:
    assert decode_order_event(orjson.dumps(order_event())).base_size == Decimal("0.1")
    fill = {"fill_id": "f", "price": "1", "size": "1", "fee": "0"}
    for change in [
        {"base_size": "-0.1"}, {"base_size": "NaN"}, {"side": None}, {"base_size": None},
        {"reference_price": "1e999"}, {"event": "filled", "fill": fill | {"price": "sNaN"}},
        {"event": "filled", "fill": fill | {"size": "0"}}, {"client_order_id": "x" * 300},
        {"event": "teleported"},
    ]:  # fmt: skip
        with pytest.raises(BadInput):
            decode_order_event(orjson.dumps(order_event(**change)))


def test_a_forged_fill_from_the_exchange_is_refused() -> None:
    good = {"entry_id": "e1", "product_id": "BTC-USD", "side": "BUY", "price": "60000",
            "size": "0.1", "commission": "1.2"}  # fmt: skip
    assert _fill("c", good).price == Decimal("60000")
    for change in [{"price": "sNaN"}, {"size": "-1"}, {"commission": "Infinity"},
                   {"side": "HOLD"}, {"entry_id": 5}, {"price": [1]}]:  # fmt: skip
        with pytest.raises(BadInput):
            _fill("c", good | change)


# ---- property tests: forged values as well-formed JSON --------------------------------------

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(FORGED_NUMBERS),
    st.text(max_size=20), st.text(min_size=500, max_size=3000),
)  # fmt: skip
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)
times = st.one_of(
    st.sampled_from(["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z",
                     "2100-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "yesterday", ""]),
    json_value,
)  # fmt: skip
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def deep(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


@FAST
@given(
    field=st.sampled_from(["best_bid", "best_ask", "price", "time", "product_id", "type"]),
    value=st.one_of(json_value, times),
    drop=st.booleans(),
)
def test_property_forged_ticks_decode_or_are_bad_input(field: str, value: Any, drop: bool) -> None:
    tick = ticker("BTC-USD", Decimal("60000"), Decimal("60001"))
    if drop:
        tick.pop(field)
    else:
        tick[field] = value
    try:
        decoded = decode_tick(dumps(tick), PRODUCTS)
    except BadInput as exc:
        assert exc.reason and exc.detail and len(str(exc)) < 400
        return
    if decoded is not None:  # anything accepted is safe to do arithmetic with
        assert decoded.bid.is_finite() and decoded.bid > 0 and decoded.ask > 0
        assert ((decoded.bid + decoded.ask) / 2).is_finite()


@FAST
@given(
    field=st.sampled_from(["signal_id", "product_id", "event_time", "action", "strategy",
                           "parameters", "indicators", "window", "close_price",
                           "last_trade_id", "schema_version"]),
    value=st.one_of(json_value, times),
)  # fmt: skip
def test_property_forged_signals_decode_or_are_bad_input(field: str, value: Any) -> None:
    raw = orjson.loads(signal(1).model_dump_json()) | {field: value}
    try:
        decoded = decode_signal(dumps(raw), PRODUCTS)
    except BadInput as exc:
        assert exc.reason in ("schema", "bad_decimal", "bad_field", "unknown_product")
        assert len(str(exc)) < 400  # a reason, not the whole forged input
        return
    assert decoded.product_id in PRODUCTS and decoded.close_price > 0


@FAST
@given(
    field=st.sampled_from(["event", "client_order_id", "signal_id", "product_id", "side",
                           "order_type", "base_size", "limit_price", "reference_price",
                           "exchange_order_id", "fill", "reason", "time"]),
    value=json_value,
)  # fmt: skip
def test_property_forged_order_events_decode_or_are_bad_input(field: str, value: Any) -> None:
    try:
        event = decode_order_event(dumps(order_event(**{field: value})))
    except BadInput as exc:
        assert exc.reason and len(str(exc)) < 400
        return
    from cryptopipeline.trading import Blotter

    blotter = Blotter(Decimal("1000"))
    blotter.apply(event)  # what the decoder lets through, the blotter folds without error
    if blotter.unresolved():
        blotter.unresolved()[0].request()


@FAST
@given(raw=st.one_of(st.binary(max_size=200), json_value.map(dumps)))
def test_property_any_bytes_are_handled_by_every_decoder(raw: bytes) -> None:
    for decode in (lambda b: decode_tick(b, PRODUCTS), lambda b: decode_signal(b, PRODUCTS),
                   decode_order_event):  # fmt: skip
        with contextlib.suppress(BadInput):
            decode(raw)


@pytest.mark.parametrize("levels", [100, 5_000, 100_000])
def test_deep_nesting_is_bad_input(levels: int) -> None:
    for decode in (lambda b: decode_signal(b, PRODUCTS), decode_order_event):
        with pytest.raises(BadInput):
            decode(deep(levels))
    try:  # not a ticker: skipped like a heartbeat, or refused when the parser gives up
        assert decode_tick(deep(levels), PRODUCTS) is None
    except BadInput as exc:
        assert exc.reason == "not_json"


@FAST
@given(value=st.one_of(json_value, st.decimals(allow_nan=True, allow_infinity=True)))
def test_property_money_is_finite_bounded_or_refused(value: Any) -> None:
    try:
        amount = money(value, "x", zero=True)
    except BadInput as exc:
        assert exc.reason == "bad_decimal"
        return
    assert amount.is_finite() and 0 <= amount <= Decimal(10) ** 12
    assert (amount * amount).is_finite()
