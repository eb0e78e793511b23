"""Every indicator against TA-Lib (`import talib`), value by value, to 1e-9 relative.

Series: a random walk, a walk with flat runs, 100,000 points, and the real BTC-USD daily
closes read from ../shared/data/btc-daily at test time. The first valid index must match
TA-Lib's exactly (None here where TA-Lib answers NaN).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from cryptopipeline.indicators import Atr, BollingerBands, Ema, Macd, Rsi, Sma, Vwap

talib = pytest.importorskip("talib", reason="ta-lib is a dev dependency: pip install -e '.[dev]'")

REPO_ROOT = Path(__file__).resolve().parents[2]
BTC_DAILY = REPO_ROOT.parent / "shared" / "data" / "btc-daily" / "BTC-USD.csv"
REL = 1e-9

Ohlc = tuple[np.ndarray, np.ndarray, np.ndarray]


def _walk(n: int, seed: int, start: float = 100.0) -> Ohlc:
    rng = np.random.default_rng(seed)
    close = start * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    high = close * (1 + rng.random(n) * 0.01)
    low = close * (1 - rng.random(n) * 0.01)
    return high, low, close


def _flat_runs() -> Ohlc:
    high, low, close = _walk(3000, seed=11)
    close = np.round(close, 2)
    for start in range(100, 3000, 350):
        close[start : start + 60] = close[start]
        high[start : start + 60] = close[start]
        low[start : start + 60] = close[start]
    high = np.maximum(high, close)
    low = np.minimum(low, close)
    return high, low, close


def _btc_daily() -> Ohlc:
    if not BTC_DAILY.exists():
        pytest.skip(f"real BTC-USD daily series not found at {BTC_DAILY} (../shared/data)")
    with BTC_DAILY.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    return tuple(np.array([float(r[k]) for r in rows]) for k in ("High", "Low", "Close"))  # type: ignore[return-value]


SERIES: dict[str, Callable[[], Ohlc]] = {
    "random_walk": lambda: _walk(5000, seed=1),
    "flat_runs": _flat_runs,
    "100k_points": lambda: _walk(100_000, seed=2, start=20_000.0),
    "btc_usd_daily": _btc_daily,
}


def _assert_matches(
    name: str,
    mine: Sequence[float | None],
    reference: np.ndarray,
    price_scale: np.ndarray | None = None,
) -> None:
    """Equal to 1e-9 relative. For MACD (a difference of two price-level EMAs, which cancels)
    also accept a difference below 1e-12 of the price: TA-Lib's build fuses each EMA step
    into one FMA, which Python 3.11 cannot, so EMAs differ from TA-Lib's in the last bit."""
    assert len(mine) == len(reference)
    first_mine = next((i for i, v in enumerate(mine) if v is not None), None)
    valid = np.flatnonzero(~np.isnan(reference))
    first_ref = int(valid[0]) if len(valid) else None
    assert first_mine == first_ref, f"{name}: first valid index {first_mine} != TA-Lib {first_ref}"
    for i, (a, b) in enumerate(zip(mine, reference, strict=True)):
        if math.isnan(b):
            assert a is None, f"{name}[{i}] = {a}, TA-Lib has no value"
        else:
            assert a is not None, f"{name}[{i}] is None, TA-Lib has {b}"
            floor = 0.0 if price_scale is None else 1e-12 * abs(float(price_scale[i]))
            assert math.isclose(a, float(b), rel_tol=REL, abs_tol=floor), (
                f"{name}[{i}]: {a!r} != TA-Lib {b!r}"
            )


@pytest.fixture(params=list(SERIES), scope="module")
def ohlc(request: pytest.FixtureRequest) -> Ohlc:
    return SERIES[request.param]()


@pytest.mark.parametrize("period", [2, 20, 50])
def test_sma(ohlc: Ohlc, period: int) -> None:
    close = ohlc[2]
    sma = Sma(period)
    _assert_matches("SMA", [sma.update(x) for x in close.tolist()], talib.SMA(close, period))


