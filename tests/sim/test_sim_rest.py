"""REST: trades pagination the Coinbase way (newest first, before/after cursors, CB-* headers),
the ticker, the product list, and 4xx JSON answers for bad requests."""

from __future__ import annotations

from sim_helpers import SimFactory, http

from cryptopipeline.coinbase import TIME_PATTERN


async def test_walk_every_trade_exactly_once_with_after_and_before(sim: SimFactory) -> None:
    async with sim(max_trades=1000, products=["BTC-USD"]) as server:
        await server.market_done.wait()
        _, _, truth = await http(server, "/sim/trades?product_id=BTC-USD")
        expected = [t["trade_id"] for t in truth]
        assert len(expected) == 1000
        assert expected == list(range(expected[0], expected[0] + 1000))

        # Backwards, newest to oldest, following CB-AFTER.
        status, headers, page = await http(server, "/products/BTC-USD/trades?limit=70")
        assert status == 200
        assert headers["content-type"] == "application/json"
        walked = [t["trade_id"] for t in page]
        assert walked == sorted(walked, reverse=True) and walked[0] == expected[-1]
        assert int(headers["cb-before"]) == walked[0]
        assert int(headers["cb-after"]) == walked[-1]
        newest_page_before = headers["cb-before"]
        while True:
            status, headers, page = await http(
                server, f"/products/BTC-USD/trades?limit=70&after={headers['cb-after']}"
            )
            assert status == 200
            if not page:
                assert "cb-after" not in headers
                break
            ids = [t["trade_id"] for t in page]
            assert int(headers["cb-before"]) == ids[0] and int(headers["cb-after"]) == ids[-1]
            walked += ids
        assert sorted(walked) == expected and len(set(walked)) == len(walked)

        # Forwards, oldest to newest, following CB-BEFORE from a cursor below the first trade.
        forward: list[int] = []
        cursor = str(expected[0] - 1)
        while True:
            status, headers, page = await http(
                server, f"/products/BTC-USD/trades?limit=333&before={cursor}"
            )
            if not page:
                break
            ids = [t["trade_id"] for t in page]
            assert ids == sorted(ids, reverse=True) and ids[-1] == int(cursor) + 1
            forward += ids
            cursor = headers["cb-before"]
        assert sorted(forward) == expected and len(set(forward)) == len(forward)
        assert cursor == newest_page_before

        # Both cursors: the trades strictly between them.
        _, _, between = await http(
            server, f"/products/BTC-USD/trades?after={expected[20]}&before={expected[9]}"
        )
        assert [t["trade_id"] for t in between] == expected[10:20][::-1]


async def test_trade_objects_and_default_limit(sim: SimFactory) -> None:
    async with sim(max_trades=2500, products=["ETH-USD"]) as server:
        await server.market_done.wait()
        status, _headers, page = await http(server, "/products/ETH-USD/trades")
        assert status == 200 and len(page) == 1000
        _, _, truth = await http(server, "/sim/trades?product_id=ETH-USD")
        by_id = {t["trade_id"]: t for t in truth}
        for trade in page:
            assert list(trade) == ["time", "trade_id", "price", "size", "side"]
            assert TIME_PATTERN.match(trade["time"])
            recorded = by_id[trade["trade_id"]]
            assert trade["price"] == recorded["price"] and trade["size"] == recorded["size"]
            assert trade["side"] == recorded["side"] != recorded["taker_side"]
        status, _, page = await http(server, "/products/ETH-USD/trades?limit=1000")
        assert status == 200 and len(page) == 1000


async def test_limit_bounds_and_bad_params(sim: SimFactory) -> None:
    async with sim(max_trades=10) as server:
        await server.market_done.wait()
        for query in ("limit=0", "limit=1001", "limit=-5", "limit=abc", "after=x", "before=1.5"):
            status, headers, body = await http(server, f"/products/BTC-USD/trades?{query}")
            assert status == 400, query
            assert headers["content-type"] == "application/json"
            assert isinstance(body["message"], str) and body["message"]
        status, _, body = await http(server, "/products/BTC-USD/trades?limit=1&limit=2")
        assert status == 400
        status, _, body = await http(server, "/products/NOPE-USD/trades")
        assert (status, body) == (404, {"message": "NotFound"})
        status, _, body = await http(server, "/products/NOPE-USD/ticker")
        assert (status, body) == (404, {"message": "NotFound"})
        status, _, body = await http(server, "/no/such/path")
        assert (status, body) == (404, {"message": "NotFound"})
        status, _, body = await http(server, "/products/BTC-USD/trades", method="DELETE")
        assert status == 405
        # Still serving.
        status, _, page = await http(server, "/products/BTC-USD/trades?limit=1")
        assert status == 200 and len(page) == 1


async def test_ticker_and_products(sim: SimFactory) -> None:
    async with sim(max_trades=50) as server:
        await server.market_done.wait()
        status, _, ticker = await http(server, "/products/BTC-USD/ticker")
        assert status == 200
        assert list(ticker) == ["ask", "bid", "volume", "trade_id", "price", "size", "time"]
        _, _, newest = await http(server, "/products/BTC-USD/trades?limit=1")
        assert ticker["trade_id"] == newest[0]["trade_id"]
        assert ticker["price"] == newest[0]["price"] and ticker["size"] == newest[0]["size"]
        assert float(ticker["bid"]) < float(ticker["ask"])
        status, _, products = await http(server, "/products")
        assert status == 200 and [p["id"] for p in products] == ["BTC-USD", "ETH-USD"]
        assert products[0]["quote_increment"] == "0.01"
        status, _, product = await http(server, "/products/ETH-USD")
        assert status == 200 and product["id"] == "ETH-USD"
