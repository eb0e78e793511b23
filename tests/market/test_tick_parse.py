"""Raw-topic bodies into ticks and heartbeats; anything else is a reason, never an exception."""

from __future__ import annotations

from decimal import Decimal

import orjson
from hypothesis import given
from hypothesis import strategies as st

from cryptopipeline.market import Heartbeat, Rejected, Tick, epoch_us, parse_event, parse_tick

TICKER = {
    "type": "ticker",
    "sequence": 1,
    "product_id": "BTC-USD",
    "price": "67234.12",
    "best_bid": "67234.11",
    "best_ask": "67234.13",
    "side": "buy",
    "time": "2024-05-01T12:00:00.123456Z",
    "trade_id": 42,
    "last_size": "0.00012345",
}


def test_a_ticker_becomes_a_tick_with_exact_decimals() -> None:
    tick = parse_tick(orjson.dumps(TICKER))
    assert tick == Tick(
        "BTC-USD",
        42,
        epoch_us("2024-05-01T12:00:00.123456Z"),
        Decimal("67234.12"),
        Decimal("0.00012345"),
        "buy",
        Decimal("67234.11"),
        Decimal("67234.13"),
    )
    assert isinstance(tick, Tick) and tick.time_us == 1_714_564_800_123_456


def test_a_backfilled_ticker_has_no_book() -> None:
    body = {k: v for k, v in TICKER.items() if k not in ("best_bid", "best_ask", "sequence")}
    tick = parse_tick(body)
    assert isinstance(tick, Tick) and tick.best_bid is None and tick.best_ask is None


def test_heartbeats_and_time_fractions() -> None:
    event = parse_event(
        '{"type":"heartbeat","sequence":9,"last_trade_id":41,"product_id":"BTC-USD","time":"2024-05-01T12:00:01.5Z"}'
    )
    assert event == Heartbeat("BTC-USD", 1_714_564_801_500_000, 41)
    assert isinstance(parse_tick(orjson.dumps({"type": "heartbeat"})), Rejected)


def test_bad_bodies_get_reasons() -> None:
    cases = {
        b"{": "malformed_json",
        b"[1]": "not_an_object",
        orjson.dumps({"type": "match"}): "unknown_type",
        orjson.dumps({**TICKER, "price": "abc"}): "invalid_field",
        orjson.dumps({**TICKER, "price": "-1"}): "invalid_field",
        orjson.dumps({**TICKER, "last_size": "0"}): "invalid_field",
        orjson.dumps({**TICKER, "trade_id": "42"}): "invalid_field",
        orjson.dumps({**TICKER, "time": "yesterday"}): "invalid_field",
        orjson.dumps({**TICKER, "side": "up"}): "invalid_field",
        orjson.dumps({**TICKER, "price": "NaN"}): "invalid_field",
    }
    for raw, reason in cases.items():
        result = parse_tick(raw)
        assert isinstance(result, Rejected) and result.reason == reason, (raw, result)


@given(
    st.binary(max_size=300)
    | st.dictionaries(st.text(max_size=10), st.none() | st.integers() | st.text(max_size=20))
)
def test_never_raises(raw: bytes | dict[str, object]) -> None:
    assert isinstance(parse_event(raw), Tick | Heartbeat | Rejected)
