"""The ground truth: every trade the simulator published, per product, in trade-id order.

Serves REST pagination, `last_match`, the REST ticker, `/sim/trades` and the optional
`--ground-truth` JSON-lines file.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from cryptopipeline.coinbase import MatchMessage, match_message
from cryptopipeline.sim._events import Quote, Trade


@dataclass(slots=True)
class _ProductTape:
    trades: list[Trade]
    trade_ids: list[int]
    quote: Quote | None = None
    sequence: int = 0


class TradeLedger:
    """Trades by product; appends are O(1), page look-ups O(log n)."""

    def __init__(self, ground_truth: Path | None = None) -> None:
        self._tapes: dict[str, _ProductTape] = {}
        self._file: IO[bytes] | None = ground_truth.open("wb") if ground_truth else None
        self.total = 0

    def add_product(self, product_id: str) -> None:
        self._tapes.setdefault(product_id, _ProductTape([], []))

    def record(self, trade: Trade, quote: Quote | None) -> None:
        tape = self._tapes.get(trade.product_id)
        if tape is None:
            tape = self._tapes[trade.product_id] = _ProductTape([], [])
        if tape.trade_ids and trade.trade_id < tape.trade_ids[-1]:
            index = bisect.bisect_left(tape.trade_ids, trade.trade_id)
            tape.trade_ids.insert(index, trade.trade_id)
            tape.trades.insert(index, trade)
        else:
            tape.trade_ids.append(trade.trade_id)
            tape.trades.append(trade)
        if quote is not None:
            tape.quote = quote
        tape.sequence = max(tape.sequence, trade.sequence)
        self.total += 1
        if self._file is not None:
            self._file.write(orjson.dumps(trade.ground_truth(), option=orjson.OPT_APPEND_NEWLINE))

    def note_quote(self, product_id: str, quote: Quote) -> None:
        tape = self._tapes.get(product_id)
        if tape is not None:
            tape.quote = quote

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def product_ids(self) -> list[str]:
        return list(self._tapes)

    def has_product(self, product_id: str) -> bool:
        return product_id in self._tapes

    def trades(self, product_id: str) -> list[Trade]:
        """All trades of a product, oldest first."""
        tape = self._tapes.get(product_id)
        return list(tape.trades) if tape else []

    def count(self, product_id: str) -> int:
        tape = self._tapes.get(product_id)
        return len(tape.trades) if tape else 0

    def last_trade(self, product_id: str) -> Trade | None:
        tape = self._tapes.get(product_id)
        return tape.trades[-1] if tape and tape.trades else None

    def quote(self, product_id: str) -> Quote | None:
        tape = self._tapes.get(product_id)
        return tape.quote if tape else None

    def last_match(self, product_id: str) -> MatchMessage | None:
        trade = self.last_trade(product_id)
        if trade is None:
            return None
        return match_message(
            trade_id=trade.trade_id,
            maker_order_id=trade.maker_order_id,
            taker_order_id=trade.taker_order_id,
            maker_side=trade.maker_side,
            size=trade.size,
            price=trade.price,
            product_id=trade.product_id,
            sequence=trade.sequence,
            time=trade.time,
            last=True,
        )

    def page(
        self, product_id: str, *, limit: int, before: int | None, after: int | None
    ) -> list[Trade]:
        """A page of trades, newest first, the Coinbase cursor way.

        `after=X`: the newest `limit` trades older than X. `before=X`: the `limit` trades just
        newer than X (the page next to the cursor). Neither: the newest `limit` trades.
        """
        tape = self._tapes.get(product_id)
        if tape is None:
            return []
        ids = tape.trade_ids
        low = bisect.bisect_right(ids, before) if before is not None else 0
        high = bisect.bisect_left(ids, after) if after is not None else len(ids)
        if high <= low:
            return []
        if before is not None and after is None:
            chosen = tape.trades[low : min(high, low + limit)]
        else:
            chosen = tape.trades[max(low, high - limit) : high]
        chosen.reverse()
        return chosen
