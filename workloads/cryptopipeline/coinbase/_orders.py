"""Advanced Trade orders on the wire: the endpoints, the create and cancel requests, order and
fill objects, the answers, and the claims of the JWT that authenticates each request; no I/O.

The bot's Coinbase broker builds requests and parses answers with it, coinbase-sim parses
requests and builds answers with it. This project speaks two order types: market IOC and
limit GTC, both sized in base units. Decimals travel as strings, sides and statuses in upper
case. Parsers raise `OrderWireError` naming the field; what a value may be beyond its wire
type (positive, within bounds, a known product) is the reader's rule, not this module's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

ORDERS_PATH = "/api/v3/brokerage/orders"  # POST: create
ORDER_PATH = ORDERS_PATH + "/historical/{order_id}"  # GET; a str.format template, an aiohttp route
LIST_ORDERS_PATH = (
    ORDERS_PATH + "/historical/batch"
)  # GET, newest first: product_ids, order_status, limit, cursor
LIST_FILLS_PATH = ORDERS_PATH + "/historical/fills"  # GET: order_ids (or order_id), product_ids
CANCEL_ORDERS_PATH = ORDERS_PATH + "/batch_cancel"  # POST: {"order_ids": [...]}

TOKEN_ALGORITHM = "ES256"
TOKEN_ISSUER = "cdp"
TOKEN_LIFETIME_S = 120
TOKEN_CLAIMS = ("exp", "nbf", "iss", "sub", "uri")
"""Every claim a token must carry."""

MARKET_IOC = "market_market_ioc"
LIMIT_GTC = "limit_limit_gtc"
ORDER_SIDES = ("BUY", "SELL")  # a tuple: `in` must not raise for an unhashable forged value


class OrderWireError(ValueError):
    """A request or answer not shaped as Advanced Trade writes it; `field` names the part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class UnsupportedOrder(OrderWireError):
    """A well-formed order configuration that this project does not speak."""


# -- authentication --------------------------------------------------------------------------
def token_uri(method: str, host: str, path: str) -> str:
    """The `uri` claim: "METHOD host/path" of the very request (host with its port, no query)."""
    return f"{method.upper()} {host}{path}"


def token_claims(key_name: str, uri: str, issued: int) -> dict[str, Any]:
    """A token's claims: issuer "cdp", subject the key name, valid from `issued` for 120 s."""
    exp = issued + TOKEN_LIFETIME_S
    return {"iss": TOKEN_ISSUER, "sub": key_name, "nbf": issued, "exp": exp, "uri": uri}


def token_headers(key_name: str, nonce: str) -> dict[str, str]:
    """A token's own header fields: `kid` is the key name, `nonce` is never used twice."""
    return {"kid": key_name, "nonce": nonce}


# -- create and cancel -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreateOrder:
    """A create-order request: market IOC (no limit price) or limit GTC, in base units."""

    client_order_id: str
    product_id: str
    side: str  # BUY or SELL
    order_type: str  # MARKET or LIMIT
    base_size: Decimal
    limit_price: Decimal | None = None


def order_configuration(order: CreateOrder) -> dict[str, Any]:
    if order.order_type == "MARKET":
        return {MARKET_IOC: {"base_size": str(order.base_size)}}
    return {
        LIMIT_GTC: {
            "base_size": str(order.base_size),
            "limit_price": str(order.limit_price),
            "post_only": False,
        }
    }


def create_order_request(order: CreateOrder) -> dict[str, Any]:
    """The body of `POST /orders`."""
    return {
        "client_order_id": order.client_order_id,
        "product_id": order.product_id,
        "side": order.side,
        "order_configuration": order_configuration(order),
    }


def read_client_order_id(body: Mapping[str, Any]) -> str:
    """A create request's client order id, read first: it decides whether the order is new."""
    value = body.get("client_order_id")
    if not isinstance(value, str) or not value:
        raise OrderWireError("client_order_id", "client_order_id is required")
    return value


def parse_create_order(body: Mapping[str, Any]) -> CreateOrder:
    """A create-order body back; `UnsupportedOrder` for another order type or sizing."""
    client_order_id = read_client_order_id(body)
    side = body.get("side")
    if side not in ORDER_SIDES:
        raise OrderWireError("side", "side must be BUY or SELL")
    product_id = body.get("product_id")
    if not isinstance(product_id, str):
        raise OrderWireError("product_id", f"unknown product {product_id!r}")
    configuration = body.get("order_configuration")
    if not isinstance(configuration, dict) or len(configuration) != 1:
        raise OrderWireError(
            "order_configuration", "order_configuration must hold exactly one order type"
        )
    kind, params = next(iter(configuration.items()))
    if not isinstance(params, dict):
        raise OrderWireError("order_configuration", "order_configuration is malformed")
    limit_price = None
    if kind == MARKET_IOC:
        if "base_size" not in params:
            raise UnsupportedOrder("order_configuration", f"{kind} takes base_size only")
    elif kind == LIMIT_GTC:
        limit_price = _decimal(params.get("limit_price"), "limit_price")
    else:
        raise UnsupportedOrder("order_configuration", f"{kind} is not supported")
    base_size = _decimal(params.get("base_size"), "base_size")
    order_type = "MARKET" if limit_price is None else "LIMIT"
    return CreateOrder(client_order_id, product_id, side, order_type, base_size, limit_price)


