"""The Advanced Trade order endpoints on their own port (`--trade-port`), with CDP JWT checks.

A second listener because these endpoints take JSON bodies, which the feed port's HTTP parser
(websockets) refuses. Requests are read and answers written with `cryptopipeline.coinbase`,
the same module the bot's broker speaks with. Endpoints (Coinbase's paths):

  POST /api/v3/brokerage/orders                      create (idempotent per client_order_id)
  GET  /api/v3/brokerage/orders/historical/{id}      one order
  GET  /api/v3/brokerage/orders/historical/batch     list orders (product_ids, order_status,
                                                     limit, cursor; pages newest first)
  GET  /api/v3/brokerage/orders/historical/fills     fills (order_ids / order_id, product_ids)
  POST /api/v3/brokerage/orders/batch_cancel         cancel {"order_ids": [...]}

Every one needs `Authorization: Bearer <JWT>`: ES256, header kid = a known key name and a
nonce never seen before, claims iss "cdp", sub = kid, nbf <= now < exp, and
uri = "METHOD host/path" of this very request. Control (no auth): `GET /sim/orders`,
`GET /sim/account`, `POST /sim/trade-faults` (JSON: status, count, after_commit,
retry_after, delay_s) to answer the next `count` create requests with `status`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from ssl import SSLContext
from typing import Any

import orjson
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from cryptopipeline.coinbase import (
    CANCEL_ORDERS_PATH,
    LIST_FILLS_PATH,
    LIST_ORDERS_PATH,
    ORDER_PATH,
    ORDERS_PATH,
    OrderWireError,
    cancel_answer,
    create_order_failure,
    create_order_success,
    error_answer,
    fills_page,
    orders_page,
    parse_cancel_orders_request,
    token_uri,
)
from cryptopipeline.sim._auth import TokenCheck
from cryptopipeline.sim._orders import BadOrderRequest, OrderRejected, SimAccount

log = logging.getLogger("cryptopipeline.sim.trade")

DEFAULT_ORDERS_LIMIT = 100
"""List orders: orders per page when `limit` is not given, newest first; `cursor` (opaque to
clients, an offset here) and `has_next` lead to the next page, as Coinbase pages."""
MAX_ORDERS_LIMIT = 1_000


def load_trade_keys(path: Path) -> dict[str, EllipticCurvePublicKey]:
    """Key name -> EC public key, from a JSON object {"key name": "PEM", ...}."""
    raw = orjson.loads(path.read_bytes())
    keys: dict[str, EllipticCurvePublicKey] = {}
    for name, pem in raw.items():
        key = load_pem_public_key(str(pem).encode())
        if not isinstance(key, EllipticCurvePublicKey):
            raise ValueError(f"trade key {name!r} is not an EC public key")
        keys[str(name)] = key
    return keys


@dataclass
class TradeFaults:
    """Answer the next `count` create requests with `status` (after creating the order when
    `after_commit`), or delay them by `delay_s` (a timeout on the client's side)."""

    status: int = 0
    count: int = 0
    after_commit: bool = False
    retry_after: float = 1.0
    delay_s: float = 0.0


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def _bad_request(message: str) -> web.Response:
    return _json(400, error_answer("INVALID_ARGUMENT", message))


def _unauthorized(why: str) -> web.Response:
    return _json(401, error_answer("UNAUTHENTICATED", f"Unauthorized: {why}"))


class TradeApi:
    """The aiohttp application and its runner; `port=0` picks a free port."""

    def __init__(
        self,
        account: SimAccount,
        keys: dict[str, EllipticCurvePublicKey],
        *,
        host: str,
        port: int,
        ssl: SSLContext | None = None,
    ) -> None:
        self.account = account
        self.ssl = ssl
        self.tokens = TokenCheck(keys)
        self.host = host
        self.port = port
        self.faults = TradeFaults()
        self.auth_failures = 0
        self._lock = asyncio.Lock()
        app = web.Application(middlewares=[self._auth])
        app.add_routes(
            [
                web.post(ORDERS_PATH, self._create),
                web.get(LIST_ORDERS_PATH, self._list_orders),
                web.get(LIST_FILLS_PATH, self._fills),
                web.get(ORDER_PATH, self._get_order),
                web.post(CANCEL_ORDERS_PATH, self._cancel),
                web.get("/sim/orders", self._sim_orders),
                web.get("/sim/account", self._sim_account),
                web.post("/sim/trade-faults", self._set_faults),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None)

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}"

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl)
        await site.start()
        server = site._server
        if server is not None and self.port == 0:
            sockets = getattr(server, "sockets", None) or []
            self.port = int(sockets[0].getsockname()[1])

    async def close(self) -> None:
        await self._runner.cleanup()

    # -- authentication ----------------------------------------------------------------------

    @web.middleware
    async def _auth(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith("/sim/"):
            return await handler(request)
        why = self._verify(request)
        if why is not None:
            self.auth_failures += 1
            log.warning("rejected a request", extra={"path": request.path, "why": why})
            return _unauthorized(why)
        return await handler(request)

    def _verify(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return "missing bearer token"
        uri = token_uri(request.method, request.host, request.path)
        return self.tokens.refusal(header[len("Bearer ") :], uri)

    # -- orders ------------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _bad_request("body is not JSON")
        if not isinstance(body, dict):
            return _bad_request("body must be an object")
        faults = self.faults
        fault = faults.count > 0 and (faults.status or faults.delay_s)
        if fault:
            faults.count -= 1
        if fault and faults.status and not faults.after_commit:
            return self._fault_response(faults)
        async with self._lock:
            self.account.match_resting()
            try:
                order, _new = self.account.create(body)
            except BadOrderRequest as exc:
                return _bad_request(str(exc))
            except OrderRejected as exc:
                return _json(200, create_order_failure(exc.error, exc.message, exc.preview))
        if fault and faults.delay_s:
            await asyncio.sleep(faults.delay_s)  # the fault itself: a response that comes late
        if fault and faults.status:
            return self._fault_response(faults)
        return _json(200, create_order_success(order.request, order.order_id))

    @staticmethod
    def _fault_response(faults: TradeFaults) -> web.Response:
        if faults.status == 429:
            return _json(
                429,
                error_answer("RATE_LIMIT_EXCEEDED", "Too many requests"),
                headers={"Retry-After": f"{faults.retry_after:g}"},
            )
        return _json(faults.status, error_answer("INTERNAL", "simulated failure"))

    async def _get_order(self, request: web.Request) -> web.Response:
        self.account.match_resting()
        order = self.account.orders.get(request.match_info["order_id"])
        if order is None:
            return _json(404, error_answer("NOT_FOUND", "order not found"))
        return _json(200, {"order": order.as_json()})

    async def _list_orders(self, request: web.Request) -> web.Response:
        self.account.match_resting()
        products = set(request.query.getall("product_ids", []))
        statuses = set(request.query.getall("order_status", []))
        try:
            limit = int(request.query.get("limit", str(DEFAULT_ORDERS_LIMIT)))
            start = int(request.query.get("cursor") or "0")
        except ValueError:
            return _bad_request("bad limit or cursor")
        if not 1 <= limit <= MAX_ORDERS_LIMIT or start < 0:
            return _bad_request("bad limit or cursor")
        matching = [
            o
            for o in reversed(self.account.orders.values())
            if (not products or o.product_id in products) and (not statuses or o.status in statuses)
        ]
        page = [o.as_json() for o in matching[start : start + limit]]
        cursor = str(start + limit) if start + limit < len(matching) else ""
        return _json(200, orders_page(page, cursor))

    async def _fills(self, request: web.Request) -> web.Response:
        self.account.match_resting()
        wanted = set(request.query.getall("order_ids", [])) | set(
            request.query.getall("order_id", [])
        )
        products = set(request.query.getall("product_ids", []))
        fills = [
            f.as_json()
            for o in self.account.orders.values()
            if (not wanted or o.order_id in wanted) and (not products or o.product_id in products)
            for f in o.fills
        ]
        return _json(200, fills_page(fills))

    async def _cancel(self, request: web.Request) -> web.Response:
        try:
            order_ids = parse_cancel_orders_request(orjson.loads(await request.read()))
        except (orjson.JSONDecodeError, OrderWireError):
            return _bad_request("order_ids required")
        return _json(200, cancel_answer((i, *self.account.cancel(i)) for i in order_ids))

    # -- control -----------------------------------------------------------------------------

    async def _sim_orders(self, request: web.Request) -> web.Response:
        self.account.match_resting()
        return _json(200, [o.as_json() for o in self.account.orders.values()])

    async def _sim_account(self, request: web.Request) -> web.Response:
        body = self.account.account()
        body["auth_failures"] = self.auth_failures
        return _json(200, body)

    async def _set_faults(self, request: web.Request) -> web.Response:
        try:
            raw = orjson.loads(await request.read() or b"{}")
            self.faults = TradeFaults(
                status=int(raw.get("status", 0)),
                count=int(raw.get("count", 1 if raw.get("status") or raw.get("delay_s") else 0)),
                after_commit=bool(raw.get("after_commit", False)),
                retry_after=float(raw.get("retry_after", 1.0)),
                delay_s=float(raw.get("delay_s", 0.0)),
            )
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
            return _json(400, {"message": f"bad fault plan: {exc}"})
        return _json(200, vars(self.faults))
