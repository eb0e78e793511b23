"""Reading Exchange feed messages back: the one set of rules for a `ticker`, a `match` and a
`heartbeat`, whoever reads them (the ingestor at the edge, the market data of the signaler and
the backtests, the bot).

Ids are integers in [0, 2**63) (Kafka, ksqlDB BIGINT, Java); `time` is an RFC 3339 UTC time;
prices, sizes and volumes are plain ASCII decimals as Coinbase writes them, price and size
positive; `side` is buy or sell. Fields that a backfilled or mapped message lacks (sequence,
side, a ticker's statistics and book top) are checked when present. A field that breaks a rule
raises `FieldError` naming it. When an event may happen (not before 2010, not ahead of the
clock) is the edge's rule, kept in the ingestor.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from typing import Any

from cryptopipeline.coinbase._time import epoch_us

MAX_ID = (1 << 63) - 1
"""Trade ids and sequences must fit a signed 64-bit integer (Kafka, ksqlDB BIGINT, Java)."""
MAX_PRODUCT_ID = 64
"""No product id is longer ("BTC-USD", "ETH-USDC"): a longer one is not a product id."""

TICKER_STATISTICS = (
    "open_24h", "volume_24h", "low_24h", "high_24h", "volume_30d",
    "best_bid", "best_bid_size", "best_ask", "best_ask_size",
)  # fmt: skip
"""A ticker's optional decimals (a REST backfill or the Advanced Trade mapping lacks them)."""
TRADE_DECIMALS = frozenset({"price", "size", "last_size", *TICKER_STATISTICS})
"""Every decimal field of a ticker or a match."""

PLAIN_DECIMAL = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20})?")
"""How Coinbase writes every price, size and volume: digits, an optional fraction, no sign, no
exponent. Anything else (NaN, sNaN, Infinity, 1E+999, -1, 20+ integer digits) is refused:
downstream Decimal arithmetic on such a value raises or overflows."""

_SIDES = frozenset({"buy", "sell"})

_ALL_TICKER_DECIMALS = operator.itemgetter("price", "last_size", *TICKER_STATISTICS)
_JOINED_DECIMALS = re.compile(
    r"(?:\d{1,20}+(?:\.\d{1,20}+)?+\|){"
    + str(len(TICKER_STATISTICS) + 1)
    + r"}\d{1,20}+(?:\.\d{1,20}+)?+",
    re.ASCII,  # \d is [0-9]; possessive quantifiers never backtrack: ~0.6 us a ticker
)


class FieldError(ValueError):
    """A field of a feed message that breaks the feed's rules; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def read_id(body: Mapping[str, Any], key: str) -> int:
    """A trade id, `last_trade_id` or `sequence`."""
    value = body.get(key)
    if type(value) is not int or not 0 <= value <= MAX_ID:
        raise FieldError(key, f"{key} {str(value)[:40]!r} is not an integer in [0, 2**63)")
    return value


def read_time(body: Mapping[str, Any]) -> int:
    """The event time, in microseconds since the epoch."""
    try:
        return epoch_us(body.get("time"), True)
    except ValueError as exc:
        raise FieldError("time", str(exc)) from None


def read_product(body: Mapping[str, Any]) -> str:
    """The product id, for a reader that has no list of products to check it against."""
    value = body.get("product_id")
    if not isinstance(value, str) or not value or len(value) > MAX_PRODUCT_ID:
        raise FieldError("product_id", f"product_id {str(value)[:64]!r} is not a product id")
    return value


def check_ticker(body: Mapping[str, Any]) -> None:
    """A ticker's decimals, sequence and side (its ids and time are read apart).

    The hot path, inlined: a complete, valid feed ticker passes with one C-level regex match
    over all its decimals; anything else (an optional field absent, or a bad value to name) is
    checked field by field."""
    try:
        values = _ALL_TICKER_DECIMALS(body)
        if _JOINED_DECIMALS.fullmatch("|".join(values)) is not None:
            sequence = body.get("sequence")
            if (
                type(sequence) is int
                and 0 <= sequence <= MAX_ID
                and (side := body.get("side")).__class__ is str
                and side in _SIDES
                and values[0].strip("0.") != ""  # price and size: positive
                and values[1].strip("0.") != ""
            ):
                return
    except (KeyError, TypeError):
        pass
    _check_decimal(body, "price", positive=True)
    _check_decimal(body, "last_size", positive=True)
    _check_optional(body, TICKER_STATISTICS)


def check_match(body: Mapping[str, Any]) -> None:
    """A match's decimals, sequence and side (its ids and time are read apart)."""
    _check_decimal(body, "price", positive=True)
    _check_decimal(body, "size", positive=True)
    _check_optional(body, ())


def check_heartbeat(body: Mapping[str, Any]) -> None:
    """A heartbeat's sequence (its `last_trade_id` and time are read apart)."""
    if "sequence" in body:
        read_id(body, "sequence")


def _check_decimal(body: Mapping[str, Any], key: str, *, positive: bool) -> None:
    value = body.get(key)
    if type(value) is not str or PLAIN_DECIMAL.fullmatch(value) is None:
        raise FieldError(key, f"{key} {str(value)[:40]!r} is not a plain decimal string")
    if positive and not value.replace(".", "").strip("0"):  # "0", "0.000": zeros only
        raise FieldError(key, f"{key} {value!r} is not positive")


def _check_optional(body: Mapping[str, Any], decimals: tuple[str, ...]) -> None:
    for key in decimals:
        if key in body:
            _check_decimal(body, key, positive=False)
    if "sequence" in body:
        read_id(body, "sequence")
    side = body.get("side")
    if side is not None and (type(side) is not str or side not in _SIDES):
        raise FieldError("side", f"side {str(side)[:40]!r} is not buy or sell")
