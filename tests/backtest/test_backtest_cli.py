"""`cryptopipeline backtest`: reports on real data, one-line errors, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from cryptopipeline.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]
BTC_DAILY = REPO_ROOT.parent / "shared" / "data" / "btc-daily" / "BTC-USD.csv"
RECORDING = REPO_ROOT.parent / "shared" / "data" / "coinbase" / "COINBASE.ws.28.0.timed.jsonl"


def _csv(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "candles.csv"
    path.write_text("time,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    return path


def _rows(n: int) -> list[str]:
    return [f"{1_600_000_000 + 60 * i},1,1,1,{100 + (i % 7)},1" for i in range(n)]


@pytest.mark.skipif(not BTC_DAILY.exists(), reason="needs ../shared/data/btc-daily")
def test_btc_daily_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    code = main(["backtest", "--input", str(BTC_DAILY), "--strategy", "sma_crossover",
                 "--param", "fast=10", "--param", "slow=30", "--out", str(out)])  # fmt: skip
    assert code == 0
    report = orjson.loads((out / "report.json").read_bytes())
    assert report["config"]["intervals_s"] == [86_400]
    assert len(report["equity_curve"]) == report["metrics"]["candles"] > 2700
    trade = report["trades"][0]
    assert trade["time"].endswith("T00:00:00.000000Z") and len(trade["client_order_id"]) == 36
    assert {s["signal_id"] for s in report["signals"]} >= {t["signal_id"] for t in report["trades"]}
    assert (out / "chart.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "summary.txt").read_text() == capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temp left behind


@pytest.mark.skipif(not RECORDING.exists(), reason="needs ../shared/data/coinbase")
def test_recorded_coinbase_session(tmp_path: Path) -> None:
    out = tmp_path / "report"
    code = main(["backtest", "--input", str(RECORDING), "--strategy", "sma_crossover",
                 "--param", "fast=1", "--param", "slow=2", "--candle-seconds", "1",
                 "--grace-seconds", "0", "--slippage", "half-spread", "--no-chart",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    report = orjson.loads((out / "report.json").read_bytes())
    assert report["counts"]["ticks"] == 107  # the recording's ticker messages
    assert report["counts"]["ignored"] > 9000  # l2update, snapshot, subscriptions
    assert report["counts"]["candles"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "nope"], "invalid strategies.0.name"),
        (["--strategy", "sma_crossover", "--param", "fast=50"], "fast (50) must be below slow"),
        (["--strategy", "sma_crossover", "--param", "speed=5"], "unknown parameter(s) speed"),
        (["--strategy", "sma_crossover", "--param", "fast"], "--param 'fast': expected KEY=VALUE"),
        (["--strategy", "sma_crossover", "--fee-rate", "x"], "--fee-rate: 'x' is not a number"),
        ([], "no strategy"),
    ],
)
def test_bad_settings_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = tmp_path / "out"
    code = main(["backtest", "--input", str(_csv(tmp_path, _rows(5))), "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([*_rows(3), "1600000300,1,1,1,1,1"], "line 5: time '1600000300' is 180 s after"),
        ([*_rows(3), "1600000060,1,1,1,1,1"], "line 5: time '1600000060' is not after"),
        ([*_rows(2), "1600000120,1,1,1,abc,1"], "line 4: column 'close': 'abc' is not a number"),
        ([*_rows(2), "1600000120,1,1"], "line 4: 3 fields, the header has 6"),
        (["1" + "0" * 300 + ",1,1,1,1,1", *_rows(2)], "line 2: column 'time': '1000"),
        (["-99999999999,1,1,1,1,1", *_rows(2)], "line 2: column 'time': '-99999999999'"),
    ],
)
def test_bad_csv_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: list[str], message: str
) -> None:
    out = tmp_path / "out"
    code = main(["backtest", "--input", str(_csv(tmp_path, rows)), "--strategy",
                 "sma_crossover", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candles.csv"]


def test_unreadable_and_malformed_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    base = ["backtest", "--strategy", "sma_crossover", "--out", str(out)]
    assert main([*base, "--input", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"type":"heartbeat"}\n{oops\n')
    assert main([*base, "--input", str(feed)]) == 2
    assert "feed.jsonl line 2: not JSON" in capsys.readouterr().err
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main([*base, "--input", str(_csv(tmp_path, _rows(5)))]) == 2
    assert "exists and is not an empty directory" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_config_file_in_the_crd_shape(tmp_path: Path) -> None:
    manifest = REPO_ROOT / "k8s" / "examples" / "pipeline.yaml"
    out = tmp_path / "out"
    rows = [f"{1_600_000_000 + 60 * i},1,1,1,{100 + (i % 11) * (i % 3)},1" for i in range(80)]
    code = main(["backtest", "--input", str(_csv(tmp_path, rows)), "--config", str(manifest),
                 "--no-chart", "--out", str(out)])  # fmt: skip
    assert code == 0
    config = orjson.loads((out / "report.json").read_bytes())["config"]
    assert [s["name"] for s in config["strategies"]] == ["sma_crossover", "rsi_threshold"]
    assert config["strategies"][0]["parameters"] == {"fast": 10, "slow": 30}
    assert config["intervals_s"] == [60]
    assert config["risk"]["max_order_notional"] == "250"
    assert not (out / "chart.png").exists()


@pytest.mark.skipif(not BTC_DAILY.exists(), reason="needs ../shared/data/btc-daily")
def test_grid_is_ranked_and_deterministic(tmp_path: Path) -> None:
    documents = []
    for jobs in ("1", "2"):
        out = tmp_path / f"grid-{jobs}"
        code = main(["backtest", "--input", str(BTC_DAILY), "--strategy", "sma_crossover",
                     "--grid", "fast=5,10,20", "slow=20,50", "--rank-by", "total_return",
                     "--jobs", jobs, "--out", str(out)])  # fmt: skip
        assert code == 0
        documents.append(orjson.loads((out / "grid.json").read_bytes()))
        assert len((out / "grid.csv").read_text().splitlines()) == 1 + 6
    assert documents[0] == documents[1]
    runs = documents[0]["runs"]
    assert [r["rank"] for r in runs] == [1, 2, 3, 4, 5, 6]
    returns = [r["metrics"]["total_return"] for r in runs if "metrics" in r]
    assert returns == sorted(returns, reverse=True) and len(returns) == 5
    assert runs[-1]["parameters"] == {"fast": 20, "slow": 20} and "below slow" in runs[-1]["error"]


def test_bad_grid_and_source_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["backtest", "--strategy", "sma_crossover", "--out", str(tmp_path / "out")]
    csv_file = str(_csv(tmp_path, _rows(5)))
    assert main([*base, "--input", csv_file, "--grid", "fast"]) == 2
    assert "--grid 'fast': expected KEY=V1,V2" in capsys.readouterr().err
    assert main([*base, "--topic", "btc_usd"]) == 2
    assert "--topic needs --bootstrap-servers, --from and --to" in capsys.readouterr().err
    assert main([*base, "--topic", "t", "--bootstrap-servers", "127.0.0.1:1", "--from", "x",
                 "--to", "2026-01-01T00:00:00Z"]) == 2  # fmt: skip
    assert "--from 'x' is not an RFC 3339 time" in capsys.readouterr().err


def test_progress_bar_appears_after_one_second() -> None:
    import io

    from cryptopipeline.backtest._inputs import Progress
    from cryptopipeline.backtest.cli import ProgressBar

    now = [100.0]
    stream = io.StringIO()
    bar = ProgressBar(Progress(total=200), stream, "always", clock=lambda: now[0])
    bar.progress.done = 50
    now[0] = 100.5
    bar.tick()
    assert stream.getvalue() == ""  # a run under a second shows nothing
    now[0] = 101.5
    bar.tick()
    assert "25.0%" in stream.getvalue() and "1.5s" in stream.getvalue()
    bar.progress.done = 200
    now[0] = 102.0
    bar.close()
    assert stream.getvalue().endswith("100.0%     2.0s\n")
    quiet = io.StringIO()
    auto = ProgressBar(Progress(total=1), quiet, "auto", clock=lambda: now[0])
    now[0] = 200.0
    auto.tick()
    auto.close()
    assert quiet.getvalue() == ""  # auto: not a terminal


async def test_simulator_ground_truth(tmp_path: Path) -> None:
    import asyncio
    from datetime import UTC, datetime

    from cryptopipeline.sim import SimConfig, SimServer

    truth = tmp_path / "truth.jsonl"
    config = SimConfig(port=0, speed=0, seed=7, max_trades=2000, products=("BTC-USD",),
                       start_time=datetime(2026, 1, 1, tzinfo=UTC), ground_truth=truth)  # fmt: skip
    async with SimServer(config) as sim:
        await sim.market_done.wait()
    out = tmp_path / "out"
    code = await asyncio.to_thread(main, [
        "backtest", "--input", str(truth), "--strategy", "sma_crossover", "--param", "fast=2",
        "--param", "slow=5", "--candle-seconds", "5", "--no-chart", "--out", str(out)])  # fmt: skip
    assert code == 0
    report = orjson.loads((out / "report.json").read_bytes())
    assert report["counts"]["ticks"] == 2000  # every ground-truth trade became a tick
    assert report["counts"]["rejected_input"] == {} and report["counts"]["candles"] > 10
