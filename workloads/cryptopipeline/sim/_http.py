"""The REST side of the simulator, answered from websockets' `process_request` hook.

Coinbase-compatible: `GET /products`, `GET /products/{id}`, `GET /products/{id}/ticker`,
`GET /products/{id}/trades`, and Advanced Trade's public market trades
`GET /api/v3/brokerage/market/products/{id}/ticker` (`_advanced_rest`). Simulator control:
`GET /sim/trades`, `GET /sim/stats`, `GET|POST /sim/faults`, `POST /sim/disconnect`.
websockets' HTTP parser refuses request bodies, so `POST /sim/faults` takes the plan as query
parameters.
"""

from __future__ import annotations

import email.utils
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from pydantic import ValidationError
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from cryptopipeline.coinbase import (
    DEFAULT_TRADES_LIMIT,
    MAX_TRADES_LIMIT,
    product_object,
    rest_ticker,
    rest_trade,
)
from cryptopipeline.sim._advanced_rest import MarketTradesApi
from cryptopipeline.sim._faults import FaultPlan
from cryptopipeline.sim._feed import Feed
from cryptopipeline.sim._ledger import TradeLedger
from cryptopipeline.sim._products import product_spec
from cryptopipeline.sim._stats import SimStats


def json_response(
    status: int, body: Any, extra_headers: list[tuple[str, str]] | None = None
) -> Response:
    payload = orjson.dumps(body)
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            *(extra_headers or []),
        ]
    )
    return Response(status, HTTPStatus(status).phrase, headers, payload)


_MARKET = ["api", "v3", "brokerage", "market", "products"]


def _message(status: int, text: str) -> Response:
    return json_response(status, {"message": text})


class BadRequest(ValueError):
    """A query parameter that does not parse; becomes a 400 with a JSON message."""


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(f"{name} given more than once")
    return values[0]


def _int(query: dict[str, list[str]], name: str) -> int | None:
    text = _one(query, name)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise BadRequest(f"Invalid {name}: {text!r} is not an integer") from None


class RestApi:
    """Routes one HTTP request to a JSON response."""

    def __init__(
        self,
        *,
        ledger: TradeLedger,
        feed: Feed[Any],
        stats: SimStats,
        set_faults: Callable[[FaultPlan], None],
        disconnect: Callable[[], Awaitable[int]],
        market_trades: MarketTradesApi | None = None,
    ) -> None:
        self.ledger = ledger
        self.feed = feed
        self.stats = stats
        self.set_faults = set_faults
        self.disconnect = disconnect
        self.market_trades = market_trades

    async def answer(self, request: Request) -> Response:
        parts = urlsplit(request.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        segments = [s for s in parts.path.split("/") if s]
        method = request.method
        try:
            if segments[:1] == ["sim"]:
                return await self._control(method, segments[1:], query)
            advanced = segments[:5] == _MARKET and len(segments) == 7 and segments[6] == "ticker"
            if advanced and method == "GET" and self.market_trades is not None:
                return self.market_trades.answer(segments[5], query, json_response)
            if method != "GET":
                return _message(405, "Method Not Allowed")
            if segments == ["products"]:
                return json_response(200, [self._product(p) for p in self.ledger.product_ids])
            if len(segments) >= 2 and segments[0] == "products":
                product = segments[1]
                if not self.ledger.has_product(product):
                    return _message(404, "NotFound")
                if len(segments) == 2:
                    return json_response(200, self._product(product))
                if segments[2:] == ["trades"]:
                    return self._trades(product, query)
                if segments[2:] == ["ticker"]:
                    return self._ticker(product)
            return _message(404, "NotFound")
        except BadRequest as exc:
            return _message(400, str(exc))

    @staticmethod
    def _product(product_id: str) -> dict[str, Any]:
        spec = product_spec(product_id)
        return dict(
            product_object(
                product_id=product_id,
                quote_increment=spec.quote_increment,
                base_increment=spec.base_increment,
            )
        )

    def _trades(self, product: str, query: dict[str, list[str]]) -> Response:
        limit = _int(query, "limit")
        if limit is None:
            limit = DEFAULT_TRADES_LIMIT
        if not 1 <= limit <= MAX_TRADES_LIMIT:
            raise BadRequest(f"Invalid limit: must be between 1 and {MAX_TRADES_LIMIT}")
        before = _int(query, "before")
        after = _int(query, "after")
        page = self.ledger.page(product, limit=limit, before=before, after=after)
        body = [
            rest_trade(
                time=t.time,
                trade_id=t.trade_id,
                price=t.price,
                size=t.size,
                maker_side=t.maker_side,
            )
            for t in page
        ]
        headers = []
        if page:
            headers = [("CB-BEFORE", str(page[0].trade_id)), ("CB-AFTER", str(page[-1].trade_id))]
        return json_response(200, body, headers)

    def _ticker(self, product: str) -> Response:
        last = self.ledger.last_trade(product)
        quote = self.ledger.quote(product)
        if last is None or quote is None:
            return _message(404, "NotFound")
        return json_response(
            200,
            rest_ticker(
                ask=quote.best_ask,
                bid=quote.best_bid,
                volume=quote.volume_24h,
                trade_id=last.trade_id,
                price=last.price,
                size=last.size,
                time=last.time,
            ),
        )

    async def _control(
        self, method: str, segments: list[str], query: dict[str, list[str]]
    ) -> Response:
        if segments == ["trades"] and method == "GET":
            product = _one(query, "product_id")
            products = [product] if product else self.ledger.product_ids
            if product and not self.ledger.has_product(product):
                return _message(404, "NotFound")
            return json_response(
                200, [t.ground_truth() for p in products for t in self.ledger.trades(p)]
            )
        if segments == ["stats"] and method == "GET":
            body: dict[str, Any] = dict(self.stats.as_dict())
            body["trades_by_product"] = {p: self.ledger.count(p) for p in self.ledger.product_ids}
            return json_response(200, body)
        if segments == ["faults"]:
            if method == "GET":
                return json_response(200, self.feed.faults.model_dump(mode="json"))
            if method == "POST":
                plan = self._fault_plan(query)
                self.set_faults(plan)
                return json_response(200, plan.model_dump(mode="json"))
        if segments == ["disconnect"] and method == "POST":
            closed = await self.disconnect()
            return json_response(200, {"closed": closed})
        if segments and segments[0] in ("trades", "stats", "faults", "disconnect"):
            return _message(405, "Method Not Allowed")
        return _message(404, "NotFound")

    @staticmethod
    def _fault_plan(query: dict[str, list[str]]) -> FaultPlan:
        fields: dict[str, Any] = {}
        for name, values in query.items():
            if name not in FaultPlan.model_fields:
                raise BadRequest(f"unknown fault {name!r}")
            if len(values) != 1:
                raise BadRequest(f"{name} given more than once")
            value = values[0]
            if name == "connections":
                try:
                    fields[name] = (
                        None if value in ("", "all") else tuple(int(v) for v in value.split(","))
                    )
                except ValueError:
                    raise BadRequest("connections must be comma-separated integers") from None
            else:
                fields[name] = value
        try:
            return FaultPlan(**fields)
        except ValidationError as exc:
            raise BadRequest(
                "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            ) from None
