"""The products the simulator lists: increments and the synthetic model's starting point."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class ProductSpec:
    """One tradable product and how its synthetic market starts."""

    product_id: str
    quote_increment: Decimal
    base_increment: Decimal
    start_price: Decimal
    median_size: float
    """Median trade size in base units (sizes are log-normal around it)."""
    volume_24h: Decimal
    volume_30d: Decimal


KNOWN_PRODUCTS: dict[str, ProductSpec] = {
    spec.product_id: spec
    for spec in (
        ProductSpec(
            "BTC-USD",
            Decimal("0.01"),
            Decimal("0.00000001"),
            Decimal("60000.00"),
            0.005,
            Decimal("9500"),
            Decimal("540000"),
        ),
        ProductSpec(
            "ETH-USD",
            Decimal("0.01"),
            Decimal("0.00000001"),
            Decimal("3000.00"),
            0.08,
            Decimal("120000"),
            Decimal("3600000"),
        ),
        ProductSpec(
            "SOL-USD",
            Decimal("0.01"),
            Decimal("0.001"),
            Decimal("150.00"),
            1.5,
            Decimal("900000"),
            Decimal("27000000"),
        ),
        ProductSpec(
            "ETH-BTC",
            Decimal("0.00001"),
            Decimal("0.00000001"),
            Decimal("0.05000"),
            0.1,
            Decimal("4000"),
            Decimal("120000"),
        ),
        ProductSpec(
            "DOGE-USD",
            Decimal("0.00001"),
            Decimal("0.1"),
            Decimal("0.15000"),
            800.0,
            Decimal("300000000"),
            Decimal("9000000000"),
        ),
    )
}


def product_spec(product_id: str) -> ProductSpec:
    """The spec of a product; unknown `BASE-QUOTE` ids get a generic spec (price 100)."""
    known = KNOWN_PRODUCTS.get(product_id)
    if known is not None:
        return known
    base, sep, quote = product_id.partition("-")
    if not (sep and base.isalnum() and quote.isalnum() and base.isupper() and quote.isupper()):
        raise ValueError(f"product id must look like BASE-QUOTE (e.g. BTC-USD): {product_id!r}")
    return ProductSpec(
        product_id,
        Decimal("0.01"),
        Decimal("0.00000001"),
        Decimal("100.00"),
        1.0,
        Decimal("100000"),
        Decimal("3000000"),
    )
