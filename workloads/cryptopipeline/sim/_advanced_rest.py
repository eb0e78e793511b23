"""Advanced Trade's public "Get Market Trades" on the simulator's port:

  GET /api/v3/brokerage/market/products/{product_id}/ticker?limit=N[&start=S][&end=E]

`limit` is required (1..`MAX_MARKET_TRADES_LIMIT`); `start` and `end` are UNIX seconds (the
simulator also takes a fraction) and select trades with `start <= time < end`. The answer is
`{"trades": [...newest first], "best_bid", "best_ask"}`, each trade with the fields of a
`market_trades` WebSocket trade, so the same trade reads the same on both. Coinbase
documents no maximum for `limit`; the simulator caps it at 1,000 like the Exchange's trades
endpoint, and since `start`/`end` are whole seconds for Coinbase, a client pages backwards
one second at a time: a second holding more trades than a page cannot be paged past.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from websockets.http11 import Response

from cryptopipeline.coinbase import format_price
from cryptopipeline.coinbase._advanced_market import rest_market_trade
from cryptopipeline.coinbase._time import parse_time, to_micros
from cryptopipeline.sim._advanced_feed import trade_json
from cryptopipeline.sim._events import Trade
from cryptopipeline.sim._ledger import TradeLedger

MAX_MARKET_TRADES_LIMIT = 1_000


class _Bad(ValueError):
    pass


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise _Bad(f"{name} given more than once")
    return values[0]


def _seconds_us(query: dict[str, list[str]], name: str) -> int | None:
    text = _one(query, name)
    if text is None or text == "":
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _Bad(f"{name} must be a UNIX timestamp, got {text[:40]!r}") from None
    if not value.is_finite() or value < 0:
        raise _Bad(f"{name} must be a UNIX timestamp, got {text[:40]!r}")
    return int(value * 1_000_000)


Respond = Callable[[int, Any], Response]


class MarketTradesApi:
    """Answers the public market trades endpoint from the ledger; keeps each product's trade
    times (microseconds, in ledger order) so a time window is two binary searches."""

    def __init__(self, ledger: TradeLedger) -> None:
        self.ledger = ledger
        self._times: dict[str, list[int]] = {}

    def _times_of(self, product_id: str, trades: list[Trade]) -> list[int]:
        times = self._times.setdefault(product_id, [])
        if len(times) > len(trades):
            times.clear()
        times.extend(to_micros(parse_time(t.time)) for t in trades[len(times) :])
        return times

    def answer(self, product_id: str, query: dict[str, list[str]], respond: Respond) -> Response:
        """The response to one request; `respond(status, body)` builds it."""
        ledger = self.ledger
        if not ledger.has_product(product_id):
            return respond(404, {"error": "NOT_FOUND", "message": "product not found"})
        try:
            limit_text = _one(query, "limit")
            if limit_text is None:
                raise _Bad("limit is required")
            try:
                limit = int(limit_text)
            except ValueError:
                raise _Bad(f"limit {limit_text[:40]!r} is not an integer") from None
            if not 1 <= limit <= MAX_MARKET_TRADES_LIMIT:
                raise _Bad(f"limit must be between 1 and {MAX_MARKET_TRADES_LIMIT}")
            start_us = _seconds_us(query, "start")
            end_us = _seconds_us(query, "end")
        except _Bad as exc:
            return respond(400, {"error": "INVALID_ARGUMENT", "message": str(exc)})
        trades = ledger.trades(product_id)
        low, high = 0, len(trades)
        if start_us is not None or end_us is not None:
            times = self._times_of(product_id, trades)
            if start_us is not None:
                low = bisect.bisect_left(times, start_us)
            if end_us is not None:
                high = bisect.bisect_left(times, end_us)
        page = trades[max(low, high - limit) : high] if high > low else []
        page.reverse()
        quote = ledger.quote(product_id)
        body: dict[str, Any] = {
            "trades": [rest_market_trade(trade_json(t)) for t in page],
            "best_bid": format_price(quote.best_bid) if quote else "",
            "best_ask": format_price(quote.best_ask) if quote else "",
        }
        return respond(200, body)
