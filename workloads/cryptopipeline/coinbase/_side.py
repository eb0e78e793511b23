"""Order sides. `ticker.side` is the taker's side; `match.side` and REST trades use the maker's."""

from __future__ import annotations

from typing import Literal

Side = Literal["buy", "sell"]


def opposite_side(side: Side) -> Side:
    """The other side of a trade: the maker's side given the taker's, and back."""
    return "sell" if side == "buy" else "buy"
