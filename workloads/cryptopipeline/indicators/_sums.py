"""The compensated (Neumaier) running sum every windowed indicator keeps its totals with."""

from __future__ import annotations


def neumaier_add(total: float, comp: float, x: float) -> tuple[float, float]:
    """`total + x` and the updated compensation: `total + comp` stays the exact sum to within
    one rounding, however many values come and go (Neumaier's improvement of Kahan)."""
    t = total + x
    comp += (total - t) + x if abs(total) >= abs(x) else (x - t) + total
    return t, comp
