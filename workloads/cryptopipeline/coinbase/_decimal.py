"""Decimal strings as Coinbase writes them.

Prices and sizes are plain decimals without trailing zeros (`"22386.3"`, `"0.5"`, `"985"`);
24h and 30d volumes carry exactly eight decimals (`"94381.28000000"`).
"""

from __future__ import annotations

from decimal import Decimal

_EIGHT = Decimal("0.00000001")


def format_price(value: Decimal) -> str:
    """A price as Coinbase sends it: fixed-point, trailing zeros trimmed, never an exponent."""
    text = str(value)  # fastest; falls back to fixed-point when str() uses an exponent
    if "E" in text:
        text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


format_size = format_price
"""Sizes follow the same rule as prices."""


def format_volume(value: Decimal) -> str:
    """A 24h or 30d volume: always eight decimals."""
    return format(value.quantize(_EIGHT), "f")
