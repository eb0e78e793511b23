"""Advanced Trade market-data shapes (coinbase/_advanced_market.py) against Coinbase's
documentation and against frames recorded from the live feed.

Sources, each test saying which it uses:
- DOCUMENTED: examples copied from Coinbase's Advanced Trade WebSocket channels page
  (docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-channels) and
  the "Get Market Trades" REST reference; docs/simulator.md lists the pages.
- RECORDED: ../shared/data/coinbase/COINBASE.advanced-trade.jsonl, 1,030 frames received
  from wss://advanced-trade-ws.coinbase.com on 2026-08-09 (SOURCES.md there).
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from cryptopipeline.coinbase._advanced_market import (
    AdvancedShapeError,
    envelope,
    envelope_prefix,
    format_go_time,
    format_timestamp_ns,
    go_time_micros,
    heartbeats_event,
    market_trade,
    market_trades_event,
    market_trades_of,
    parse_heartbeat,
    parse_market_trade,
    parse_message,
    parse_request,
    rest_market_trade,
    subscribe_request,
    subscriptions_event,
    trim_time,
)

RECORDED = Path(__file__).resolve().parents[2].parent / "shared/data/coinbase"

# DOCUMENTED: the heartbeats example of the channels page (its trailing comma removed).
DOC_HEARTBEATS = {
    "channel": "heartbeats",
    "client_id": "",
    "timestamp": "2023-06-23T20:31:26.122969572Z",
    "sequence_num": 0,
    "events": [
        {
            "current_time": "2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105",
            "heartbeat_counter": "3049",
        }
    ],
}
# DOCUMENTED: the subscribe request of the channels page.
DOC_SUBSCRIBE = {"type": "subscribe", "product_ids": ["ETH-USD"], "channel": "heartbeats"}
DOC_SUBSCRIBE_JWT = {**DOC_SUBSCRIBE, "jwt": "XYZ"}
# DOCUMENTED: the "Get Market Trades" REST answer (its trade id is a UUID, its side empty).
DOC_REST = {
    "trades": [
        {
            "trade_id": "34b080bf-fcfd-445a-832b-46b5ddc65601",
            "product_id": "BTC-USD",
            "price": "140.91",
            "size": "4",
            "time": "2021-05-31T09:59:59.000Z",
            "side": "",
            "exchange": "<string>",
        }
    ],
    "best_bid": "291.13",
    "best_ask": "292.40",
}


def recorded() -> list[dict[str, Any]]:
    path = RECORDED / "COINBASE.advanced-trade.jsonl"
    if not path.exists():
        pytest.skip(f"recorded Advanced Trade data not found at {path}")
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def test_documented_heartbeat_parses() -> None:
    message = parse_message(DOC_HEARTBEATS)
    assert (message.channel, message.client_id, message.sequence_num) == ("heartbeats", "", 0)
    beat = parse_heartbeat(message.events[0])
    assert beat.counter == 3049  # a string in the documentation
    assert go_time_micros(beat.current_time) == 1_687_552_316_121_961


def test_documented_subscribe_requests_parse() -> None:
    plain = parse_request(orjson.dumps(DOC_SUBSCRIBE))
    assert (plain.type, plain.channel, plain.product_ids, plain.jwt) == (
        "subscribe", "heartbeats", ["ETH-USD"], None,
    )  # fmt: skip
    assert parse_request(orjson.dumps(DOC_SUBSCRIBE_JWT)).jwt == "XYZ"
    assert subscribe_request("heartbeats", ["ETH-USD"]) == DOC_SUBSCRIBE
    assert subscribe_request("heartbeats", ["ETH-USD"], "XYZ") == DOC_SUBSCRIBE_JWT


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[]", b'{"type":"subscribe"}', b'{"type":"hello","channel":"x"}',
     b'{"type":"subscribe","channel":"market_trades","product_ids":"BTC-USD"}',
     b'{"type":"subscribe","channel":["a","b"]}'],
)  # fmt: skip
def test_malformed_requests_are_refused_with_a_reason(raw: bytes) -> None:
    with pytest.raises(AdvancedShapeError):
        parse_request(raw)


def test_rest_answer_has_the_documented_fields() -> None:
    built = rest_market_trade(
        market_trade(
            product_id="BTC-USD", trade_id=7, price=Decimal("140.91"), size=Decimal("4"),
            time="2021-05-31T09:59:59.000000Z", maker_side="buy",
        )
    )  # fmt: skip
    documented = set(DOC_REST["trades"][0]) - {"exchange"}  # type: ignore[index]
    assert set(built) == documented
    assert built["time"] == "2021-05-31T09:59:59Z"


def test_every_recorded_frame_has_the_envelope() -> None:
    messages = recorded()
    assert len(messages) == 1_030
    sequences = [parse_message(m).sequence_num for m in messages]
    assert sequences == list(range(1_030))  # one counter per connection, across channels
    assert all("client_id" not in m for m in messages)  # the live feed omits it


def test_recorded_market_trades_parse_and_builders_reproduce_them() -> None:
    count = 0
    for message in recorded():
        if message["channel"] != "market_trades":
            continue
        for event in message["events"]:
            kind, trades = market_trades_of(event)
            ids = [int(t["trade_id"]) for t in trades]
            assert ids == sorted(ids, reverse=True), "Coinbase lists trades newest first"
            for raw in trades:
                trade = parse_market_trade(raw)
                rebuilt = market_trade(
                    product_id=trade.product_id, trade_id=trade.trade_id, price=trade.price,
                    size=trade.size, time=trade.time, maker_side=trade.maker_side,
                )  # fmt: skip
                assert orjson.dumps(rebuilt) == orjson.dumps(raw)  # same keys, order, text
                count += 1
            rebuilt_event = market_trades_event(kind, trades)
            assert rebuilt_event == event
    assert count == 279  # 200 snapshot + 79 update trades


def test_recorded_side_is_the_makers() -> None:
    """A trade at the best ask was a taker buying from a selling maker: `SELL`."""
    book: dict[str, tuple[str, str]] = {}
    touches = {("ask", "SELL"): 0, ("bid", "BUY"): 0, ("ask", "BUY"): 0, ("bid", "SELL"): 0}
    for message in recorded():
        for event in message["events"]:
            if message["channel"] == "ticker":
                for t in event["tickers"]:
                    book[t["product_id"]] = (t["best_bid"], t["best_ask"])
            elif message["channel"] == "market_trades" and event["type"] == "update":
                for t in event["trades"]:
                    bid, ask = book.get(t["product_id"], ("", ""))
                    where = "ask" if t["price"] == ask else "bid" if t["price"] == bid else ""
                    if where:
                        touches[(where, t["side"])] += 1
    assert touches[("ask", "SELL")] + touches[("bid", "BUY")] == 65
    assert touches[("ask", "BUY")] + touches[("bid", "SELL")] == 0


def test_recorded_heartbeats_and_subscriptions() -> None:
    counters = []
    for message in recorded():
        if message["channel"] == "heartbeats":
            beat = parse_heartbeat(message["events"][0])
            counters.append(beat.counter)
            assert go_time_micros(beat.current_time) > 0
            stamp = message["timestamp"]
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z", stamp)
        elif message["channel"] == "subscriptions":
            (event,) = message["events"]
            assert set(event) == {"subscriptions"}
    assert len(counters) == 25
    assert counters == list(range(counters[0], counters[0] + 25))  # one a second, no gap


def test_builders_match_the_documented_envelope_order() -> None:
    built = envelope("heartbeats", DOC_HEARTBEATS["timestamp"], 0, DOC_HEARTBEATS["events"])  # type: ignore[arg-type]
    assert list(built) == list(DOC_HEARTBEATS)
    events = orjson.dumps(DOC_HEARTBEATS["events"])
    framed = envelope_prefix("heartbeats", DOC_HEARTBEATS["timestamp"], 0) + events + b"}"  # type: ignore[arg-type]
    assert orjson.loads(framed) == DOC_HEARTBEATS
    assert envelope("x", "t", 1, [], client_id=None) == {
        "channel": "x", "timestamp": "t", "sequence_num": 1, "events": [],
    }  # fmt: skip
    assert subscriptions_event({"market_trades": ["BTC-USD"]}) == {
        "subscriptions": {"market_trades": ["BTC-USD"]}
    }


def test_time_formats() -> None:
    assert format_timestamp_ns(1_687_552_286_122_969_572) == "2023-06-23T20:31:26.122969572Z"
    assert format_timestamp_ns(1_786_309_552_856_438_770) == "2026-08-09T21:05:52.85643877Z"
    text = format_go_time(1_687_552_316_121_961, 91717.525857105)
    assert text == "2023-06-23 20:31:56.121961000 +0000 UTC m=+91717.525857105"
    assert go_time_micros(text) == 1_687_552_316_121_961
    assert trim_time("2026-08-09T21:05:38.504360Z") == "2026-08-09T21:05:38.50436Z"
    assert trim_time("2026-08-09T21:05:38.000000Z") == "2026-08-09T21:05:38Z"
    assert heartbeats_event("t", 3) == {"current_time": "t", "heartbeat_counter": 3}


@pytest.mark.parametrize(
    "trade",
    [{"product_id": "BTC-USD", "trade_id": "1", "price": "NaN", "size": "1", "time": "t",
      "side": "BUY"},
     {"product_id": "BTC-USD", "trade_id": "1", "price": "1", "size": "1", "time": "t",
      "side": "buy"},
     {"product_id": "BTC-USD", "trade_id": 1, "price": "1", "size": "1", "time": "t",
      "side": "BUY"}],
)  # fmt: skip
def test_bad_trades_are_refused(trade: dict[str, Any]) -> None:
    with pytest.raises(AdvancedShapeError):
        parse_market_trade(trade)