@pytest.mark.parametrize("period", [2, 12, 26])
def test_ema(ohlc: Ohlc, period: int) -> None:
    close = ohlc[2]
    ema = Ema(period)
    _assert_matches("EMA", [ema.update(x) for x in close.tolist()], talib.EMA(close, period))


@pytest.mark.parametrize("period", [2, 14, 30])
def test_rsi(ohlc: Ohlc, period: int) -> None:
    close = ohlc[2]
    rsi = Rsi(period)
    _assert_matches("RSI", [rsi.update(x) for x in close.tolist()], talib.RSI(close, period))


@pytest.mark.parametrize("periods", [(12, 26, 9), (5, 35, 5), (3, 10, 16)])
def test_macd(ohlc: Ohlc, periods: tuple[int, int, int]) -> None:
    close = ohlc[2]
    macd = Macd(*periods)
    lines, signals, hists = [], [], []
    for x in close.tolist():
        line = macd.update(x)
        lines.append(line)
        signals.append(macd.signal if line is not None else None)
        hists.append(macd.hist if line is not None else None)
    ref_line, ref_signal, ref_hist = talib.MACD(close, *periods)
    _assert_matches("MACD", lines, ref_line, close)
    _assert_matches("MACD signal", signals, ref_signal, close)
    _assert_matches("MACD hist", hists, ref_hist, close)


@pytest.mark.parametrize(("period", "multiplier"), [(20, 2.0), (10, 1.0), (5, 2.5)])
def test_bollinger_bands(ohlc: Ohlc, period: int, multiplier: float) -> None:
    close = ohlc[2]
    bands = BollingerBands(period, multiplier)
    upper, middle, lower = [], [], []
    for x in close.tolist():
        mid = bands.update(x)
        middle.append(mid)
        upper.append(bands.upper if mid is not None else None)
        lower.append(bands.lower if mid is not None else None)
    ref_upper, ref_middle, ref_lower = talib.BBANDS(close, period, multiplier, multiplier, 0)
    _assert_matches("BB middle", middle, ref_middle)
    _assert_matches("BB upper", upper, ref_upper)
    _assert_matches("BB lower", lower, ref_lower)


@pytest.mark.parametrize("period", [1, 14, 30])
def test_atr(ohlc: Ohlc, period: int) -> None:
    high, low, close = ohlc
    atr = Atr(period)
    mine = [
        atr.update(h, lo, c)
        for h, lo, c in zip(high.tolist(), low.tolist(), close.tolist(), strict=True)
    ]
    _assert_matches("ATR", mine, talib.ATR(high, low, close, period))


def test_first_valid_indices_are_talibs() -> None:
    """The table in docs/signals.md: index of the first value for the default periods."""
    close = _walk(200, seed=3)[2]
    firsts = {
        "sma_20": talib.SMA(close, 20),
        "ema_12": talib.EMA(close, 12),
        "rsi_14": talib.RSI(close, 14),
        "macd_12_26_9": talib.MACD(close, 12, 26, 9)[0],
        "bb_20": talib.BBANDS(close, 20, 2, 2, 0)[1],
        "atr_14": talib.ATR(close + 1, close - 1, close, 14),
    }
    found = {k: int(np.flatnonzero(~np.isnan(v))[0]) for k, v in firsts.items()}
    assert found == {
        "sma_20": 19,
        "ema_12": 11,
        "rsi_14": 14,
        "macd_12_26_9": 33,
        "bb_20": 19,
        "atr_14": 14,
    }


