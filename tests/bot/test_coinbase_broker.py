"""The Advanced Trade broker against coinbase-sim over real HTTP (127.0.0.1)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import jwt
import pytest
from bot_support import KEY_NAME, new_key_pem, trading_sim, write_keys

from cryptopipeline.bot._broker import BrokerUnavailable
from cryptopipeline.bot._coinbase import (
    AdvancedTradeClient,
    AuthenticationFailed,
    CoinbaseBroker,
)
from cryptopipeline.bot._credentials import CdpCredentials
from cryptopipeline.sim import SimServer
from cryptopipeline.trading import (
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    Portfolio,
    client_order_id_for,
)

PRIVATE, PUBLIC = new_key_pem()


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimServer]:
    async with trading_sim(write_keys(tmp_path / "keys.json", PUBLIC)) as server:
        yield server


def make_broker(sim: SimServer, pem: str = PRIVATE, **options: object) -> CoinbaseBroker:
    assert sim.trade_url is not None
    values: dict[str, object] = dict(backoff_initial_s=0.01, timeout_s=2.0)
    values.update(options)
    client = AdvancedTradeClient(
        sim.trade_url,
        CdpCredentials.from_pem(KEY_NAME, pem),
        **values,  # type: ignore[arg-type]
    )
    return CoinbaseBroker(client)


def order(
    n: int, side: OrderSide = OrderSide.BUY, size: str = "0.001", **kw: object
) -> OrderRequest:
    sid = f"sig-{n}"
    return OrderRequest(
        client_order_id_for(sid), sid, "BTC-USD", side,
        kw.pop("order_type", OrderType.MARKET), Decimal(size), **kw,  # type: ignore[arg-type]
    )  # fmt: skip


async def sim_orders(sim: SimServer, coid: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=sim.trade_url or "") as http:
        orders = (await http.get("/sim/orders")).json()
    return [o for o in orders if o["client_order_id"] == coid]


async def set_faults(sim: SimServer, **plan: object) -> None:
    async with httpx.AsyncClient(base_url=sim.trade_url or "") as http:
        (await http.post("/sim/trade-faults", json=plan)).raise_for_status()


async def test_market_orders_fill_and_the_portfolio_matches_the_sim(sim: SimServer) -> None:
    broker = make_broker(sim)
    portfolio = Portfolio(Decimal("100000"))
    quote = sim.ledger.quote("BTC-USD")
    assert quote is not None
    buy = await broker.submit(order(1, size="0.01"))
    assert buy.status is OrderStatus.FILLED and buy.exchange_order_id
    assert [f.price for f in buy.fills] == [quote.best_ask]
    assert buy.fills[0].fee == Decimal("0.01") * quote.best_ask * Decimal("0.006")
    sell = await broker.submit(order(2, OrderSide.SELL, size="0.004"))
    assert sell.status is OrderStatus.FILLED
    for update in (buy, sell):
        for fill in update.fills:
            portfolio.apply_fill(fill)
    balances = sim.account.balances
    assert portfolio.cash == balances["USD"]
    assert portfolio.quantity("BTC-USD") == balances["BTC"] == Decimal("0.006")
    await broker.client.close()


async def test_limit_order_rests_then_is_cancelled(sim: SimServer) -> None:
    broker = make_broker(sim)
    resting = order(3, order_type=OrderType.LIMIT, limit_price=Decimal("1000.00"))
    update = await broker.submit(resting)
    assert update.status is OrderStatus.OPEN and not update.fills
    polled = await broker.poll([(resting.client_order_id, update.exchange_order_id)])
    assert polled[0].status is OrderStatus.OPEN
    cancelled = await broker.cancel([(resting.client_order_id, update.exchange_order_id)])
    assert [u.status for u in cancelled] == [OrderStatus.CANCELLED]
    await broker.client.close()


async def test_a_bad_key_is_rejected_clearly(sim: SimServer) -> None:
    other_private, _ = new_key_pem()
    broker = make_broker(sim, pem=other_private)
    with pytest.raises(AuthenticationFailed) as caught:
        await broker.submit(order(4))
    message = str(caught.value)
    assert "refused the API key (401" in message and "bad signature" in message
    assert "PRIVATE KEY" not in message and KEY_NAME not in message
    assert sim.account.orders == {}
    await broker.client.close()


async def test_the_sim_checks_expiry_uri_and_nonce(sim: SimServer) -> None:
    creds = CdpCredentials.from_pem(KEY_NAME, PRIVATE)
    host = (sim.trade_url or "").removeprefix("http://")
    path = "/api/v3/brokerage/orders/historical/batch"
    async with httpx.AsyncClient(base_url=sim.trade_url or "") as http:

        async def get(token: str) -> httpx.Response:
            return await http.get(path, headers={"Authorization": f"Bearer {token}"})

        good = creds.token("GET", host, path)
        assert (await get(good)).status_code == 200
        replay = await get(good)
        assert replay.status_code == 401 and "replayed" in replay.json()["message"]
        expired = await get(creds.token("GET", host, path, now=time.time() - 300))
        assert "expired" in expired.json()["message"]
        wrong_uri = await get(creds.token("POST", host, path))
        assert "uri" in wrong_uri.json()["message"]
        claims = jwt.decode(good, options={"verify_signature": False})
        assert claims["iss"] == "cdp" and claims["sub"] == KEY_NAME
        assert claims["exp"] - claims["nbf"] == 120
        assert claims["uri"] == f"GET {host}{path}"
        header = jwt.get_unverified_header(good)
        assert header["kid"] == KEY_NAME and header["alg"] == "ES256" and header["nonce"]


async def test_429_waits_and_never_creates_two_orders(sim: SimServer) -> None:
    broker = make_broker(sim)
    await set_faults(sim, status=429, count=2, retry_after=0.05)
    request = order(5)
    update = await broker.submit(request)
    assert update.status is OrderStatus.FILLED
    assert len(await sim_orders(sim, request.client_order_id)) == 1
    assert sim.account.create_requests == 1  # the two 429s never reached the book
    await broker.client.close()


async def test_5xx_after_the_order_was_made_retries_with_the_same_id(sim: SimServer) -> None:
    broker = make_broker(sim)
    await set_faults(sim, status=503, count=2, after_commit=True)
    request = order(6)
    update = await broker.submit(request)
    assert update.status is OrderStatus.FILLED
    assert sim.account.create_requests == 3
    assert len(await sim_orders(sim, request.client_order_id)) == 1
    assert len(update.fills) == 1
    await broker.client.close()


async def test_a_timeout_retries_with_the_same_id(sim: SimServer) -> None:
    broker = make_broker(sim, timeout_s=0.3)
    await set_faults(sim, delay_s=1.0, count=1)
    request = order(7)
    update = await broker.submit(request)
    assert update.status is OrderStatus.FILLED
    assert len(await sim_orders(sim, request.client_order_id)) == 1
    await broker.client.close()


async def test_persistent_5xx_is_unavailable_not_rejected(sim: SimServer) -> None:
    broker = make_broker(sim, max_attempts=2)
    await set_faults(sim, status=500, count=5)
    with pytest.raises(BrokerUnavailable):
        await broker.submit(order(8))
    await broker.client.close()


async def test_business_rejections_are_mapped(sim: SimServer) -> None:
    broker = make_broker(sim)
    poor = await broker.submit(order(9, size="100"))  # 6M USD of BTC
    assert poor.status is OrderStatus.REJECTED and poor.reason == "broker_insufficient_funds"
    odd = await broker.submit(order(10, size="0.000000005"))
    assert odd.status is OrderStatus.REJECTED and odd.reason == "broker_invalid_size"
    assert sim.account.orders == {}
    await broker.client.close()


async def test_lookup_by_client_order_id(sim: SimServer) -> None:
    broker = make_broker(sim)
    placed = order(11)
    await broker.submit(placed)
    found = await broker.lookup(placed)
    assert found is not None and found.status is OrderStatus.FILLED and len(found.fills) == 1
    assert await broker.lookup(order(12)) is None
    await broker.client.close()


async def test_dry_run_sends_nothing(sim: SimServer) -> None:
    broker = make_broker(sim, dry_run=True)
    request = order(13)
    update = await broker.submit(request)
    assert update.status is OrderStatus.FAILED and update.reason == "dry_run"
    assert broker.client.dry_run_requests[0]["body"]["client_order_id"] == request.client_order_id
    assert sim.account.create_requests == 0
    await broker.client.close()


async def test_lookup_pages_through_the_order_list(sim: SimServer) -> None:
    """250 later orders push the one looked up to the third page (100 per page)."""
    broker = make_broker(sim)
    oldest = order(500, order_type=OrderType.LIMIT, limit_price=Decimal("1000.00"))
    await broker.submit(oldest)
    for n in range(501, 751):  # straight into the simulated account: only the pages matter
        resting = order(n, order_type=OrderType.LIMIT, limit_price=Decimal("1000.00"))
        sim.account.create({
            "client_order_id": resting.client_order_id, "product_id": "BTC-USD", "side": "BUY",
            "order_configuration": {"limit_limit_gtc": {"base_size": "0.001",
                                                        "limit_price": "1000.00"}},
        })  # fmt: skip
    found = await broker.lookup(oldest)
    assert found is not None and found.status is OrderStatus.OPEN
    assert found.exchange_order_id == next(
        o.order_id for o in sim.account.orders.values()
        if o.client_order_id == oldest.client_order_id
    )  # fmt: skip
    assert await broker.lookup(order(999)) is None  # read every page, then not found
    await broker.client.close()


async def test_the_sim_pages_the_order_list(sim: SimServer) -> None:
    creds = CdpCredentials.from_pem(KEY_NAME, PRIVATE)
    for n in range(5):
        sim.account.create({
            "client_order_id": f"page-{n}", "product_id": "BTC-USD", "side": "BUY",
            "order_configuration": {"limit_limit_gtc": {"base_size": "0.001",
                                                        "limit_price": "1000.00"}},
        })  # fmt: skip
    host = (sim.trade_url or "").removeprefix("http://")
    path = "/api/v3/brokerage/orders/historical/batch"
    seen: list[str] = []
    params: dict[str, str] = {"limit": "2"}
    async with httpx.AsyncClient(base_url=sim.trade_url or "") as http:
        for _ in range(5):
            auth = {"Authorization": f"Bearer {creds.token('GET', host, path)}"}
            page = (await http.get(path, params=params, headers=auth)).json()
            seen += [o["client_order_id"] for o in page["orders"]]
            if not page["has_next"]:
                break
            params["cursor"] = page["cursor"]
        auth = {"Authorization": f"Bearer {creds.token('GET', host, path)}"}
        bad = await http.get(path, params={"limit": "0"}, headers=auth)
    assert seen == [f"page-{n}" for n in reversed(range(5))]  # newest first, each once
    assert bad.status_code == 400
