"""`cryptopipeline indicators`: JSON lines matching TA-Lib; bad input is exit 2 naming the line."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptopipeline.cli import main

talib = pytest.importorskip("talib", reason="ta-lib is a dev dependency")

HEADER = "time,open,high,low,close,volume\n"


def _csv(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "candles.csv"
    path.write_text(header + "".join(r + "\n" for r in rows))
    return path


def _walk_rows(n: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(21)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    high, low = close * 1.01, close * 0.99
    rows = [
        f"{1_600_000_000 + 60 * i},{c},{h},{lo},{c},{i}"
        for i, (c, h, lo) in enumerate(zip(close, high, low, strict=True))
    ]
    return rows, high, low, close


def test_default_keys_and_values_match_talib(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows, high, low, close = _walk_rows(120)
    assert main(["indicators", "--input", str(_csv(tmp_path, rows))]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 120
    assert list(lines[0]) == [
        "time",
        "sma_20",
        "ema_12",
        "ema_26",
        "rsi_14",
        "macd",
        "macd_signal",
        "macd_hist",
        "bb_upper",
        "bb_middle",
        "bb_lower",
        "atr_14",
    ]
    assert lines[0]["time"] == 1_600_000_000
    assert all(v is None for k, v in lines[0].items() if k != "time")
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(close, 20, 2, 2, 0)
    reference = {
        "sma_20": talib.SMA(close, 20),
        "ema_12": talib.EMA(close, 12),
        "ema_26": talib.EMA(close, 26),
        "rsi_14": talib.RSI(close, 14),
        "macd": macd,
        "macd_signal": signal,
        "macd_hist": hist,
        "bb_upper": upper,
        "bb_middle": middle,
        "bb_lower": lower,
        "atr_14": talib.ATR(high, low, close, 14),
    }
    for key, values in reference.items():
        for i, expected in enumerate(values):
            got = lines[i][key]
            if math.isnan(expected):
                assert got is None, (key, i)
            else:
                assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12 * close[i]), (key, i)


def test_flags_change_periods_and_key_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows, _, _, close = _walk_rows(60)
    argv = [
        "indicators",
        "--input",
        str(_csv(tmp_path, rows)),
        "--sma",
        "5",
        "--ema-fast",
        "3",
        "--ema-slow",
        "8",
        "--rsi",
        "7",
        "--macd",
        "3,8,4",
        "--bb",
        "10,1.5",
        "--atr",
        "5",
    ]
    assert main(argv) == 0
    last = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert {"sma_5", "ema_3", "ema_8", "rsi_7", "atr_5"} <= set(last)
    assert math.isclose(last["sma_5"], talib.SMA(close, 5)[-1], rel_tol=1e-9)
    assert math.isclose(last["bb_upper"], talib.BBANDS(close, 10, 1.5, 1.5, 0)[0][-1], rel_tol=1e-9)
    assert math.isclose(last["macd_signal"], talib.MACD(close, 3, 8, 4)[1][-1], rel_tol=1e-9)


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        ("time,open,high,low,volume\n", ["1,1,1,1,1"], "line 1: missing column(s) close"),
        (HEADER, ["1,1,1,1,1,1", "2,1,1,1,abc,1"], "line 3: column 'close': 'abc' is not a number"),
        (HEADER, ["1,1,1,1,1,1", "2,1,1,1,nan,1"], "line 3: column 'close'"),
        (HEADER, ["5,1,1,1,1,1", "4,1,1,1,1,1"], "line 3: time '4' goes backwards"),
        (HEADER, ["2024-01-02,1,1,1,1,1", "2024-01-01,1,1,1,1,1"], "line 3: time"),
        (HEADER, ["1,1,1,1,1"], "line 2: 5 fields"),
        (HEADER, ["yesterday,1,1,1,1,1"], "line 2: column 'time'"),
        (HEADER, ["1,1,1,1,1,1", "2,1,1,2,1,1"], "line 3: column 'high': '1' is below low '2'"),
        (HEADER, ["1,-1,1,1,1,1"], "line 2: column 'open': '-1' must be above 0"),
        (HEADER, ["1,1,1,1,0,1"], "line 2: column 'close': '0' must be above 0"),
        (HEADER, ["1,1,-2,-3,1,1"], "line 2: column 'high': '-2' must be above 0"),
        (HEADER, ["1,1,1,1,1,-0.5"], "line 2: column 'volume': '-0.5' must not be negative"),
        (HEADER, ["1,1,2,1,3,1"], "line 2: column 'close': '3' is outside low '1' .. high '2'"),
        (HEADER, ["1,0.5,2,1,1,1"], "line 2: column 'open': '0.5' is outside low"),
    ],
)
def test_bad_input_is_exit_2_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], header: str, rows: list[str], message: str
) -> None:
    assert main(["indicators", "--input", str(_csv(tmp_path, rows, header))]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_missing_file_and_equal_ema_periods(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["indicators", "--input", str(tmp_path / "nope.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err
    path = _csv(tmp_path, ["1,1,1,1,1,1"])
    assert main(["indicators", "--input", str(path), "--ema-fast", "9", "--ema-slow", "9"]) == 2


def test_the_installed_command(tmp_path: Path) -> None:
    rows, *_ = _walk_rows(3)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cryptopipeline.cli",
            "indicators",
            "--input",
            str(_csv(tmp_path, rows)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 3
    bad = _csv(tmp_path, ["1,1,1,1,x,1"])
    done = subprocess.run(
        [sys.executable, "-m", "cryptopipeline.cli", "indicators", "--input", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "line 2" in done.stderr and "Traceback" not in done.stderr


# ---- property test: forged CSV rows ----------------------------------------------------------

_FORGED_CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**400), max_value=10**400).map(str),
    st.sampled_from(["", " ", "nan", "NaN", "sNaN", "inf", "-inf", "1e999", "-0", "0", "1_0",
                     "0x1p3", '"1,2"', "2024-01-01T00:00:00Z", "9999-12-31", "\u00a01"]),
    st.text(max_size=30),
    st.text(alphabet="9", min_size=400, max_size=5000),
)  # fmt: skip


def _run_in_process(path: Path) -> tuple[int, bytes, str]:
    out, err = io.BytesIO(), io.StringIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8")
    with mock.patch.object(sys, "stdout", stdout), mock.patch.object(sys, "stderr", err):
        code = main(["indicators", "--input", str(path)])
        stdout.flush()
    return code, out.getvalue(), err.getvalue()


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    rows=st.lists(st.lists(_FORGED_CELLS, min_size=5, max_size=7), min_size=1, max_size=6),
    good_first=st.booleans(),
)
def test_property_forged_csv_is_json_or_one_line_naming_the_line(
    tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]], good_first: bool
) -> None:
    lines = [",".join(r) for r in rows]
    if good_first:
        lines.insert(0, "0,1,1,1,1,1")
    path = tmp_path_factory.mktemp("csv") / "forged.csv"
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    code, out, err = _run_in_process(path)
    written = [json.loads(line) for line in out.decode().splitlines()]
    for record in written:  # whatever was accepted is finite, candle rules held
        assert all(v is None or isinstance(v, str | int) or math.isfinite(v)
                   for v in record.values())  # fmt: skip
    if code == 0:
        assert not err
        return
    assert code == 2 and "Traceback" not in err
    message = err.strip()
    assert "\n" not in message and message.startswith("cryptopipeline indicators: ")
    assert " line " in message or "malformed CSV" in message or "not UTF-8" in message
