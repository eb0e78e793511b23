"""Replay of recorded Coinbase feed messages (JSON lines), re-published verbatim.

Each line is either a raw feed message or `{"recv_ts": <epoch seconds>, "msg": {...}}`.
Only the channels the simulator serves are replayed: `ticker`, `match` (channel `matches`) and
`heartbeat`; everything else (level2, subscriptions, last_match, ...) is skipped. Event time is
`recv_ts` when present, else the message's `time`. Trades enter the ground truth once per
(product, trade_id), from the match or, when the recording has no match for it, the ticker.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson

from cryptopipeline.coinbase import epoch_us, opposite_side
from cryptopipeline.sim._events import MarketEvent, Quote, RecordedEvent, Trade

_CHANNEL_OF_TYPE = {"ticker": "ticker", "match": "matches", "heartbeat": "heartbeat"}


class ReplayError(ValueError):
    """A replay file that cannot be read, with the line that failed."""


def _load(path: Path) -> list[tuple[int, dict[str, Any]]]:
    records: list[tuple[int, dict[str, Any]]] = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                raw = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ReplayError(f"{path}:{number}: not JSON: {exc}") from exc
            if not isinstance(raw, dict):
                continue
            message = raw.get("msg") if "msg" in raw and "recv_ts" in raw else raw
            if not isinstance(message, dict) or message.get("type") not in _CHANNEL_OF_TYPE:
                continue
            if "recv_ts" in raw:
                at_us = round(float(raw["recv_ts"]) * 1_000_000)
            elif isinstance(message.get("time"), str):
                at_us = epoch_us(message["time"])
            else:
                continue
            records.append((at_us, message))
    return records


class ReplayMarket:
    """Yields recorded messages as `MarketEvent`s in file order."""

    def __init__(self, path: Path, *, max_trades: int | None = None) -> None:
        self.path = path
        self.max_trades = max_trades
        self._records = _load(path)
        seen: dict[str, None] = {}
        for _, message in self._records:
            product = message.get("product_id")
            if isinstance(product, str):
                seen.setdefault(product, None)
        self.product_ids: list[str] = list(seen)
        self.start_us = self._records[0][0] if self._records else 0

    def __iter__(self) -> Iterator[MarketEvent]:
        recorded: dict[str, set[int]] = {}
        trades = 0
        for at_us, message in self._records:
            if self.max_trades is not None and trades >= self.max_trades:
                return
            product = str(message.get("product_id", ""))
            channel = _CHANNEL_OF_TYPE[message["type"]]
            trade = self._trade(message) if channel != "heartbeat" else None
            if trade is not None:
                ids = recorded.setdefault(product, set())
                if trade.trade_id in ids:
                    trade = None
                else:
                    ids.add(trade.trade_id)
                    trades += 1
            quote = self._quote(message) if channel == "ticker" else None
            yield RecordedEvent(at_us, product, channel, message, trade=trade, quote=quote)

    @staticmethod
    def _trade(message: dict[str, Any]) -> Trade | None:
        try:
            if message["type"] == "match":
                taker = opposite_side(message["side"])
                size = Decimal(message["size"])
            else:
                taker = message["side"]
                size = Decimal(message["last_size"])
            return Trade(
                product_id=message["product_id"],
                trade_id=int(message["trade_id"]),
                sequence=int(message.get("sequence", 0)),
                time=message["time"],
                price=Decimal(message["price"]),
                size=size,
                taker_side=taker,
                maker_order_id=str(message.get("maker_order_id", "")),
                taker_order_id=str(message.get("taker_order_id", "")),
            )
        except (KeyError, TypeError, ValueError, InvalidOperation):
            return None

    @staticmethod
    def _quote(message: dict[str, Any]) -> Quote | None:
        try:
            return Quote(
                Decimal(message["best_bid"]),
                Decimal(message["best_ask"]),
                Decimal(message["volume_24h"]),
            )
        except (KeyError, TypeError, ValueError, InvalidOperation):
            return None
