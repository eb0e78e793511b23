"""Fetch missed trades from the exchange's REST API and turn them into feed records.

`GET /products/{id}/trades?after=<id>` pages backwards from a trade id (newest first); the
`CB-AFTER` header is the cursor of the next, older page. A backfilled record carries only
what the REST trade has: the sequence and 24-hour statistics of a ticker, the order ids of a
match, are left out, never invented.
"""

from __future__ import annotations

import asyncio
import logging
import time as _time
from typing import Any

import httpx
import orjson

from cryptopipeline.ingestor._decode import (
    MAX_ID,
    Family,
    TimeWindow,
    TradeFrame,
    check_trade,
)
from cryptopipeline.ingestor._sequencer import Gap

log = logging.getLogger(__name__)

_PAGE = 1000


class BackfillError(RuntimeError):
    """The REST API could not give the trades of a gap (after retries)."""


def _taker_side(maker_side: object) -> str | None:
    if maker_side == "buy":
        return "sell"
    if maker_side == "sell":
        return "buy"
    if maker_side is None:
        return None
    raise ValueError(f"REST trade side {str(maker_side)[:40]!r} is not buy or sell")


def trade_record(
    product_id: str, family: Family, trade: dict[str, Any], window: TimeWindow | None = None
) -> TradeFrame:
    """A feed-shaped record for one REST trade, validated exactly as a feed frame is (ids,
    decimals, side, time). Raises ValueError on a malformed trade."""
    trade_id = trade.get("trade_id")
    if type(trade_id) is not int or not 0 <= trade_id <= MAX_ID:
        raise ValueError(f"REST trade without a valid trade_id: {trade!r:.200}")
    time = trade.get("time")
    if family is Family.TICKER:
        body: dict[str, Any] = {"type": "ticker", "product_id": product_id}
        body["price"] = trade["price"]
        side = _taker_side(trade.get("side"))  # REST gives the maker's side; ticker the taker's
        if side is not None:
            body["side"] = side
        body["time"] = time
        body["trade_id"] = trade_id
        body["last_size"] = trade["size"]
    else:
        body = {"type": "match", "trade_id": trade_id}
        if "side" in trade:
            body["side"] = trade["side"]
        body |= {
            "time": time,
            "product_id": product_id,
            "size": trade["size"],
            "price": trade["price"],
        }
    micros = check_trade(body, family, _time.time_ns() // 1000, window)  # the feed's rules
    return TradeFrame(product_id, family, trade_id, micros // 1000, orjson.dumps(body))


class TradeBackfiller:
    """Pages the REST trades endpoint by trade id, with retries written once, here."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        attempts: int = 5,
        backoff_s: float = 0.25,
        window: TimeWindow | None = None,
    ) -> None:
        self._client = client
        self._window = window
        self._attempts = attempts
        self._backoff_s = backoff_s

    async def latest_trade_id(self, product_id: str) -> int | None:
        """The exchange's newest trade id for a product (None if it has no trade yet)."""
        page = await self._page(product_id, None, limit=1)
        ids = [t.get("trade_id") for t in page]
        valid = [i for i in ids if type(i) is int and 0 <= i <= MAX_ID]
        if ids and not valid:
            raise BackfillError(f"newest trade of {product_id} has no valid trade_id: {ids[:1]!r}")
        return max(valid) if valid else None

    async def _page(
        self, product_id: str, after: int | None, limit: int = _PAGE
    ) -> list[dict[str, Any]]:
        url = f"/products/{product_id}/trades"
        params = {"limit": str(limit)}
        if after is not None:
            params["after"] = str(after)
        page = await self._get_json(url, params, product_id)
        if not isinstance(page, list):
            raise BackfillError(f"GET {url} answered {str(page)[:200]!r}")
        return [trade for trade in page if isinstance(trade, dict)]

    async def _get_json(self, url: str, params: dict[str, str], product_id: str) -> Any:
        """GET a JSON body, retrying transport errors, 429 and 5xx (honouring Retry-After)."""
        delay = self._backoff_s
        for attempt in range(1, self._attempts + 1):
            try:
                response = await self._client.get(url, params=params)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    try:
                        return orjson.loads(response.content)
                    except orjson.JSONDecodeError:
                        raise BackfillError(f"GET {url} answered {response.text[:200]!r}") from None
                if response.status_code != 429 and response.status_code < 500:
                    raise BackfillError(
                        f"GET {url} answered HTTP {response.status_code}: {response.text[:200]}"
                    )
                problem = f"HTTP {response.status_code}"
                hint = response.headers.get("Retry-After", "")
                if hint.replace(".", "", 1).isdigit():
                    delay = max(delay, float(hint))
            if attempt == self._attempts:
                break
            log.warning(
                "backfill request failed; retrying",
                extra={"product_id": product_id, "attempt": attempt, "error": problem},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
        raise BackfillError(f"GET {url} failed {self._attempts} times; last: {problem}")

    async def fetch(self, product_id: str, family: Family, gap: Gap) -> list[TradeFrame]:
        """Every trade of `gap` the exchange still has, in trade-id order."""
        found: dict[int, TradeFrame] = {}
        after = gap.last + 1
        while after > gap.first:
            page = await self._page(product_id, after)
            if not page:
                break
            oldest = after
            refused: list[str] = []
            for trade in page:
                trade_id = trade.get("trade_id")
                if type(trade_id) is not int or not 0 <= trade_id <= MAX_ID:
                    refused.append(f"trade_id {str(trade_id)[:40]!r}")
                    continue
                oldest = min(oldest, trade_id)
                if not gap.first <= trade_id <= gap.last:
                    continue  # only the gap's trades are checked and converted
                try:
                    found[trade_id] = trade_record(product_id, family, trade, self._window)
                except (ValueError, KeyError) as exc:
                    refused.append(str(exc)[:200])
            if refused:  # one line per page, not one per forged trade
                log.error(
                    "skipping malformed REST trades",
                    extra={"product_id": product_id, "count": len(refused), "first": refused[0]},
                )
            if oldest >= after:  # the cursor did not move: avoid looping forever
                break
            after = oldest
        return [found[trade_id] for trade_id in sorted(found)]
