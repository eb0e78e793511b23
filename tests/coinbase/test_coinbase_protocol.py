"""The Coinbase wire protocol module: time format, decimal strings, builders, request parsing."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from cryptopipeline.coinbase import (
    TIME_PATTERN,
    FeedRequestError,
    error_message,
    format_price,
    format_time,
    format_volume,
    heartbeat_message,
    match_message,
    opposite_side,
    parse_feed_request,
    parse_time,
    rest_trade,
    subscriptions_message,
    ticker_message,
)
from cryptopipeline.coinbase._time import to_micros

RECORDINGS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "coinbase"
PRICE = re.compile(r"^\d+(\.\d*[1-9])?$")
VOLUME = re.compile(r"^\d+\.\d{8}$")


def _recorded(name: str) -> list[dict[str, Any]]:
    path = RECORDINGS / name
    if not path.exists():
        pytest.skip(f"recorded Coinbase data not found at {path}")
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def test_time_has_six_fraction_digits_like_the_feed() -> None:
    moment = datetime(2021, 4, 17, 16, 43, 37, 79420, tzinfo=UTC)
    assert format_time(moment) == "2021-04-17T16:43:37.079420Z"
    assert format_time(moment.replace(microsecond=244075)) == "2021-04-17T16:43:37.244075Z"
    assert format_time(moment.replace(microsecond=0)) == "2021-04-17T16:43:37.000000Z"
    assert format_time(to_micros(moment)) == "2021-04-17T16:43:37.079420Z"
    assert format_time(0) == "1970-01-01T00:00:00.000000Z"


def test_time_parse_accepts_rfc3339_variants() -> None:
    expected = datetime(2022, 9, 12, 14, 28, 52, 584960, tzinfo=UTC)
    assert parse_time("2022-09-12T14:28:52.58496Z") == expected
    assert parse_time("2022-09-12T14:28:52.584960123Z") == expected
    assert parse_time("2022-09-12T16:28:52.58496+02:00") == expected
    assert parse_time("2022-09-12T14:28:52Z") == expected.replace(microsecond=0)
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_time("12/09/2022")
    with pytest.raises(ValueError, match="aware"):
        format_time(datetime(2022, 1, 1))


def test_wire_recorded_times_round_trip_exactly() -> None:
    """Frames captured byte-for-byte from the feed: formatting their parse gives them back."""
    times = [m["time"] for m in _recorded("COINBASE.ws.28.0.jsonl") if "time" in m]
    assert len(times) > 9_000
    for text in times:
        assert TIME_PATTERN.match(text), text
        assert format_time(parse_time(text)) == text


def test_trimmed_fractions_from_reserialised_files_still_parse() -> None:
    for message in _recorded("matches-1.jsonl"):
        moment = parse_time(message["time"])
        assert format_time(moment).rstrip("0Z") == message["time"].rstrip("0Z")


def test_decimal_strings() -> None:
    assert format_price(Decimal("22386.30")) == "22386.3"
    assert format_price(Decimal("985")) == "985"
    assert format_price(Decimal("1E+2")) == "100"
    assert format_price(Decimal("0.00000001")) == "0.00000001"
    assert format_price(Decimal("0.00")) == "0"
    assert format_volume(Decimal("94381.28")) == "94381.28000000"


def test_recorded_decimals_follow_the_same_rules() -> None:
    for message in _recorded("COINBASE.ws.28.0.jsonl"):
        if message.get("type") == "ticker":
            for key in ("price", "open_24h", "low_24h", "high_24h", "last_size"):
                assert PRICE.match(message[key]), (key, message[key])
            for key in ("volume_24h", "volume_30d"):
                assert VOLUME.match(message[key]), (key, message[key])


def _ticker() -> dict[str, Any]:
    return dict(
        ticker_message(
            sequence=5,
            product_id="BTC-USD",
            price=Decimal("100.10"),
            open_24h=Decimal("99"),
            volume_24h=Decimal("12.5"),
            low_24h=Decimal("98"),
            high_24h=Decimal("101"),
            volume_30d=Decimal("300"),
            best_bid=Decimal("100.09"),
            best_bid_size=Decimal("0.5"),
            best_ask=Decimal("100.10"),
            best_ask_size=Decimal("1.25"),
            taker_side="buy",
            time=datetime(2026, 1, 1, tzinfo=UTC),
            trade_id=42,
            last_size=Decimal("0.01"),
        )
    )


def test_builders_use_recorded_key_order_and_types() -> None:
    recorded = _recorded("COINBASE.ws.28.0.jsonl")
    ticker = next(m for m in recorded if m["type"] == "ticker")
    match = next(m for m in recorded if m["type"] == "match")
    ours = _ticker()
    assert [k for k in ours if k not in ("best_bid_size", "best_ask_size")] == list(ticker)
    assert {k: type(v) for k, v in ours.items() if k in ticker} == {
        k: type(v) for k, v in ticker.items()
    }
    built = dict(
        match_message(
            trade_id=1,
            maker_order_id="a",
            taker_order_id="b",
            maker_side="sell",
            size=Decimal("1"),
            price=Decimal("2"),
            product_id="BTC-USD",
            sequence=3,
            time="2026-01-01T00:00:00Z",
        )
    )
    assert list(built) == list(match)
    assert {k: type(v) for k, v in built.items()} == {k: type(v) for k, v in match.items()}
    heartbeat = heartbeat_message(sequence=1, last_trade_id=2, product_id="X-Y", time="t")
    assert list(heartbeat) == ["type", "sequence", "last_trade_id", "product_id", "time"]
    assert subscriptions_message({"ticker": ["BTC-USD"]}) == {
        "type": "subscriptions",
        "channels": [{"name": "ticker", "product_ids": ["BTC-USD"]}],
    }
    assert error_message("m") == {"type": "error", "message": "m"}
    assert list(error_message("m", "r")) == ["type", "message", "reason"]
    trade = rest_trade(
        time="t", trade_id=1, price=Decimal("1.50"), size=Decimal("2"), maker_side="buy"
    )
    assert list(trade) == ["time", "trade_id", "price", "size", "side"]
    assert trade["price"] == "1.5"


def test_sides() -> None:
    assert opposite_side("buy") == "sell"
    assert opposite_side("sell") == "buy"


def test_subscribe_request_both_channel_forms() -> None:
    request = parse_feed_request(
        b'{"type":"subscribe","product_ids":["ETH-USD","ETH-EUR"],'
        b'"channels":["heartbeat",{"name":"ticker","product_ids":["ETH-BTC","ETH-USD"]}]}'
    )
    assert request.type == "subscribe"
    assert request.channels == {
        "heartbeat": ["ETH-USD", "ETH-EUR"],
        "ticker": ["ETH-BTC", "ETH-USD", "ETH-EUR"],
    }
    assert parse_feed_request('{"type":"unsubscribe","channels":["heartbeat"]}').channels == {
        "heartbeat": []
    }


@pytest.mark.parametrize(
    ("raw", "message", "reason"),
    [
        ("{nope", "Malformed JSON", None),
        ("[1]", "Malformed JSON", "message must be a JSON object"),
        ('{"type":"hello"}', "Failed to subscribe", "Type has to be either"),
        ('{"type":"subscribe"}', "Failed to subscribe", "No channels provided"),
        ('{"type":"unsubscribe","channels":[]}', "Failed to unsubscribe", "No channels provided"),
        ('{"type":"subscribe","channels":[1]}', "Failed to subscribe", "channel must be"),
        ('{"type":"subscribe","channels":["x"],"product_ids":"BTC"}', "Failed to subscribe", None),
    ],
)
def test_bad_requests_explain_themselves(raw: str, message: str, reason: str | None) -> None:
    with pytest.raises(FeedRequestError) as caught:
        parse_feed_request(raw)
    assert caught.value.message == message
    if reason:
        assert caught.value.reason.startswith(reason)