def test_window_sums_do_not_drift_over_100k_points() -> None:
    """SMA and Bollinger on 100,000 points against exact rational arithmetic: < 1e-9 relative
    (measured ~1e-16; TA-Lib's own running sums are printed for comparison)."""
    close = _walk(100_000, seed=5, start=50_000.0)[2].tolist()
    period = 20
    sma, bands = Sma(period), BollingerBands(period, 2.0)
    mine_sma: list[float | None] = []
    mine_std: list[float | None] = []
    for x in close:
        mine_sma.append(sma.update(x))
        bands.update(x)
        mine_std.append(bands.stddev)
    worst_sma = worst_std = 0.0
    checked = [*range(period - 1, 2000), *range(2000, 100_000, 97), *range(99_000, 100_000)]
    for i in checked:
        window = [Fraction(v) for v in close[i - period + 1 : i + 1]]
        mean = sum(window, Fraction(0)) / period
        variance = sum(((v - mean) ** 2 for v in window), Fraction(0)) / period
        exact_std = math.sqrt(variance)
        got_sma, got_std = mine_sma[i], mine_std[i]
        assert got_sma is not None and got_std is not None
        worst_sma = max(worst_sma, abs(got_sma - float(mean)) / float(mean))
        worst_std = max(worst_std, abs(got_std - exact_std) / exact_std)
    ref = talib.SMA(np.array(close), period)
    talib_worst = max(
        abs(ref[i] - float(sum(map(Fraction, close[i - period + 1 : i + 1]), Fraction(0)) / period))
        / ref[i]
        for i in range(99_000, 100_000)
    )
    print(
        f"\nSMA drift {worst_sma:.2e}, stddev drift {worst_std:.2e}, TA-Lib SMA {talib_worst:.2e}"
    )
    assert worst_sma < 1e-9
    assert worst_std < 1e-9


def test_vwap_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(9)
    prices = (100 + np.cumsum(rng.normal(0, 1, 3000))).tolist()
    volumes = rng.random(3000).tolist()
    volumes[100:130] = [0.0] * 30
    for period in (1, 14, 50):
        vwap = Vwap(period)
        for i, (p, v) in enumerate(zip(prices, volumes, strict=True)):
            got = vwap.update(p, v)
            if i < period - 1:
                assert got is None
                continue
            window = range(i - period + 1, i + 1)
            volume = math.fsum(volumes[j] for j in window)
            if volume == 0:
                assert got is None
                continue
            expected = math.fsum(prices[j] * volumes[j] for j in window) / volume
            assert got is not None and math.isclose(got, expected, rel_tol=REL)
    cumulative = Vwap(0)
    for p, v in zip(prices, volumes, strict=True):
        got = cumulative.update(p, v)
    expected = math.fsum(p * v for p, v in zip(prices, volumes, strict=True)) / math.fsum(volumes)
    assert got is not None and math.isclose(got, expected, rel_tol=REL)


def test_snapshot_restore_mid_series_continues_identically() -> None:
    high, low, close = (a.tolist() for a in _walk(400, seed=4))

    def make() -> list[object]:
        return [Sma(20), Ema(12), Rsi(14), Macd(), BollingerBands(), Atr(14), Vwap(10)]

    def feed(indicators: list[object], i: int) -> list[object]:
        sma, ema, rsi, macd, bands, atr, vwap = indicators
        return [
            sma.update(close[i]),  # type: ignore[attr-defined]
            ema.update(close[i]),  # type: ignore[attr-defined]
            rsi.update(close[i]),  # type: ignore[attr-defined]
            macd.update(close[i]),  # type: ignore[attr-defined]
            macd.signal,  # type: ignore[attr-defined]
            bands.update(close[i]),  # type: ignore[attr-defined]
            bands.upper,  # type: ignore[attr-defined]
            atr.update(high[i], low[i], close[i]),  # type: ignore[attr-defined]
            vwap.update(close[i], high[i] - low[i]),  # type: ignore[attr-defined]
        ]

    for cut in (5, 30, 150):
        straight = make()
        interrupted = make()
        for i in range(cut):
            feed(straight, i)
            feed(interrupted, i)
        saved = json.loads(json.dumps([x.snapshot() for x in interrupted]))  # type: ignore[attr-defined]
        restored = [type(x).restore(s) for x, s in zip(interrupted, saved, strict=True)]  # type: ignore[attr-defined]
        for i in range(cut, len(close)):
            assert feed(restored, i) == feed(straight, i)
