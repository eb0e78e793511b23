"""Every message the simulator sends, field by field: the documented schema and the shapes
of real recorded Coinbase messages (same keys, same key order, same JSON value types)."""

from __future__ import annotations

import re
from typing import Any

import orjson
from sim_helpers import (
    SimFactory,
    collect_until,
    feed_client,
    receive,
    recorded_messages,
    subscribe,
)

from cryptopipeline.coinbase import TIME_PATTERN

PRICE = re.compile(r"^\d+(\.\d*[1-9])?$")
VOLUME = re.compile(r"^\d+\.\d{8}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TICKER_SIZES = ("best_bid_size", "best_ask_size")


def _types(message: dict[str, Any]) -> dict[str, type]:
    return {key: type(value) for key, value in message.items()}


def _first(messages: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(m for m in messages if m.get("type") == kind)


def _check_ticker(message: dict[str, Any]) -> None:
    assert message["type"] == "ticker"
    for key in ("sequence", "trade_id"):
        assert type(message[key]) is int and message[key] > 0
    for key in ("price", "open_24h", "low_24h", "high_24h", "best_bid", "best_ask", "last_size"):
        assert PRICE.match(message[key]), (key, message[key])
    for key in (*TICKER_SIZES,):
        assert PRICE.match(message[key]), (key, message[key])
    for key in ("volume_24h", "volume_30d"):
        assert VOLUME.match(message[key]), (key, message[key])
    assert message["side"] in ("buy", "sell")
    assert TIME_PATTERN.match(message["time"])
    assert float(message["best_bid"]) < float(message["best_ask"])
    taker_price = message["best_ask"] if message["side"] == "buy" else message["best_bid"]
    assert message["price"] == taker_price


def _check_match(message: dict[str, Any], kind: str) -> None:
    assert message["type"] == kind
    assert type(message["trade_id"]) is int and type(message["sequence"]) is int
    assert UUID.match(message["maker_order_id"]) and UUID.match(message["taker_order_id"])
    assert message["side"] in ("buy", "sell")
    assert PRICE.match(message["price"]) and PRICE.match(message["size"])
    assert TIME_PATTERN.match(message["time"])


async def test_every_message_type_matches_schema_and_recordings(sim: SimFactory) -> None:
    wire = recorded_messages("COINBASE.ws.28.0.jsonl")
    fixtures = recorded_messages("coinbase-pro-node-ws-fixtures.jsonl")
    recorded_last_match = _first(wire, "last_match")
    recorded_subscriptions = _first(wire, "subscriptions")
    recorded_error = _first(fixtures, "error")

    async with sim(speed=0, rate=20, max_trades=60, products=["BTC-USD"]) as server:
        await server.market_done.wait()
        async with feed_client(server) as ws:
            subscriptions = await subscribe(ws, ["ticker", "heartbeat", "matches"], ["BTC-USD"])
            last_match = await receive(ws)
            await ws.send(b"\x00binary")
            error = await receive(ws)
    # The subscriptions reply: same shape as the recorded one.
    assert list(subscriptions) == list(recorded_subscriptions) == ["type", "channels"]
    assert subscriptions["channels"] == [
        {"name": "ticker", "product_ids": ["BTC-USD"]},
        {"name": "heartbeat", "product_ids": ["BTC-USD"]},
        {"name": "matches", "product_ids": ["BTC-USD"]},
    ]
    assert list(subscriptions["channels"][0]) == list(recorded_subscriptions["channels"][0])
    # last_match on subscribing to matches: the wire shape, key for key.
    _check_match(last_match, "last_match")
    assert list(last_match) == list(recorded_last_match)
    assert _types(last_match) == _types(recorded_last_match)
    # error replies: the fixture's keys (which are sorted there) and types.
    assert sorted(error) == sorted(recorded_error)
    assert _types(error) == {k: type(v) for k, v in recorded_error.items()}
    assert list(error) == ["type", "message", "reason"]


async def test_live_ticker_match_heartbeat_shapes(sim: SimFactory) -> None:
    wire = recorded_messages("COINBASE.ws.28.0.jsonl")
    fixtures = recorded_messages("coinbase-pro-node-ws-fixtures.jsonl")
    recorded_ticker = _first(wire, "ticker")
    recorded_match = _first(wire, "match")
    recorded_heartbeat = _first(fixtures, "heartbeat")

    async with (
        sim(speed=0, rate=5, max_trades=40, await_subscribers=1) as server,
        feed_client(server) as ws,
    ):
        await subscribe(ws, ["ticker", "heartbeat", "matches"], ["BTC-USD", "ETH-USD"])
        await server.market_done.wait()
        seen: set[str] = set()

        def every_kind_seen(message: dict[str, Any]) -> bool:
            seen.add(message["type"])
            return {"ticker", "match", "heartbeat"} <= seen

        messages = await collect_until(ws, every_kind_seen)
    ticker = _first(messages, "ticker")
    match = _first(messages, "match")
    heartbeat = _first(messages, "heartbeat")
    _check_ticker(ticker)
    # The recorded (2021) ticker lacks the modern best_bid_size/best_ask_size; otherwise equal.
    assert [k for k in ticker if k not in TICKER_SIZES] == list(recorded_ticker)
    assert list(ticker)[list(ticker).index("best_bid") + 1] == "best_bid_size"
    assert list(ticker)[list(ticker).index("best_ask") + 1] == "best_ask_size"
    assert {k: t for k, t in _types(ticker).items() if k not in TICKER_SIZES} == _types(
        recorded_ticker
    )
    _check_match(match, "match")
    assert list(match) == list(recorded_match)
    assert _types(match) == _types(recorded_match)
    assert sorted(heartbeat) == sorted(recorded_heartbeat)
    assert _types(heartbeat) == {k: type(v) for k, v in recorded_heartbeat.items()}
    assert TIME_PATTERN.match(heartbeat["time"])
    assert orjson.loads(orjson.dumps(heartbeat)) == heartbeat
