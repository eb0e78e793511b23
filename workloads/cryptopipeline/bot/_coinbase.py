"""Coinbase Advanced Trade: the REST client (JWT per request, one retry policy) and the broker.

The wire format (paths, request bodies, answers, fills) is `cryptopipeline.coinbase`'s; here
are the policy around it and the mapping to the trading domain.

Retry policy, written once in `_send`: 429 waits for `Retry-After` (capped); 5xx, timeouts and
connection errors back off exponentially; every retry resends the SAME body, so a create order
keeps its client_order_id and Coinbase returns the existing order instead of a second one.
Create order answers 200 with `success: false` for business rejections (funds, size): those
are rejections, not errors. Dry-run logs the exact request (never the token) instead of sending.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from cryptopipeline.bot._broker import BrokerUnavailable
from cryptopipeline.bot._credentials import CdpCredentials
from cryptopipeline.bot._inputs import BadInput, identifier, money, text
from cryptopipeline.coinbase import (
    CANCEL_ORDERS_PATH,
    LIST_FILLS_PATH,
    LIST_ORDERS_PATH,
    ORDER_PATH,
    ORDERS_PATH,
    CreateOrder,
    OrderState,
    OrderWireError,
    cancel_orders_request,
    create_order_request,
    error_text,
    parse_cancel_answer,
    parse_create_order_answer,
    parse_fill,
    parse_fills_page,
    parse_order,
    parse_orders_page,
)
from cryptopipeline.trading import (
    BrokerUpdate,
    Fill,
    OrderRequest,
    OrderSide,
    OrderStatus,
)

log = logging.getLogger(__name__)

LIST_ORDERS_PAGE = 100
"""Orders per list page the bot asks for (the exchange may answer fewer)."""
MAX_LIST_PAGES = 1_000
"""A lookup reads at most this many pages (100,000 orders of one product) before giving up
for now (BrokerUnavailable: the order is looked up again later, never resent)."""

_STATUS = {
    "OPEN": OrderStatus.OPEN,
    "PENDING": OrderStatus.OPEN,
    "QUEUED": OrderStatus.OPEN,
    "FILLED": OrderStatus.FILLED,
    "CANCELLED": OrderStatus.CANCELLED,
    "CANCEL_QUEUED": OrderStatus.OPEN,
    "EXPIRED": OrderStatus.CANCELLED,
    "FAILED": OrderStatus.FAILED,
}
_REJECTIONS = {
    "INSUFFICIENT_FUND": "broker_insufficient_funds",
    "INSUFFICIENT_FUNDS": "broker_insufficient_funds",
    "INVALID_SIZE_PRECISION": "broker_invalid_size",
    "INVALID_BASE_SIZE": "broker_invalid_size",
    "INVALID_PRICE_PRECISION": "broker_invalid_price",
    "INVALID_LIMIT_PRICE": "broker_invalid_price",
    "INVALID_PRODUCT_ID": "broker_invalid_product",
}


class AuthenticationFailed(BrokerUnavailable):
    """The exchange refused the key (401/403). Never retried; the message names no secret."""


class RequestRejected(Exception):
    """A 4xx other than 401/403/429: the request itself is wrong."""


class AdvancedTradeClient:
    def __init__(
        self,
        base_url: str,
        credentials: CdpCredentials | None,
        *,
        timeout_s: float = 10.0,
        max_attempts: int = 5,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        max_retry_after_s: float = 30.0,
        dry_run: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._host = urlsplit(base_url).netloc
        self._credentials = credentials
        self._max_attempts = max_attempts
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._max_retry_after_s = max_retry_after_s
        self.dry_run = dry_run
        self.dry_run_requests: list[dict[str, Any]] = []
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s),
            headers={"User-Agent": "cryptopipeline-bot", "Content-Type": "application/json"},
            transport=transport,
        )

    async def close(self) -> None:
        await self._http.aclose()

    # -- the one retry policy ----------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """The answer's JSON object; None for a dry run's create or cancel."""
        content = orjson.dumps(body) if body is not None else None
        if self.dry_run and method != "GET":
            request = {"method": method, "url": f"{self._http.base_url}{path}", "body": body}
            self.dry_run_requests.append(request)
            log.info("dry run: not sent", extra={"request": orjson.dumps(request).decode()})
            return None
        if self._credentials is None:
            raise AuthenticationFailed("no Coinbase API key is configured")
        delay = self._backoff_initial_s
        last_problem = ""
        for attempt in range(1, self._max_attempts + 1):
            token = self._credentials.token(method, self._host, path)
            try:
                response = await self._http.request(
                    method,
                    path,
                    content=content,
                    params=params,
                    headers={"Authorization": f"Bearer {token}"},
                )
            except httpx.TimeoutException:
                last_problem = "timeout"
            except httpx.TransportError as exc:
                last_problem = f"transport error ({type(exc).__name__})"
            else:
                status = response.status_code
                if status < 400:
                    return _json_object(response, method, path)
                if status in (401, 403):
                    raise AuthenticationFailed(
                        f"Coinbase refused the API key ({status} on {method} {path}): "
                        f"{_message(response)}; check the key name and private key"
                    )
                if status == 429:
                    wait = _retry_after(response, delay, self._max_retry_after_s)
                    log.warning(
                        "rate limited; waiting as told",
                        extra={"path": path, "retry_after_s": wait, "attempt": attempt},
                    )
                    await asyncio.sleep(wait)
                    continue
                if status < 500:
                    raise RequestRejected(f"{status} on {method} {path}: {_message(response)}")
                last_problem = f"HTTP {status}"
            if attempt < self._max_attempts:
                log.warning(
                    "request failed; retrying with the same body",
                    extra={"path": path, "problem": last_problem, "attempt": attempt},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max_s)
        raise BrokerUnavailable(
            f"{method} {path} failed {self._max_attempts} times (last: {last_problem})"
        )

    # -- endpoints ---------------------------------------------------------------------------

    async def create_order(self, order: OrderRequest) -> dict[str, Any] | None:
        return await self._send("POST", ORDERS_PATH, body=order_body(order))

    async def _get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        answer = await self._send("GET", path, params=params)
        if answer is None:  # a GET is sent even in a dry run
            raise BrokerUnavailable(f"GET {path}: no answer")
        return answer

    async def get_order(self, order_id: str) -> OrderState:
        answer = await self._get(ORDER_PATH.format(order_id=order_id))
        order = answer.get("order")
        if not isinstance(order, dict):
            raise BrokerUnavailable(f"get order {order_id}: the answer has no order object")
        return parse_order(order)

    async def find_order(self, product_id: str, client_order_id: str) -> OrderState | None:
        """The order with this client order id, paging through the product's orders (newest
        first) with the answer's `cursor` while `has_next`; None when no page holds it."""
        params = {"product_ids": product_id, "limit": str(LIST_ORDERS_PAGE)}
        seen: set[str] = set()
        for _ in range(MAX_LIST_PAGES):
            try:
                orders, cursor = parse_orders_page(await self._get(LIST_ORDERS_PATH, params))
            except OrderWireError as exc:
                raise BrokerUnavailable(str(exc)) from None
            for state in orders:
                if state.client_order_id == client_order_id:
                    return state
            if cursor is None:
                return None
            if cursor in seen:  # a cursor that goes round in circles must not loop forever
                raise BrokerUnavailable("list orders: the exchange repeated a page cursor")
            seen.add(cursor)
            params = {**params, "cursor": cursor}
        raise BrokerUnavailable(f"list orders: not found within {MAX_LIST_PAGES} pages")

    async def list_fills(self, order_id: str) -> list[object]:
        try:
            return parse_fills_page(await self._get(LIST_FILLS_PATH, {"order_ids": order_id}))
        except OrderWireError as exc:
            raise BrokerUnavailable(f"list fills {order_id}: {exc}") from None

    async def cancel_orders(self, order_ids: Sequence[str]) -> list[str]:
        """The ids of the orders the exchange says it cancelled."""
        answer = await self._send("POST", CANCEL_ORDERS_PATH, body=cancel_orders_request(order_ids))
        if answer is None:  # dry run
            return []
        try:
            return parse_cancel_answer(answer)
        except OrderWireError as exc:
            raise BrokerUnavailable(str(exc)) from None


