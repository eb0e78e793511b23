"""Replay of real recorded Coinbase messages: republished verbatim, trades in the ground truth."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from sim_helpers import (
    SimFactory,
    collect_until,
    feed_client,
    http,
    receive,
    recorded_messages,
    recording,
    subscribe,
)


async def test_replay_matches_as_fast_as_possible(sim: SimFactory) -> None:
    path = recording("matches-1.jsonl")
    recorded = [m for m in recorded_messages("matches-1.jsonl") if m["type"] == "match"]
    async with (
        sim(replay=path, await_subscribers=1) as server,
        feed_client(server) as ws,
    ):
        await subscribe(ws, ["matches"], ["BTC-USD"])
        last_id = recorded[-1]["trade_id"]
        frames = await collect_until(ws, lambda m: m.get("trade_id") == last_id)
        _, _, truth = await http(server, "/sim/trades?product_id=BTC-USD")
        _, headers, page = await http(server, "/products/BTC-USD/trades?limit=50")
    assert frames == recorded
    assert [list(m) for m in frames] == [list(m) for m in recorded], "key order kept"
    assert [t["trade_id"] for t in truth] == [m["trade_id"] for m in recorded]
    assert [(t["price"], t["size"], t["side"], t["time"]) for t in truth] == [
        (m["price"], m["size"], m["side"], m["time"]) for m in recorded
    ]
    assert [t["trade_id"] for t in page] == [m["trade_id"] for m in recorded][::-1][:50]
    assert headers["cb-after"] == str(page[-1]["trade_id"])


async def test_replay_timed_recording_with_speed(sim: SimFactory) -> None:
    path = recording("COINBASE.ws.28.0.timed.jsonl")
    wire = recorded_messages("COINBASE.ws.28.0.timed.jsonl")
    recorded_tickers = [m for m in wire if m["type"] == "ticker" and m["product_id"] == "SKL-USD"]
    trade_keys = {
        (m["product_id"], m["trade_id"]) for m in wire if m["type"] in ("ticker", "match")
    }
    async with sim(replay=path, speed=200, await_subscribers=1) as server:
        async with feed_client(server) as ws:
            await ws.send('{"type":"subscribe","product_ids":["BTC-USD"],"channels":["ticker"]}')
            error = await receive(ws)
            assert error["reason"] == "BTC-USD is not a valid product"
            await subscribe(ws, ["ticker"], ["SKL-USD"])
            loop = asyncio.get_running_loop()
            started = loop.time()
            last = recorded_tickers[-1]["trade_id"]
            tickers: list[dict[str, Any]] = await collect_until(
                ws, lambda m: m.get("trade_id") == last
            )
            elapsed = loop.time() - started
        await server.market_done.wait()
        assert tickers == recorded_tickers
        assert 0.03 < elapsed < 3, elapsed
        assert server.ledger.total == len(trade_keys)
        _, _, products = await http(server, "/products")
        assert "SKL-USD" in [p["id"] for p in products]


async def test_replay_accepts_plain_and_timed_lines(sim: SimFactory, tmp_path: Any) -> None:
    heartbeat = {
        "type": "heartbeat",
        "last_trade_id": 5,
        "product_id": "ETH-EUR",
        "sequence": 9,
        "time": "2019-05-10T21:21:26.519588Z",
    }
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        orjson.dumps(heartbeat)
        + b"\n\n"
        + orjson.dumps({"recv_ts": 1557523287.0, "msg": {**heartbeat, "sequence": 10}})
        + b"\n"
        + b'{"type":"l2update","product_id":"ETH-EUR","changes":[]}\n'
    )
    async with sim(replay=path, await_subscribers=1) as server, feed_client(server) as ws:
        await subscribe(ws, ["heartbeat"], ["ETH-EUR"])
        first, second = await receive(ws), await receive(ws)
    assert first == heartbeat and second["sequence"] == 10
