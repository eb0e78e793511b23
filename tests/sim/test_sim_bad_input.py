"""Bad input gets a Coinbase-style answer and the simulator keeps serving."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from sim_helpers import SimFactory, feed_client, http, receive, subscribe
from websockets.exceptions import ConnectionClosed

PRODUCTS = ["BTC-USD"]


@pytest.mark.parametrize(
    ("frame", "message", "reason"),
    [
        ("{not json", "Malformed JSON", None),
        ('"just a string"', "Malformed JSON", "message must be a JSON object"),
        ('{"type":"dance"}', "Failed to subscribe",
         "Type has to be either subscribe or unsubscribe"),
        ('{"type":"subscribe","channels":["ticker"]}', "Failed to subscribe",
         "No product ids provided for ticker"),
        ('{"type":"subscribe","product_ids":["FOO-BAR"],"channels":["ticker"]}',
         "Failed to subscribe", "FOO-BAR is not a valid product"),
        ('{"type":"subscribe","product_ids":["BTC-USD"],"channels":["level3"]}',
         "Failed to subscribe", "level3 is not a valid channel"),
        ('{"type":"subscribe","product_ids":["BTC-USD"],"channels":[{"nom":"ticker"}]}',
         "Failed to subscribe", "channel must be a name or {name, product_ids}"),
        ('{"type":"unsubscribe","product_ids":["BTC-USD"]}', "Failed to unsubscribe",
         "No channels provided"),
    ],
)  # fmt: skip
async def test_bad_requests_get_error_replies(
    sim: SimFactory, frame: str, message: str, reason: str | None
) -> None:
    async with sim(speed=1, rate=1) as server, feed_client(server) as ws:
        await ws.send(frame)
        error = await receive(ws)
        assert error["type"] == "error" and error["message"] == message
        if reason is not None:
            assert error["reason"] == reason
        else:
            assert isinstance(error["reason"], str) and error["reason"]
        # The same connection keeps working, and nothing was subscribed by the bad request.
        reply = await subscribe(ws, ["heartbeat"], PRODUCTS)
        assert reply["channels"] == [{"name": "heartbeat", "product_ids": PRODUCTS}]
        assert server.stats.bad_requests == 1


async def test_binary_and_oversized_frames(sim: SimFactory) -> None:
    async with sim(speed=1, rate=1, max_message_size=1024) as server:
        async with feed_client(server) as ws:
            await ws.send(b"\x01\x02\x03")
            error = await receive(ws)
            assert error == {
                "type": "error",
                "message": "Failed to parse message",
                "reason": "binary frames are not supported",
            }
            await ws.send("x" * 5000)
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(10):
                    while True:
                        await ws.recv()
            assert ws.close_code == 1009  # message too big
        async with feed_client(server) as ws:
            await subscribe(ws, ["heartbeat"], PRODUCTS)


async def test_unsubscribe_updates_the_subscriptions(sim: SimFactory) -> None:
    async with sim(speed=1, rate=1) as server, feed_client(server) as ws:
        reply = await subscribe(ws, ["ticker", "heartbeat"], ["BTC-USD", "ETH-USD"])
        assert [c["name"] for c in reply["channels"]] == ["ticker", "heartbeat"]
        await ws.send(
            orjson.dumps(
                {"type": "unsubscribe", "product_ids": ["ETH-USD"], "channels": ["ticker"]}
            ).decode()
        )
        reply = await receive(ws)
        while reply["type"] != "subscriptions":
            reply = await receive(ws)
        assert reply["channels"] == [
            {"name": "ticker", "product_ids": ["BTC-USD"]},
            {"name": "heartbeat", "product_ids": ["BTC-USD", "ETH-USD"]},
        ]
        await ws.send('{"type":"unsubscribe","channels":["ticker","heartbeat"]}')
        reply = await receive(ws)
        while reply["type"] != "subscriptions":
            reply = await receive(ws)
        assert reply == {"type": "subscriptions", "channels": []}
        assert not any(server.feed._index.values())


async def test_garbage_http_does_not_hurt(sim: SimFactory) -> None:
    async with sim(speed=1, rate=1) as server:
        for junk in (b"NOT HTTP AT ALL\r\n\r\n", b"\x00\xff" * 100, b"GET / HTTP/1.1\r\n\r\n"):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(junk)
            writer.write_eof()
            await writer.drain()
            async with asyncio.timeout(10):
                await reader.read()
            writer.close()
        # A POST with a body is refused by websockets' HTTP parser (connection closed).
        status, _, _ = await http(server, "/sim/faults", method="POST", body=b'{"drop_rate":1}')
        assert status == 0 or status >= 400
        assert server.feed.faults.drop_rate == 0
        status, _, page = await http(server, "/products")
        assert status == 200 and page
        async with feed_client(server) as ws:
            await subscribe(ws, ["heartbeat"], PRODUCTS)