def order_body(order: OrderRequest) -> dict[str, Any]:
    """The create-order request: market IOC or limit GTC, sized in base units."""
    return create_order_request(
        CreateOrder(
            order.client_order_id, order.product_id, order.side.value, order.order_type.value,
            order.base_size, order.limit_price,
        )
    )  # fmt: skip


def _json_object(response: httpx.Response, method: str, path: str) -> dict[str, Any]:
    """A success answer's body, which must be a JSON object: anything else is an answer the
    bot cannot act on (unavailable, asked again later), never an exception in the service."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json parses
        raise BrokerUnavailable(f"{method} {path}: the answer is not JSON") from None
    if not isinstance(body, dict):
        raise BrokerUnavailable(f"{method} {path}: the answer is not a JSON object")
    return body


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return response.text[:200]
    return error_text(body)[:200]


def _retry_after(response: httpx.Response, fallback: float, cap: float) -> float:
    try:
        return min(max(float(response.headers.get("Retry-After", fallback)), 0.0), cap)
    except ValueError:
        return fallback


class CoinbaseBroker:
    """The live broker: Advanced Trade orders, their status and fills."""

    name = "coinbase"

    def __init__(self, client: AdvancedTradeClient) -> None:
        self.client = client

    async def submit(self, order: OrderRequest) -> BrokerUpdate:
        coid = order.client_order_id
        answer = await self.client.create_order(order)
        if answer is None:  # dry run
            return BrokerUpdate(coid, OrderStatus.FAILED, reason="dry_run", detail="not sent")
        created = parse_create_order_answer(answer)
        if not created.success:
            code = created.error[:64]
            if not code.replace("_", "").isalnum():
                code = "UNKNOWN"  # the reason is a metric label: a fixed, short word
            reason = _REJECTIONS.get(code, f"broker_{code.lower()}")
            detail = created.message or code
            return BrokerUpdate(coid, OrderStatus.REJECTED, reason=reason, detail=detail[:300])
        try:
            order_id = identifier(created.order_id, "success_response.order_id")
        except BadInput as exc:  # it may exist: look it up later, never send it again
            raise BrokerUnavailable(f"create order: unreadable answer: {exc}") from None
        return await self._state(coid, order_id)

    async def _state(self, coid: str, order_id: str) -> BrokerUpdate:
        state = await self.client.get_order(order_id)
        fills: tuple[Fill, ...] = ()
        try:
            if money(state.filled_size, "filled_size", zero=True) > 0:
                fills = tuple(_fill(coid, f) for f in await self.client.list_fills(order_id))
        except BadInput as exc:  # never book a forged or broken fill; ask again later
            raise BrokerUnavailable(f"unreadable answer for order {order_id}: {exc}") from None
        status = _STATUS.get(state.status, OrderStatus.OPEN)
        return BrokerUpdate(coid, status, order_id, fills=fills)

    async def lookup(self, order: OrderRequest) -> BrokerUpdate | None:
        state = await self.client.find_order(order.product_id, order.client_order_id)
        if state is None:
            return None
        try:
            order_id = identifier(state.order_id, "order_id")
        except BadInput as exc:
            raise BrokerUnavailable(f"list orders: unreadable order: {exc}") from None
        return await self._state(order.client_order_id, order_id)

    async def cancel(self, orders: Sequence[tuple[str, str | None]]) -> list[BrokerUpdate]:
        ids = {exchange_id: coid for coid, exchange_id in orders if exchange_id}
        if not ids:
            return []
        cancelled = await self.client.cancel_orders(list(ids))
        return [BrokerUpdate(ids[i], OrderStatus.CANCELLED, i) for i in cancelled if i in ids]

    async def poll(self, orders: Sequence[tuple[str, str | None]]) -> list[BrokerUpdate]:
        updates = []
        for coid, exchange_id in orders:
            if exchange_id:
                updates.append(await self._state(coid, exchange_id))
        return updates

    def on_tick(self, product_id: str, bid: Decimal, ask: Decimal, time: str) -> None:
        """The exchange fills against its own book."""

    async def lost_on_restart(self, orders: Sequence[tuple[str, str | None]]) -> list[BrokerUpdate]:
        """None: open orders live at the exchange across our restarts (`poll` follows them)."""
        return []

    async def aclose(self) -> None:
        await self.client.close()


def _fill(coid: str, raw: object) -> Fill:
    """One fill of the exchange's answer, checked (BadInput) before it can touch money."""
    try:
        fill = parse_fill(raw)
    except OrderWireError as exc:
        reason = "bad_decimal" if exc.field in ("price", "size", "commission") else "bad_field"
        raise BadInput(reason, str(exc)) from None
    return Fill(
        fill_id=text(fill.entry_id, "entry_id"),
        client_order_id=coid,
        product_id=text(fill.product_id, "product_id"),
        side=OrderSide(fill.side),
        price=money(fill.price, "price"),
        size=money(fill.size, "size"),
        fee=money(fill.commission, "commission", zero=True),
        liquidity="MAKER" if fill.liquidity == "MAKER" else "TAKER",
        time=fill.time,
    )
