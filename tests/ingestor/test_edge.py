"""The ingest trust boundary, without a broker: every value a frame or a REST page carries is
checked before it can reach a sequencer or Kafka (issue 17, breaks 4 and 5, and fuzzing).

The strategies forge well-formed JSON: huge, negative and zero ids and sizes, NaN, Infinity
and sNaN strings, times far in the past and the future, wrong types, deep nesting and long
strings. The property: `decode` never raises; what it accepts is sane; the rest is a
rejection with a reason (which the service dead-letters).
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptopipeline.coinbase import format_time
from cryptopipeline.ingestor._backfill import BackfillError, TradeBackfiller, trade_record
from cryptopipeline.ingestor._decode import (
    MAX_ID,
    ControlFrame,
    Family,
    HeartbeatFrame,
    Reject,
    RejectedFrame,
    TimeWindow,
    TradeFrame,
    decode,
)
from cryptopipeline.ingestor._sequencer import Gap

LIMIT = 64 * 1024
BTC = frozenset({"BTC-USD"})
WINDOW = TimeWindow(max_future_us=300_000_000)
NOW_US = time.time_ns() // 1000
NOW = format_time(NOW_US)
YEAR_2100 = "2100-01-01T00:00:00.000000Z"

TICKER_DECIMALS = (
    "price", "open_24h", "volume_24h", "low_24h", "high_24h", "volume_30d",
    "best_bid", "best_bid_size", "best_ask", "best_ask_size", "last_size",
)  # fmt: skip
MATCH_DECIMALS = ("price", "size")


def ticker(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "ticker", "sequence": 5, "product_id": "BTC-USD", "price": "6800.5",
        "open_24h": "6014.24", "volume_24h": "114569.43682419", "low_24h": "5100.0",
        "high_24h": "7000", "volume_30d": "5936204.88910495", "best_bid": "6800.4",
        "best_bid_size": "0.1", "best_ask": "6800.5", "best_ask_size": "0.2", "side": "buy",
        "time": NOW, "trade_id": 3526965, "last_size": "1.00001000",
    }  # fmt: skip
    return body | fields


def match(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "match", "trade_id": 10, "maker_order_id": "a", "taker_order_id": "b",
        "side": "sell", "size": "0.5", "price": "100.25", "product_id": "BTC-USD",
        "sequence": 50, "time": NOW,
    }  # fmt: skip
    return body | fields


def heartbeat(**fields: Any) -> dict[str, Any]:
    body = {"type": "heartbeat", "sequence": 1, "last_trade_id": 9, "product_id": "BTC-USD"}
    return body | {"time": NOW} | fields


def edge(body: dict[str, Any] | str) -> Any:
    text = body if isinstance(body, str) else orjson.dumps(body).decode()
    return decode(text, BTC, LIMIT, NOW_US, WINDOW)


# ---- break 5: every decimal field, at the edge -------------------------------------------

BAD_DECIMALS = [
    "sNaN", "NaN", "nan", "-NaN", "Infinity", "-Infinity", "inf", "1E+999999", "1e3", "-1",
    "+1", " 1", "1 ", "", ".5", "5.", "0x10", "1_000", "١٢", "1" * 21, "1." + "0" * 21,
]  # fmt: skip


@pytest.mark.parametrize("field", TICKER_DECIMALS)
@pytest.mark.parametrize("value", BAD_DECIMALS)
def test_a_bad_ticker_decimal_is_refused_with_its_field(field: str, value: str) -> None:
    frame = edge(ticker(**{field: value}))
    assert isinstance(frame, RejectedFrame)
    assert frame.reason is Reject.INVALID_FIELD
    assert field in frame.detail and frame.product == "BTC-USD"


@pytest.mark.parametrize("field", MATCH_DECIMALS)
@pytest.mark.parametrize("value", ["sNaN", "Infinity", "-1", "0", "0.000", 5, None, ["1"]])
def test_a_bad_match_decimal_is_refused(field: str, value: object) -> None:
    frame = edge(match(**{field: value}))
    assert isinstance(frame, RejectedFrame) and frame.reason is Reject.INVALID_FIELD


@pytest.mark.parametrize("field", ["price", "last_size"])
def test_price_and_size_must_be_positive(field: str) -> None:
    assert isinstance(edge(ticker(**{field: "0.00"})), RejectedFrame)
    assert isinstance(edge(ticker(**{field: "0.01"})), TradeFrame)


def test_book_fields_may_be_zero_or_absent() -> None:
    assert isinstance(edge(ticker(best_bid="0", best_bid_size="0.00000000")), TradeFrame)
    body = ticker()
    for key in ("best_bid", "best_ask", "open_24h", "sequence", "side"):
        del body[key]
    assert isinstance(edge(body), TradeFrame)  # a REST backfill has only what REST has


@pytest.mark.parametrize(
    ("fields", "word"),
    [
        ({"trade_id": MAX_ID + 1}, "trade_id"),
        ({"trade_id": -1}, "trade_id"),
        ({"trade_id": 1.0}, "trade_id"),
        ({"sequence": -5}, "sequence"),
        ({"sequence": "5"}, "sequence"),
        ({"side": "short"}, "side"),
        ({"side": 1}, "side"),
    ],
)
def test_ids_sequences_and_sides_are_checked(fields: dict[str, Any], word: str) -> None:
    frame = edge(ticker(**fields))
    assert isinstance(frame, RejectedFrame) and word in frame.detail


# ---- break 4: event time against the local clock ----------------------------------------


@pytest.mark.parametrize("build", [ticker, match, heartbeat])
def test_a_far_future_time_is_refused_before_anything_is_stored(build: Any) -> None:
    frame = edge(build(time=YEAR_2100))
    assert isinstance(frame, RejectedFrame)
    assert frame.reason is Reject.EVENT_TIME and frame.product == "BTC-USD"
    assert "ahead of the local clock" in frame.detail


def test_the_future_tolerance_is_the_setting() -> None:
    soon = format_time(NOW_US + 299_000_000)
    later = format_time(NOW_US + 301_000_000)
    assert isinstance(edge(heartbeat(time=soon)), HeartbeatFrame)
    assert isinstance(edge(heartbeat(time=later)), RejectedFrame)


@pytest.mark.parametrize(
    "moment", ["0001-01-01T00:00:00.000000Z", "1969-12-31T23:59:59.000000Z", "2009-12-31T23:59:59Z"]
)
def test_times_before_2010_are_refused_even_without_a_clock(moment: str) -> None:
    frame = decode(orjson.dumps(heartbeat(time=moment)).decode(), BTC, LIMIT)
    assert isinstance(frame, RejectedFrame) and frame.reason is Reject.EVENT_TIME


def test_old_times_pass_by_default_for_replays_and_can_be_bounded() -> None:
    old = heartbeat(time="2019-05-10T20:44:15.690000Z")
    assert isinstance(edge(old), HeartbeatFrame)
    bounded = TimeWindow(max_future_us=300_000_000, max_age_us=3_600_000_000)
    frame = decode(orjson.dumps(old).decode(), BTC, LIMIT, NOW_US, bounded)
    assert isinstance(frame, RejectedFrame) and "behind the local clock" in frame.detail


# ---- fuzzing: forged but well-formed JSON ----------------------------------------------

huge_ints = st.sampled_from([0, -1, -(2**63), 2**63 - 1, 2**63, 2**64, 10**30, 10**9])
forged_numbers = st.sampled_from(
    ["NaN", "sNaN", "-sNaN", "Infinity", "-Infinity", "1E+999999", "-0", "0", "1e-999999",
     "9" * 40, "0." + "0" * 30 + "1", "-1", "1,5", "", " "]
)  # fmt: skip
forged_times = st.sampled_from(
    [YEAR_2100, "9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z",
     "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-01T00:00:00+25:00", "now", ""]
) | st.integers(-(2**40), 2**40).map(lambda s: format_time(NOW_US + s * 1000))  # fmt: skip
deep = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=30,
)
long_strings = st.text(min_size=200, max_size=2000) | st.just("x" * 10_000)
forged = huge_ints | forged_numbers | forged_times | deep | long_strings | st.floats()


def _forge(base: dict[str, Any], draw_keys: list[str], values: list[Any]) -> dict[str, Any]:
    body = dict(base)
    for key, value in zip(draw_keys, values, strict=True):
        body[key] = value
    return body


def _assert_sane(frame: object, body: dict[str, Any]) -> None:
    """What `decode` accepts is sane; what it refuses carries a reason and the raw bytes."""
    if isinstance(frame, TradeFrame):
        assert body["product_id"] == "BTC-USD"
        assert 0 <= frame.trade_id <= MAX_ID
        assert frame.time_ms * 1000 <= NOW_US + WINDOW.max_future_us
        names = TICKER_DECIMALS if frame.family is Family.TICKER else MATCH_DECIMALS
        for name in names:
            if name in body:
                number = Decimal(body[name])
                assert number.is_finite() and number >= 0 and abs(number.as_tuple().exponent) <= 20
        size = body["last_size" if frame.family is Family.TICKER else "size"]
        assert Decimal(body["price"]) > 0 and Decimal(size) > 0
    elif isinstance(frame, HeartbeatFrame):
        assert 0 <= frame.last_trade_id <= MAX_ID
        assert frame.time_us <= NOW_US + WINDOW.max_future_us
    elif isinstance(frame, RejectedFrame):
        assert frame.detail and frame.reason in Reject
        assert frame.product in ("", "BTC-USD")
    else:
        assert isinstance(frame, ControlFrame)


FUZZ = settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)


@FUZZ
@given(
    st.sampled_from([ticker(), match(), heartbeat(), match(type="last_match")]),
    st.lists(
        st.sampled_from(
            [*TICKER_DECIMALS, "size", "trade_id", "last_trade_id", "sequence", "time", "side",
             "product_id", "type", "maker_order_id"]
        ),
        min_size=1, max_size=4, unique=True,
    ),
    st.data(),
)  # fmt: skip
def test_forged_feed_frames_never_crash_and_what_passes_is_sane(
    base: dict[str, Any], keys: list[str], data: st.DataObject
) -> None:
    values = [data.draw(forged) for _ in keys]
    body = _forge(base, keys, values)
    text = json.dumps(body)  # the standard library writes any int and NaN floats too
    frame = decode(text, BTC, LIMIT, NOW_US, WINDOW)
    _assert_sane(frame, body)


@FUZZ
@given(
    st.sampled_from(["subscriptions", "error"]),
    st.dictionaries(st.sampled_from(["channels", "message", "reason", "product_ids"]), forged),
)
def test_forged_control_frames_never_crash(kind: str, fields: dict[str, Any]) -> None:
    text = json.dumps({"type": kind, **fields}, default=str)
    frame = decode(text, BTC, LIMIT, NOW_US, WINDOW)
    if isinstance(frame, RejectedFrame):  # NaN/Infinity literals are not JSON
        assert frame.reason is Reject.MALFORMED_JSON
    else:
        assert isinstance(frame, ControlFrame)


def test_a_deeply_nested_frame_is_a_rejection_not_a_crash() -> None:
    nested = '{"type":"ticker","x":' + "[" * 100_000 + "]" * 100_000 + "}"
    frame = decode(nested, BTC, 1 << 20, NOW_US, WINDOW)
    assert isinstance(frame, RejectedFrame)


# ---- REST responses: trades pages ------------------------------------------------------


def rest_trade(**fields: Any) -> dict[str, Any]:
    return {"time": NOW, "trade_id": 100, "price": "10.5", "size": "0.1", "side": "buy"} | fields


@pytest.mark.parametrize(
    "fields",
    [{"price": "sNaN"}, {"size": "Infinity"}, {"size": "0"}, {"price": 10.5},
     {"time": YEAR_2100}, {"time": "0001-01-01T00:00:00Z"}, {"trade_id": 2**63},
     {"trade_id": "100"}, {"side": "up"}],
)  # fmt: skip
def test_a_bad_rest_trade_is_refused_like_a_feed_frame(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        trade_record("BTC-USD", Family.TICKER, rest_trade(**fields), WINDOW)


def test_a_good_rest_trade_becomes_a_feed_shaped_ticker() -> None:
    record = trade_record("BTC-USD", Family.TICKER, rest_trade(), WINDOW)
    assert (record.trade_id, record.product_id) == (100, "BTC-USD")
    assert orjson.loads(record.raw)["side"] == "sell"  # REST gives the maker's side


def _fake_exchange(pages: list[object]) -> httpx.AsyncClient:
    """A fake REST server answering each trades request with the next forged page (the
    subject is the backfiller's parsing, not the transport)."""
    answers = iter(pages)

    def answer(request: httpx.Request) -> httpx.Response:
        page = next(answers, [])
        content = page if isinstance(page, bytes) else json.dumps(page, default=str).encode()
        return httpx.Response(200, content=content)

    return httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://fake")


forged_trade = st.fixed_dictionaries(
    {"trade_id": st.integers(0, 300) | huge_ints, "time": st.just(NOW) | forged_times,
     "price": st.just("10") | forged_numbers, "size": st.just("1") | forged_numbers},
    optional={"side": st.sampled_from(["buy", "sell", "x"]), "junk": deep},
)  # fmt: skip
forged_page = st.lists(forged_trade | deep, max_size=20) | deep | st.just(b"\xff not json")


@FUZZ
@given(st.lists(forged_page, min_size=1, max_size=4))
async def test_forged_rest_pages_never_crash_and_only_sane_trades_come_back(
    pages: list[object],
) -> None:
    gap = Gap(50, 200)
    async with _fake_exchange(pages) as client:
        backfiller = TradeBackfiller(client, attempts=1, window=WINDOW)
        try:
            trades = await backfiller.fetch("BTC-USD", Family.TICKER, gap)
        except BackfillError as exc:
            assert str(exc)
            return
        try:
            latest = await backfiller.latest_trade_id("BTC-USD")
        except BackfillError:
            latest = None
    assert latest is None or 0 <= latest <= MAX_ID
    ids = [t.trade_id for t in trades]
    assert ids == sorted(set(ids)) and all(gap.first <= i <= gap.last for i in ids)
    for trade in trades:
        _assert_sane(trade, orjson.loads(trade.raw))
