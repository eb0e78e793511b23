"""The compensated (Neumaier) window sum every windowed indicator keeps its totals with."""

from __future__ import annotations


def slide(total: float, comp: float, x: float, old: float) -> tuple[float, float]:
    """Add `x` to a compensated sum and take out `old`, the value leaving the window (0.0
    while the window fills, or for a sum without a window: taking out 0.0 changes nothing).

    Two Neumaier steps (Kahan's summation, safe when the addend is the larger): `total +
    comp` stays the exact window sum to within one rounding, however many values come and
    go. The one place the sum is written: every windowed indicator calls it once per sum.
    `abs()` is written out as conditional expressions: on this hot path the builtin calls
    cost a sixth of the step (same results, NaN and -0.0 included).
    """
    t = total + x
    if (total if total >= 0.0 else -total) >= (x if x >= 0.0 else -x):
        comp += (total - t) + x
    else:
        comp += (x - t) + total
    total = t - old
    if (t if t >= 0.0 else -t) >= (old if old >= 0.0 else -old):
        comp += (t - total) - old
    else:
        comp += (-old - total) + t
    return total, comp
