"""The README's run command: Kafka, the simulator and the ingestor up; Ctrl-C stops all."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from cryptopipeline.localkafka._broker import free_port

pytestmark = pytest.mark.kafka


async def _ready(url: str) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


async def test_run_brings_the_pipeline_up_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    kafka_port, sim_port, ops_port, signaler_port, bot_port = (free_port() for _ in range(5))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cryptopipeline.cli", "run", "--home", str(tmp_path),
        "--kafka-port", str(kafka_port), "--sim-port", str(sim_port),
        "--ingestor-ops-port", str(ops_port), "--signaler-ops-port", str(signaler_port),
        "--bot-ops-port", str(bot_port),
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stderr is not None
    log: list[str] = []
    try:
        async with asyncio.timeout(120):
            while not any("local pipeline running" in line for line in log):
                line = (await process.stderr.readline()).decode()
                assert line, "run exited early:\n" + "".join(log)
                log.append(line)
            for port in (ops_port, signaler_port, bot_port):
                while not await _ready(f"http://127.0.0.1:{port}/readyz"):  # noqa: ASYNC110
                    await asyncio.sleep(0.2)  # readiness is polled, as the kubelet does
        assert await _ready(f"http://127.0.0.1:{sim_port}/products")
        kafka_pid = int((tmp_path / "kafka" / "kafka.pid").read_text())

        process.send_signal(signal.SIGINT)  # Ctrl-C
        async with asyncio.timeout(90):
            rest = (await process.stderr.read()).decode()
            assert await process.wait() == 0, rest
    finally:
        if process.returncode is None:
            process.kill()  # its children follow it (parent-death signal)
    assert not await asyncio.to_thread(Path(f"/proc/{kafka_pid}").exists)
    for program in ("kafka", "coinbase-sim", "ingestor", "signaler", "bot"):
        assert f"stopped program={program}" in rest
    assert not await _ready(f"http://127.0.0.1:{sim_port}/products")


async def test_killing_the_supervisor_takes_its_programs_with_it(tmp_path: Path) -> None:
    sim_port, ops_port, signaler_port, bot_port = (free_port() for _ in range(4))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cryptopipeline.cli", "run", "--home", str(tmp_path),
        "--kafka-port", str(free_port()), "--sim-port", str(sim_port),
        "--ingestor-ops-port", str(ops_port), "--signaler-ops-port", str(signaler_port),
        "--bot-ops-port", str(bot_port),
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stderr is not None
    async with asyncio.timeout(120):
        while b"local pipeline running" not in await process.stderr.readline():
            pass
    kafka_pid = int((tmp_path / "kafka" / "kafka.pid").read_text())
    process.kill()  # SIGKILL: no chance to stop anything in order
    await process.wait()
    async with asyncio.timeout(30):
        while await _ready(f"http://127.0.0.1:{sim_port}/products"):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    # Kafka runs detached by design (`cryptopipeline kafka down` stops it); tidy up here
    os.kill(kafka_pid, signal.SIGTERM)
