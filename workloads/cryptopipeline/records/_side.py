"""BUY or SELL: the one side type of trade signals, order events, orders, fills and positions.

`Action` (a signal's) and `OrderSide` (an order's) are this same class under the names the
records and older code use. The exchange feed's lowercase `buy` / `sell` (`coinbase.Side`) is
the wire spelling of a public trade's side, not an order's.
"""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