def create_order_success(order: CreateOrder, order_id: str) -> dict[str, Any]:
    """The answer to a create that made (or had made) the order."""
    return {
        "success": True,
        "success_response": {
            "order_id": order_id,
            "product_id": order.product_id,
            "side": order.side,
            "client_order_id": order.client_order_id,
        },
        "order_configuration": order_configuration(order),
    }


def create_order_failure(error: str, message: str, preview: str = "") -> dict[str, Any]:
    """A business rejection (funds, size, product): HTTP 200 with `success: false`."""
    return {
        "success": False,
        "failure_reason": "UNKNOWN_FAILURE_REASON",
        "order_id": "",
        "error_response": {
            "error": error,
            "message": message,
            "error_details": message,
            "preview_failure_reason": preview,
        },
    }


@dataclass(frozen=True, slots=True)
class CreateOrderAnswer:
    """On success the exchange's order id (None if the answer lacks it); on failure, the code
    ("UNKNOWN" if the answer gives none) and what the failure says, if anything."""

    success: bool
    order_id: str | None
    error: str
    message: str


def parse_create_order_answer(answer: Mapping[str, Any]) -> CreateOrderAnswer:
    if answer.get("success") is not True:
        error = answer.get("error_response")
        error = error if isinstance(error, dict) else {}
        code = str(error.get("error") or answer.get("failure_reason") or "UNKNOWN")
        message = str(error.get("message") or error.get("preview_failure_reason") or "")
        return CreateOrderAnswer(False, None, code, message)
    success = answer.get("success_response")
    order_id = success.get("order_id") if isinstance(success, dict) else None
    return CreateOrderAnswer(True, order_id if isinstance(order_id, str) else None, "", "")


def cancel_orders_request(order_ids: Sequence[str]) -> dict[str, Any]:
    return {"order_ids": list(order_ids)}


def parse_cancel_orders_request(body: object) -> list[str]:
    ids = body.get("order_ids") if isinstance(body, dict) else None
    if not isinstance(ids, list):
        raise OrderWireError("order_ids", "order_ids required")
    return [str(i) for i in ids]


def cancel_answer(results: Iterable[tuple[str, bool, str]]) -> dict[str, Any]:
    """The answer to a cancel: (order id, cancelled, failure reason) for each order asked."""
    rows = [{"success": ok, "failure_reason": why, "order_id": i} for i, ok, why in results]
    return {"results": rows}


def parse_cancel_answer(answer: Mapping[str, Any]) -> list[str]:
    """The ids of the orders the answer says were cancelled."""
    results = answer.get("results", [])
    if not isinstance(results, list):
        raise OrderWireError("results", "batch cancel: results is not a list")
    return [
        str(r.get("order_id")) for r in results if isinstance(r, dict) and r.get("success") is True
    ]


# -- orders and fills ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OrderFill:
    """One fill of an order (an element of `GET /orders/historical/fills`)."""

    entry_id: str
    trade_id: str
    order_id: str
    time: str
    price: Decimal
    size: Decimal
    commission: Decimal
    product_id: str
    side: str
    liquidity: str  # MAKER or TAKER
    user_id: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "trade_id": self.trade_id,
            "order_id": self.order_id,
            "trade_time": self.time,
            "trade_type": "FILL",
            "price": str(self.price),
            "size": str(self.size),
            "commission": str(self.commission),
            "product_id": self.product_id,
            "sequence_timestamp": self.time,
            "liquidity_indicator": self.liquidity,
            "size_in_quote": False,
            "user_id": self.user_id,
            "side": self.side,
        }


def parse_fill(raw: object) -> OrderFill:
    """A fill back, its decimals finite (a missing commission is zero)."""
    if not isinstance(raw, dict):
        raise OrderWireError("fill", "a fill that is not an object")
    side = raw.get("side")
    if side not in ORDER_SIDES:
        raise OrderWireError("side", "fill side must be BUY or SELL")
    return OrderFill(
        entry_id=_text(raw, "entry_id"),
        trade_id=_optional_text(raw, "trade_id"),
        order_id=_optional_text(raw, "order_id"),
        time=_optional_text(raw, "trade_time"),
        price=_decimal(raw.get("price"), "price"),
        size=_decimal(raw.get("size"), "size"),
        commission=_decimal(raw.get("commission") or "0", "commission"),
        product_id=_text(raw, "product_id"),
        side=side,
        liquidity="MAKER" if raw.get("liquidity_indicator") == "MAKER" else "TAKER",
        user_id=_optional_text(raw, "user_id"),
    )


