"""The README's run command: the whole local pipeline up, candles, signals and paper orders
flowing within three minutes, `cryptopipeline status` reporting it; Ctrl-C stops it all."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from cryptopipeline.localkafka._broker import _port_free, free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "observability"))
from obs_support import used_metric_names

pytestmark = pytest.mark.kafka


async def _prometheus_scrapes_the_pipeline(
    home: Path, ingestor: int, signaler: int, bot: int
) -> None:
    """A real Prometheus scrapes the running pipeline: every target is up, the series the
    overview dashboard is built on have data and carry the shared labels, and every metric
    any dashboard or alert uses is one the running programs expose (no misspelt name)."""
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        return  # tests/observability says why it is missing; the pipeline checks above stand
    targets = {"ingestor": ingestor, "signaler": signaler, "bot": bot}
    exposed: set[str] = set()
    async with httpx.AsyncClient() as client:
        for port in targets.values():
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            exposed |= {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    used = {m for m in used_metric_names() if not m.startswith("cryptopipeline_operator")}
    exposed |= {
        f"{name}_{suffix}" for name in exposed for suffix in ("total", "bucket", "sum", "count")
    }
    assert used <= exposed, f"used but not exposed by the running pipeline: {used - exposed}"

    config = {"global": {"scrape_interval": "1s"}, "scrape_configs": [
        {"job_name": name, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
        for name, port in targets.items()]}  # fmt: skip
    (home / "prometheus.yml").write_text(json.dumps(config))
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        prometheus, f"--config.file={home / 'prometheus.yml'}",
        f"--storage.tsdb.path={home / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    queries = {
        "up": "up == 1",
        "ingest rate": "sum(rate(cryptopipeline_ingestor_records_published_total[30s])) > 0",
        "candles": "cryptopipeline_signaler_candles_closed_total > 0",
        "signals": "cryptopipeline_signaler_signals_total > 0",
        "orders": "cryptopipeline_bot_order_events_total > 0",
        "equity": 'cryptopipeline_bot_equity{pipeline="local", workload="bot"}',
    }
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            async with asyncio.timeout(60):
                while True:
                    results = {}
                    for what, expr in queries.items():
                        try:
                            answer = await client.get("/api/v1/query", params={"query": expr})
                            results[what] = answer.json()["data"]["result"]
                        except (httpx.HTTPError, KeyError, ValueError):
                            results[what] = []
                    if len(results["up"]) == 3 and all(results.values()):
                        break
                    await asyncio.sleep(1)
    finally:
        process.terminate()
        await process.wait()


async def _first_record(bootstrap: str, topic: str) -> bytes:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None,
        isolation_level="read_committed",
    )  # fmt: skip
    await consumer.start()
    try:
        record = await consumer.getone()
    finally:
        await consumer.stop()
    return bytes(record.value or b"")


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

        # within three minutes: candles close, signals and paper orders flow
        bootstrap = f"127.0.0.1:{kafka_port}"
        async with asyncio.timeout(180):
            signal_record = await _first_record(bootstrap, "btc_usd_trade_signals")
            order_record = await _first_record(bootstrap, "btc_usd_orders")
            async with httpx.AsyncClient() as client:
                while True:
                    portfolio = (
                        await client.get(f"http://127.0.0.1:{bot_port}/api/portfolio")
                    ).json()
                    if portfolio["cash"] != portfolio["starting_cash"]:
                        break  # a paper order filled
                    await asyncio.sleep(0.5)
                metrics = (await client.get(f"http://127.0.0.1:{signaler_port}/metrics")).text
        assert json.loads(signal_record)["action"] in ("BUY", "SELL")
        assert json.loads(order_record)["client_order_id"]
        assert "cryptopipeline_signaler_candles_closed_total{" in metrics

        await _prometheus_scrapes_the_pipeline(tmp_path, ops_port, signaler_port, bot_port)

        status = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cryptopipeline.cli", "status", "--interval", "0.5",
            "--ingestor-port", str(ops_port), "--signaler-port", str(signaler_port),
            "--bot-port", str(bot_port), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        report, status_log = (out.decode() for out in await status.communicate())
        assert status.returncode == 0, report
        assert status_log == "", "status must print only its table by default:\n" + status_log
        assert report.count("ready") == 3 and "signals/s" in report

        tail = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cryptopipeline.cli", "tail", "btc_usd_trade_signals",
            "--from-beginning", "--max", "1", "--bootstrap-servers", bootstrap,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(60):
            printed = (await tail.communicate())[0].decode()
        line = json.loads(printed.splitlines()[0])
        assert line["value"]["signal_id"] and line["key"] in ("BTC-USD", "ETH-USD")

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
    errors = [line for line in [*log, *rest.splitlines()] if " ERROR " in line]
    assert not errors, "a normal start and stop logs no ERROR line:\n" + "\n".join(errors)
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


def _free_pair() -> int:
    """A free port whose successor (Kafka's controller port) is free too."""
    while True:
        port = free_port()
        if port < 65535 and _port_free("127.0.0.1", port + 1):
            return port


async def test_a_taken_port_fails_fast_naming_the_flag(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cryptopipeline.cli", "run", "--home", str(tmp_path),
            "--kafka-port", str(_free_pair()), "--signaler-ops-port", str(port),
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
    assert process.returncode == 1
    assert f"port 127.0.0.1:{port} for signaler (--signaler-ops-port) is in use" in stderr.decode()
    assert not (tmp_path / "kafka").exists()  # nothing was started
