"""The paper broker on its own: fills, fees, resting limit orders, cancels, restarts.

No bot, no Kafka, no event loop beyond the test's: the bot and the backtest drive this class.
"""

from __future__ import annotations

from decimal import Decimal as D

from cryptopipeline.trading import (
    BrokerUpdate,
    Fill,
    OrderRequest,
    OrderStatus,
    OrderType,
    PaperBroker,
    Side,
)

T1, T2 = "2026-01-01T00:00:01.000000Z", "2026-01-01T00:00:02.000000Z"


def _market(coid: str, side: Side = Side.BUY, size: str = "0.5") -> OrderRequest:
    return OrderRequest(coid, f"s-{coid}", "BTC-USD", side, OrderType.MARKET, D(size))


def _limit(coid: str, side: Side, limit: str, size: str = "0.5") -> OrderRequest:
    return OrderRequest(coid, f"s-{coid}", "BTC-USD", side, OrderType.LIMIT, D(size), D(limit))


def _broker(slippage: str = "0") -> PaperBroker:
    broker = PaperBroker(slippage_bps=D(slippage), maker_fee_bps=D(40), taker_fee_bps=D(60))
    broker.on_tick("BTC-USD", D(100), D(101), T1)
    return broker


def _only_fill(update: BrokerUpdate) -> Fill:
    assert update.status is OrderStatus.FILLED and len(update.fills) == 1
    return update.fills[0]


async def test_market_orders_fill_at_the_touch_moved_by_slippage_with_the_taker_fee() -> None:
    broker = _broker(slippage="100")  # 1 %
    buy = _only_fill(await broker.submit(_market("b")))
    assert (buy.price, buy.size, buy.liquidity, buy.time) == (D("102.01"), D("0.5"), "TAKER", T1)
    assert buy.fee == D("0.5") * D("102.01") * D("0.006")
    assert buy.fill_id == "paper-b-1" and buy.side is Side.BUY
    sell = _only_fill(await broker.submit(_market("s", Side.SELL)))
    assert sell.price == D(99)


async def test_without_a_book_the_order_is_rejected_and_stays_rejected() -> None:
    broker = PaperBroker()
    first = await broker.submit(_market("a"))
    assert (first.status, first.reason) == (OrderStatus.REJECTED, "broker_no_price")
    broker.on_tick("BTC-USD", D(100), D(101), T1)
    assert await broker.submit(_market("a")) == first  # the same id: the first answer
    assert await broker.lookup(_market("a")) == first


async def test_the_same_client_order_id_never_fills_twice() -> None:
    broker = _broker()
    first = await broker.submit(_market("a"))
    broker.on_tick("BTC-USD", D(200), D(201), T2)
    assert await broker.submit(_market("a")) == first
    assert await broker.lookup(_market("a")) == first
    assert await broker.lookup(_market("never-sent")) is None


async def test_a_limit_order_rests_then_fills_at_its_limit_with_the_maker_fee() -> None:
    broker = _broker()
    resting = await broker.submit(_limit("l", Side.BUY, "99"))
    assert resting == BrokerUpdate("l", OrderStatus.OPEN, "paper-l")
    broker.on_tick("ETH-USD", D(1), D(2), T2)  # another product's book fills nothing
    broker.on_tick("BTC-USD", D(98), D("99.5"), T2)  # the ask has not come down to 99 yet
    assert await broker.poll([("l", "paper-l")]) == []
    broker.on_tick("BTC-USD", D(98), D(99), T2)
    (news,) = await broker.poll([("l", "paper-l")])
    fill = _only_fill(news)
    assert (fill.price, fill.liquidity, fill.time) == (D(99), "MAKER", T2)
    assert fill.fee == D("0.5") * D(99) * D("0.004")
    assert await broker.poll([]) == []  # news are told once
    assert await broker.lookup(_limit("l", Side.BUY, "99")) == news


async def test_a_crossing_limit_order_fills_at_once_capped_at_its_limit() -> None:
    broker = _broker(slippage="100")
    buy = _only_fill(await broker.submit(_limit("b", Side.BUY, "101.5")))
    assert (buy.price, buy.liquidity) == (D("101.5"), "TAKER")  # 102.01 capped
    sell = _only_fill(await broker.submit(_limit("s", Side.SELL, "99.5")))
    assert sell.price == D("99.5")  # 99 capped


async def test_cancel_takes_resting_orders_only() -> None:
    broker = _broker()
    await broker.submit(_limit("l", Side.SELL, "120"))
    await broker.submit(_market("m"))
    cancelled = await broker.cancel([("l", "paper-l"), ("m", "paper-m"), ("x", None)])
    assert cancelled == [BrokerUpdate("l", OrderStatus.CANCELLED, "paper-l")]
    broker.on_tick("BTC-USD", D(130), D(131), T2)
    assert await broker.poll([]) == []  # a cancelled order never fills


async def test_after_a_restart_the_logs_open_orders_are_lost() -> None:
    before = _broker()
    await before.submit(_limit("l", Side.BUY, "90"))
    assert await before.lost_on_restart([("l", "paper-l")]) == []  # still resting here
    restarted = _broker()
    lost = await restarted.lost_on_restart([("l", "paper-l"), ("k", None)])
    assert lost == [
        BrokerUpdate("l", OrderStatus.CANCELLED, reason="paper_restart"),
        BrokerUpdate("k", OrderStatus.CANCELLED, reason="paper_restart"),
    ]
    await restarted.aclose()


async def test_the_same_ticks_and_orders_give_the_same_fills() -> None:
    async def run() -> list[BrokerUpdate]:
        broker = _broker(slippage="7")
        answers = [await broker.submit(_limit("l", Side.BUY, "99.3", "0.123"))]
        answers.append(await broker.submit(_market("m", Side.SELL, "0.077")))
        broker.on_tick("BTC-USD", D("99.1"), D("99.2"), T2)
        return answers + await broker.poll([])

    first, second = await run(), await run()
    assert first == second and len(first) == 3
