"""Forged Advanced Trade answers (property tests): whatever a 200 answer holds, the broker
returns a checked update or raises BrokerUnavailable (the order is asked about again later,
never resent), never another exception that would stop the bot.

The exchange here is a fake (`FakeExchange`, an httpx MockTransport) because its subject is
the broker's reading of answers the simulator never gives; the real protocol is tested
against coinbase-sim in test_coinbase_broker.py.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from bot_support import KEY_NAME, new_key_pem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptopipeline.bot._broker import BrokerUnavailable
from cryptopipeline.bot._coinbase import AdvancedTradeClient, CoinbaseBroker
from cryptopipeline.bot._credentials import CdpCredentials
from cryptopipeline.trading import BrokerUpdate, OrderRequest, OrderSide, OrderType

CREDENTIALS = CdpCredentials.from_pem(KEY_NAME, new_key_pem()[0])
ORDER = OrderRequest("coid-1", "sig-1", "BTC-USD", OrderSide.BUY, OrderType.MARKET, Decimal("0.1"))

GOOD = {
    "create": {"success": True, "success_response": {"order_id": "ex-1"}},
    "order": {"order": {"order_id": "ex-1", "status": "FILLED", "filled_size": "0.1"}},
    "fills": {"fills": [{"entry_id": "f1", "product_id": "BTC-USD", "side": "BUY",
                         "price": "60000", "size": "0.1", "commission": "36"}]},
    "list": {"orders": [{"order_id": "ex-1", "client_order_id": "coid-1"}], "has_next": False},
    "cancel": {"results": [{"success": True, "order_id": "ex-1"}]},
}  # fmt: skip

leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(["sNaN", "NaN", "Infinity", "-1", "0", "1e999999", "FILLED", "BUY", "ex-1",
                     "coid-1", "SELL", "OPEN"]),
)  # fmt: skip
value = st.recursive(
    leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=12,
)  # fmt: skip


@st.composite
def forged(draw: st.DrawFn) -> dict[str, Any]:
    """The good answers with one field somewhere replaced (or a whole answer forged)."""
    answers = json.loads(json.dumps(GOOD))
    which = draw(st.sampled_from(sorted(answers)))
    if draw(st.booleans()):
        answers[which] = draw(value)
        return answers
    target = answers[which]
    while True:  # walk down to a dict and replace one of its values
        key = draw(st.sampled_from(sorted(target)))
        inner = target[key]
        if isinstance(inner, list) and inner and isinstance(inner[0], dict):
            inner = inner[0]
        if isinstance(inner, dict) and draw(st.booleans()):
            target = inner
            continue
        target[key] = draw(value)
        return answers


class FakeExchange:
    """Answers each endpoint with the given JSON (200), or raw bytes."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path.endswith("/batch_cancel"):
            name = "cancel"
        elif request.method == "POST":
            name = "create"
        elif path.endswith("/historical/fills"):
            name = "fills"
        elif path.endswith("/historical/batch"):
            name = "list"
        else:
            name = "order"
        body = self.answers[name]
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(200, content=content)


def broker_for(answers: dict[str, Any]) -> CoinbaseBroker:
    client = AdvancedTradeClient(
        "http://exchange.invalid", CREDENTIALS, max_attempts=1,
        transport=httpx.MockTransport(FakeExchange(answers)),
    )  # fmt: skip
    return CoinbaseBroker(client)


def checked(update: BrokerUpdate | None) -> None:
    if update is None:
        return
    for fill in update.fills:
        assert fill.price.is_finite() and fill.price > 0 and fill.size > 0 and fill.fee >= 0


async def every_call(broker: CoinbaseBroker) -> None:
    for call in (lambda: broker.submit(ORDER), lambda: broker.lookup(ORDER),
                 lambda: broker.poll([("coid-1", "ex-1")]),
                 lambda: broker.cancel([("coid-1", "ex-1")])):  # fmt: skip
        try:
            result = await call()
        except BrokerUnavailable as exc:
            assert str(exc)
            continue
        for update in result if isinstance(result, list) else [result]:
            checked(update)
    await broker.client.close()


def test_the_good_answers_give_a_fill() -> None:
    async def scenario() -> None:
        broker = broker_for(GOOD)
        update = await broker.submit(ORDER)
        assert update.fills[0].price == Decimal("60000")
        await broker.client.close()

    asyncio.run(scenario())


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(answers=forged())
def test_property_forged_answers_are_an_update_or_unavailable(answers: dict[str, Any]) -> None:
    asyncio.run(every_call(broker_for(answers)))


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(which=st.sampled_from(sorted(GOOD)),
       raw=st.sampled_from([b"", b"not json", b"[1,2]", b'"text"', b"[" * 100_000]))  # fmt: skip
def test_property_answers_that_are_not_objects_are_unavailable(which: str, raw: bytes) -> None:
    asyncio.run(every_call(broker_for(GOOD | {which: raw})))


@pytest.mark.parametrize("order_id", ["\x1f", "a/../b", "id?x=1", "ex 1", "ex-1\n"])
def test_a_forged_order_id_is_never_put_into_a_url(order_id: str) -> None:
    """Found by the property above: an order id with a control character made httpx raise
    InvalidURL from the next lookup instead of the broker answering 'unavailable'."""
    answers = json.loads(json.dumps(GOOD))
    answers["create"]["success_response"]["order_id"] = order_id
    answers["list"]["orders"][0]["order_id"] = order_id
    asyncio.run(every_call(broker_for(answers)))
