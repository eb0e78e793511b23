"""The `coinbase-sim` program: flags, env fallbacks, startup line, clean exit on signals."""

from __future__ import annotations

import asyncio
import re
import signal
import ssl
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import connect

from cryptopipeline.sim.cli import config_from_args, main

SUBSCRIBE = '{"type":"subscribe","product_ids":["BTC-USD"],"channels":["ticker"]}'


def test_flags_and_env_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COINBASE_SIM_PRODUCTS", "SOL-USD,DOGE-USD")
    monkeypatch.setenv("COINBASE_SIM_SEED", "99")
    monkeypatch.setenv("COINBASE_SIM_SPEED", "max")
    config, level = config_from_args(
        ["--port", "0", "--seed", "5", "--drop-rate", "0.1", "--fault-connections", "0,2",
         "--start-time", "2026-01-01T00:00:00Z", "--log-level", "debug"]
    )  # fmt: skip
    assert config.products == ("SOL-USD", "DOGE-USD")
    assert config.seed == 5  # the flag wins over the env var
    assert config.speed == 0 and not config.paced
    assert config.port == 0 and level == "debug"
    assert config.faults.drop_rate == 0.1 and config.faults.connections == (0, 2)
    assert config.start_time == datetime(2026, 1, 1, tzinfo=UTC)
    monkeypatch.delenv("COINBASE_SIM_PRODUCTS")
    monkeypatch.delenv("COINBASE_SIM_SPEED")
    defaults, _ = config_from_args([])
    assert (defaults.host, defaults.port, defaults.products) == (
        "127.0.0.1",
        8765,
        ("BTC-USD", "ETH-USD"),
    )
    assert defaults.rate == 5 and defaults.speed == 1


def test_fault_flags_override_the_env_plan_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COINBASE_SIM_FAULTS", '{"drop_rate": 0.1, "connections": [1]}')
    config, _ = config_from_args([])
    assert config.faults.drop_rate == 0.1 and config.faults.connections == (1,)
    config, _ = config_from_args(["--duplicate-rate", "0.5", "--fault-connections", "0"])
    assert config.faults.drop_rate == 0.1 and config.faults.duplicate_rate == 0.5
    assert config.faults.connections == (0,)


def test_bad_configuration_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rate", "-1"]) == 2
    assert "rate" in capsys.readouterr().err
    assert main(["--drop-rate", "3"]) == 2
    assert main(["--products", "btc"]) == 2
    assert main(["--rates", "SOL-USD=5"]) == 2  # not one of the products
    assert "SOL-USD is not one of the products" in capsys.readouterr().err
    assert main(["--rates", "BTC-USD=0"]) == 2
    assert main(["--rates", "BTC-USD"]) == 2


def test_per_product_rates_from_flag_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    config, _ = config_from_args(["--products", "P001-USD,P002-USD,P003-USD", "--rate", "0.2",
                                  "--rates", "P001-USD=100, P002-USD=2.5"])  # fmt: skip
    assert config.rates == {"P001-USD": 100.0, "P002-USD": 2.5}
    assert [config.rate_of(p) for p in config.products] == [100.0, 2.5, 0.2]
    monkeypatch.setenv("COINBASE_SIM_RATES", "ETH-USD=40")
    assert config_from_args([])[0].rate_of("ETH-USD") == 40


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
async def test_program_logs_urls_and_stops_cleanly(stop: signal.Signals, tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cryptopipeline.sim.cli", "--port", "0", "--speed", "max",
        "--max-trades", "25", "--ground-truth", str(truth), "--await-subscribers", "1",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        async with asyncio.timeout(20):
            line = (await process.stderr.readline()).decode()
            while "coinbase-sim serving" not in line:
                line = (await process.stderr.readline()).decode()
            found = re.search(r"feed (ws://\S+) rest (http://\S+)", line)
            assert found, line
            async with connect(found.group(1)) as ws:
                await ws.send(
                    '{"type":"subscribe","product_ids":["BTC-USD"],"channels":["ticker"]}'
                )
                assert orjson.loads(await ws.recv())["type"] == "subscriptions"
                while orjson.loads(await ws.recv())["type"] != "ticker":
                    pass
            while "market finished" not in line:
                line = (await process.stderr.readline()).decode()
            process.send_signal(stop)
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    lines = truth.read_bytes().splitlines()
    assert len(lines) == 25
    assert set(orjson.loads(lines[0])) >= {
        "product_id",
        "trade_id",
        "time",
        "price",
        "size",
        "side",
    }


async def test_tls_prints_the_ca_and_serves_wss(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cryptopipeline.sim.cli", "--port", "0", "--tls",
        "--tls-dir", str(tmp_path), "--rate", "50",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    try:
        async with asyncio.timeout(20):
            printed = (await process.stdout.readline()).decode()
            assert printed == f"coinbase-sim CA: {tmp_path / 'ca.pem'}\n"
            line = (await process.stderr.readline()).decode()
            while "coinbase-sim serving" not in line:
                line = (await process.stderr.readline()).decode()
            found = re.search(r"advanced-trade (wss://\S+)", line)
            assert found, line
            context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
            async with connect(found.group(1), ssl=context) as ws:
                await ws.send(
                    '{"type":"subscribe","product_ids":["BTC-USD"],"channel":"heartbeats"}'
                )
                assert orjson.loads(await ws.recv())["channel"] == "subscriptions"
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert (tmp_path / "ca.pem").exists()  # --tls-dir keeps what it made