def order_object(
    order: CreateOrder, *, order_id: str, user_id: str, status: str, created_time: str,
    fills: Sequence[OrderFill],
) -> dict[str, Any]:  # fmt: skip
    """One order as `GET /orders/historical/{id}` and the list show it, totals from its fills."""
    filled = sum((f.size for f in fills), Decimal(0))
    value = sum((f.size * f.price for f in fills), Decimal(0))
    fees = sum((f.commission for f in fills), Decimal(0))
    average = value / filled if filled else Decimal(0)
    market = order.order_type == "MARKET"
    return {
        "order_id": order_id,
        "product_id": order.product_id,
        "user_id": user_id,
        "order_configuration": order_configuration(order),
        "side": order.side,
        "client_order_id": order.client_order_id,
        "status": status,
        "time_in_force": "IMMEDIATE_OR_CANCEL" if market else "GOOD_UNTIL_CANCELLED",
        "created_time": created_time,
        "completion_percentage": str(filled / order.base_size * 100 if order.base_size else 0),
        "filled_size": str(filled),
        "average_filled_price": str(average),
        "fee": "",
        "number_of_fills": str(len(fills)),
        "filled_value": str(value),
        "pending_cancel": False,
        "size_in_quote": False,
        "total_fees": str(fees),
        "size_inclusive_of_fees": False,
        "total_value_after_fees": str(value + fees if order.side == "BUY" else value - fees),
        "order_type": order.order_type,
        "product_type": "SPOT",
    }


@dataclass(frozen=True, slots=True)
class OrderState:
    """What a reader needs of an order object; a field the answer lacks or garbles is None."""

    order_id: str | None
    client_order_id: str | None
    status: str
    filled_size: Decimal | None


def parse_order(raw: Mapping[str, Any]) -> OrderState:
    order_id, client_order_id = raw.get("order_id"), raw.get("client_order_id")
    try:
        filled: Decimal | None = _decimal(raw.get("filled_size") or "0", "filled_size")
    except OrderWireError:
        filled = None
    return OrderState(
        order_id if isinstance(order_id, str) else None,
        client_order_id if isinstance(client_order_id, str) else None,
        str(raw.get("status")),
        filled,
    )


def orders_page(orders: list[dict[str, Any]], cursor: str) -> dict[str, Any]:
    """One page of the order list; `cursor` leads to the next page ("" on the last)."""
    return {"orders": orders, "sequence": "0", "has_next": bool(cursor), "cursor": cursor}


def parse_orders_page(answer: Mapping[str, Any]) -> tuple[list[OrderState], str | None]:
    """The page's orders and the cursor of the next page (None on the last)."""
    orders = answer.get("orders")
    if not isinstance(orders, list):
        raise OrderWireError("orders", "list orders: the answer has no orders list")
    cursor = answer.get("cursor")
    more = answer.get("has_next") and isinstance(cursor, str) and cursor
    return [parse_order(o) for o in orders if isinstance(o, dict)], cursor if more else None


def fills_page(fills: list[dict[str, Any]]) -> dict[str, Any]:
    return {"fills": fills, "cursor": ""}


def parse_fills_page(answer: Mapping[str, Any]) -> list[object]:
    """The page's fills, each still to be read with `parse_fill`."""
    fills = answer.get("fills", [])
    if not isinstance(fills, list):
        raise OrderWireError("fills", "fills is not a list")
    return fills


def error_answer(error: str, message: str) -> dict[str, str]:
    """A refused request (4xx, 5xx): a code and what went wrong."""
    return {"error": error, "message": message}


def error_text(answer: object) -> str:
    """What a refusal says (its message, else its code)."""
    if isinstance(answer, dict):
        return str(answer.get("message") or answer.get("error") or "")
    return ""


def _decimal(value: object, field: str) -> Decimal:
    """A finite decimal from a JSON string (or number)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise OrderWireError(field, f"{field} is not a decimal string")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise OrderWireError(field, f"{field} is not a decimal string") from None
    if not number.is_finite():
        raise OrderWireError(field, f"{field} is not a finite number")
    return number


def _text(raw: Mapping[str, Any], field: str) -> str:
    value = raw.get(field)
    if not isinstance(value, str):
        raise OrderWireError(field, f"{field} is not a string")
    return value


def _optional_text(raw: Mapping[str, Any], field: str) -> str:
    value = raw.get(field)
    return value[:64] if isinstance(value, str) else ""
