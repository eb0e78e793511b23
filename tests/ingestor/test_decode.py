"""The frame decoder: real Coinbase frames decode; anything else is a reasoned rejection."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cryptopipeline.ingestor._decode import (
    ControlFrame,
    Family,
    HeartbeatFrame,
    Reject,
    RejectedFrame,
    TradeFrame,
    decode,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "coinbase"
LIMIT = 64 * 1024
BTC = frozenset({"BTC-USD"})

TICKER = (
    '{"type":"ticker","sequence":47332707,"product_id":"BTC-USD","price":"6800.00000000",'
    '"open_24h":"6014.24","volume_24h":"114569.43682419","low_24h":"5100.0","high_24h":"7000",'
    '"volume_30d":"5936204.88910495","best_bid":"5200","best_bid_size":"0.1","best_ask":"6800",'
    '"best_ask_size":"0.2","side":"buy","time":"2019-05-10T20:44:15.69Z","trade_id":3526965,'
    '"last_size":"1.00001000"}'
)


def _lines(name: str) -> list[dict[str, object]]:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"recorded data not found at {path}")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_ticker_keeps_its_bytes_and_event_time() -> None:
    frame = decode(TICKER, BTC, LIMIT)
    assert isinstance(frame, TradeFrame)
    assert (frame.product_id, frame.family, frame.trade_id) == ("BTC-USD", Family.TICKER, 3526965)
    assert frame.time_ms == 1557521055690
    assert frame.raw == TICKER.encode()


def test_every_recorded_ticker_match_and_heartbeat_decodes() -> None:
    messages = _lines("COINBASE.ws.28.0.jsonl") + _lines("matches-1.jsonl")
    messages += _lines("coinbase-pro-node-ws-fixtures.jsonl")
    counts = {"ticker": 0, "match": 0, "heartbeat": 0}
    for message in messages:
        kind = message.get("type")
        if kind not in ("ticker", "match", "last_match", "heartbeat"):
            continue
        product = str(message["product_id"])
        frame = decode(orjson.dumps(message).decode(), frozenset({product}), LIMIT)
        if kind == "heartbeat":
            assert isinstance(frame, HeartbeatFrame), frame
            counts["heartbeat"] += 1
        else:
            assert isinstance(frame, TradeFrame), frame
            assert frame.trade_id == message["trade_id"]
            counts["ticker" if kind == "ticker" else "match"] += 1
    assert counts["ticker"] >= 100 and counts["match"] >= 200 and counts["heartbeat"] >= 1


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("{not json", Reject.MALFORMED_JSON),
        ("[1, 2]", Reject.NOT_AN_OBJECT),
        ('{"type":"l2update","product_id":"BTC-USD"}', Reject.UNKNOWN_TYPE),
        ('{"no":"type"}', Reject.UNKNOWN_TYPE),
        (TICKER.replace("BTC-USD", "ETH-USD"), Reject.UNSUBSCRIBED_PRODUCT),
        (TICKER.replace('"trade_id":3526965', '"trade_id":"3526965"'), Reject.INVALID_FIELD),
        (TICKER.replace('"trade_id":3526965', '"trade_id":true'), Reject.INVALID_FIELD),
        (TICKER.replace('"price":"6800.00000000"', '"price":6800'), Reject.INVALID_FIELD),
        (TICKER.replace('"price":"6800.00000000"', '"price":"NaN"'), Reject.INVALID_FIELD),
        (TICKER.replace("2019-05-10T20:44:15.69Z", "yesterday"), Reject.INVALID_FIELD),
        (TICKER.replace("2019-05-10T20:44:15.69Z", "2019-05-10T20:44:15"), Reject.INVALID_FIELD),
        ('{"type":"heartbeat","product_id":"BTC-USD","last_trade_id":-1}', Reject.INVALID_FIELD),
        (b'{"type":"ticker"}', Reject.BINARY),
        ("x" * (LIMIT + 1), Reject.OVERSIZED),
    ],
)
def test_bad_frames_are_rejected_with_their_reason(frame: str | bytes, reason: Reject) -> None:
    decoded = decode(frame, BTC, LIMIT)
    assert isinstance(decoded, RejectedFrame)
    assert decoded.reason is reason
    assert decoded.raw == (frame if isinstance(frame, bytes) else frame.encode())
    assert decoded.detail


def test_control_messages_are_not_rejected() -> None:
    for text in ['{"type":"subscriptions","channels":[]}', '{"type":"error","message":"x"}']:
        assert isinstance(decode(text, BTC, LIMIT), ControlFrame)


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    assert isinstance(decode(data, BTC, LIMIT), RejectedFrame)


@given(st.text(max_size=2048))
def test_arbitrary_text_never_raises(text: str) -> None:
    """Whatever text arrives comes back as a frame; a rejection keeps the exact bytes and
    says why, and text that is not a JSON object is always rejected as such."""
    frame = decode(text, BTC, LIMIT)
    assert isinstance(frame, TradeFrame | HeartbeatFrame | ControlFrame | RejectedFrame)
    if isinstance(frame, RejectedFrame):
        assert frame.raw == text.encode("utf-8", "surrogatepass")
        assert frame.detail
    if not text.strip().startswith("{"):  # JSON's whitespace is a subset of str.strip()'s
        assert isinstance(frame, RejectedFrame)
        assert frame.reason in (Reject.MALFORMED_JSON, Reject.NOT_AN_OBJECT)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)


@given(
    st.dictionaries(
        st.sampled_from(
            ["type", "product_id", "trade_id", "time", "price", "last_size", "size",
             "last_trade_id", "sequence"]
        ),
        json_values | st.sampled_from(["ticker", "heartbeat", "match", "BTC-USD"]),
    )
)  # fmt: skip
def test_arbitrary_json_objects_never_raise(body: dict[str, object]) -> None:
    frame = decode(json.dumps(body), BTC, LIMIT)
    if isinstance(frame, TradeFrame | HeartbeatFrame):
        assert body["product_id"] == "BTC-USD"
