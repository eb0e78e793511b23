"""The number a trader feels: the trade that closes a candle → the signal in the signal topic →
the paper order acknowledged in the order log, across 10 products at 1,000 ticks/s.

Real processes, as `make run` starts them: coinbase-sim (10 products x 100 trades/s, real
time), the ingestor (two sockets), the signaler (1-second candles, no grace, so the first
trade at or after a window's end closes it) and the bot (paper), on the real Kafka of the
tests. After a minute of trading the benchmark reads the three topics back:

- a candle's closing trade is the product's first trade in the raw topic dated at or after
  the window's end; its exchange time is the simulator's send time (at speed 1 the simulator
  publishes a trade when its wall clock reaches the trade's time, never before), so the
  figure errs, if at all, on the long side;
- the acknowledgement is the bot's first `filled`/`accepted` event for the order, stamped
  with the bot's wall clock (one machine, one clock).

In the same run: the signaler's own batch read → commit histogram (scraped from its
/metrics), and the floor under it — one-record Kafka transactions on this broker, begin to
commit. Asserted: correctness only (orders were acknowledged and each answers a signal).
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from cryptopipeline.coinbase._time import parse_time, to_micros
from cryptopipeline.core import KafkaSettings, TopicSpec, ensure_topics
from cryptopipeline.core.kafka import read_to_end
from cryptopipeline.localkafka._broker import free_port

pytestmark = pytest.mark.benchmark

PRODUCTS = [f"{c}-USD" for c in ("BTC", "ETH", "SOL", "ADA", "XRP", "DOGE", "LTC", "DOT",
                                  "LINK", "AVAX")]  # fmt: skip
RATE_PER_PRODUCT = 100  # 10 products x 100 = 1,000 ticks/s
TRADING_S = 60
STRATEGIES = [
    {"name": "sma_crossover", "parameters": {"fast": 3, "slow": 8}},
    {"name": "rsi_threshold", "parameters": {"period": 5, "oversold": 35, "overbought": 65}},
]


def _micros(text: str) -> int:
    return to_micros(parse_time(text))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _spawn(argv: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *argv, env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def _ready(url: str, within: float = 120) -> None:
    async with httpx.AsyncClient(timeout=2) as client, asyncio.timeout(within):
        while True:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)  # polled, as the kubelet does: no event to await


async def _read_all(bootstrap: str, topic: str) -> list[Any]:
    records = await read_to_end(bootstrap, topic, "bench")
    return [orjson.loads(r.value) for r in records if r.value]


async def _transaction_floor(bootstrap: str, topic: str, rounds: int = 200) -> list[float]:
    """Begin → commit of a one-record transaction, `rounds` times (ms)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=f"floor-{uuid.uuid4().hex[:8]}",
        enable_idempotence=True, acks="all", linger_ms=0, retry_backoff_ms=5,
    )  # fmt: skip
    await producer.start()
    took: list[float] = []
    try:
        for i in range(rounds):
            started = time.perf_counter()
            async with producer.transaction():
                await producer.send(topic, value=b"x", key=str(i % 3).encode())
            took.append((time.perf_counter() - started) * 1000)
    finally:
        await producer.stop()
    return took


def _histogram_quantile(metrics: str, name: str, q: float) -> tuple[float, int]:
    """Upper bound of the bucket holding quantile q, and the count, from Prometheus text."""
    buckets: list[tuple[float, float]] = []
    for line in metrics.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0.0
    for bound, count in buckets:
        if total and count >= q * total:
            return bound * 1000, int(total)
    return float("nan"), int(total)


def _latencies(raw: Iterable[Any], signals: Iterable[Any], orders: Iterable[Any]) -> list[float]:
    trades: dict[str, list[int]] = defaultdict(list)
    for record in raw:
        if record.get("type") == "ticker":
            trades[record["product_id"]].append(_micros(record["time"]))
    for times in trades.values():
        times.sort()
    window_end = {s["signal_id"]: (s["product_id"], _micros(s["window"]["end"])) for s in signals}
    acked: dict[str, tuple[str, int]] = {}
    for event in orders:
        if event["event"] in ("filled", "accepted") and event["client_order_id"] not in acked:
            acked[event["client_order_id"]] = (event["signal_id"], _micros(event["time"]))
    out: list[float] = []
    for signal_id, ack_us in acked.values():
        product, end_us = window_end[signal_id]
        closing = next((t for t in trades[product] if t >= end_us), None)
        if closing is not None:
            out.append((ack_us - closing) / 1000)
    return out


@pytest.mark.timeout(900)
def test_closing_trade_to_paper_order_acknowledged(benchmark: Any, kafka_bootstrap: str) -> None:
    result = benchmark.pedantic(
        lambda: asyncio.run(_measure(kafka_bootstrap)), rounds=1, iterations=1
    )
    benchmark.extra_info.update(result)
    assert result["orders_acknowledged"] > 0


async def _measure(bootstrap: str) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    topics = {"raw": f"lt_raw_{run}", "signals": f"lt_sig_{run}", "orders": f"lt_ord_{run}"}
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    await ensure_topics(kafka, [TopicSpec(name=t) for t in (*topics.values(), f"lt_tx_{run}")])
    common = {
        "CRYPTOPIPELINE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "CRYPTOPIPELINE_TOPICS__RAW": topics["raw"],
        "CRYPTOPIPELINE_TOPICS__DEAD_LETTER": f"lt_dlq_{run}",
        "CRYPTOPIPELINE_TOPICS__TRADE_SIGNALS": topics["signals"],
        "CRYPTOPIPELINE_TOPICS__ORDERS": topics["orders"],
        "CRYPTOPIPELINE_OPS__HOST": "127.0.0.1",
        "CRYPTOPIPELINE_LOG_FORMAT": "json",
        "CRYPTOPIPELINE_LOG_LEVEL": "WARNING",
    }
    sim_port, ports = free_port(), {w: free_port() for w in ("ingestor", "signaler", "bot")}
    products = ",".join(PRODUCTS)
    processes: list[asyncio.subprocess.Process] = []
    try:
        processes.append(await _spawn(
            [sys.executable, "-m", "cryptopipeline.sim.cli", "--port", str(sim_port),
             "--products", products, "--rate", str(RATE_PER_PRODUCT), "--speed", "1",
             "--log-level", "WARNING"], {},
        ))  # fmt: skip
        await _ready(f"http://127.0.0.1:{sim_port}/products")
        processes.append(await _spawn([sys.executable, "-m", "cryptopipeline.bot.cli"], {
            **common, "CRYPTOPIPELINE_OPS__PORT": str(ports["bot"]),
            "CRYPTOPIPELINE_BROKER__MODE": "paper", "CRYPTOPIPELINE_TRADING__PRODUCTS": products,
            "CRYPTOPIPELINE_CONSUMER_GROUP": f"lt_bot_{run}",
            "CRYPTOPIPELINE_RISK__MAX_ORDER_NOTIONAL": "1000000",
            "CRYPTOPIPELINE_RISK__MAX_POSITION_NOTIONAL": "100000000",
            "CRYPTOPIPELINE_RISK__MAX_DAILY_LOSS": "100000000",
            "CRYPTOPIPELINE_RISK__MAX_OPEN_ORDERS": "1000",
        }))  # fmt: skip
        processes.append(await _spawn([sys.executable, "-m", "cryptopipeline.signaler.cli"], {
            **common, "CRYPTOPIPELINE_OPS__PORT": str(ports["signaler"]),
            "CRYPTOPIPELINE_CANDLES__INTERVALS_S": "1", "CRYPTOPIPELINE_CANDLES__GRACE_S": "0",
            "CRYPTOPIPELINE_STRATEGIES": orjson.dumps(STRATEGIES).decode(),
            "CRYPTOPIPELINE_SIGNALER__START_FROM": "latest",
            "CRYPTOPIPELINE_SIGNALER__GROUP_ID": f"lt_sg_{run}",
            "CRYPTOPIPELINE_SIGNALER__TRANSACTIONAL_ID": f"lt_tx_{run}",
            "CRYPTOPIPELINE_SIGNALER__STATE_TOPIC": f"lt_state_{run}",
            "CRYPTOPIPELINE_SIGNALER__DEAD_LETTER_TOPIC": f"lt_sdlq_{run}",
        }))  # fmt: skip
        for workload in ("bot", "signaler"):
            await _ready(f"http://127.0.0.1:{ports[workload]}/readyz")
        processes.append(await _spawn([sys.executable, "-m", "cryptopipeline.ingestor.cli"], {
            **common, "CRYPTOPIPELINE_OPS__PORT": str(ports["ingestor"]),
            "CRYPTOPIPELINE_EXCHANGE__WS_URL": f"ws://127.0.0.1:{sim_port}/",
            "CRYPTOPIPELINE_EXCHANGE__REST_URL": f"http://127.0.0.1:{sim_port}",
            "CRYPTOPIPELINE_EXCHANGE__PRODUCTS": products,
        }))  # fmt: skip
        await _ready(f"http://127.0.0.1:{ports['ingestor']}/readyz")
        await asyncio.sleep(TRADING_S)  # the measured minute: the market runs in real time
        async with httpx.AsyncClient(timeout=5) as client:
            metrics = (await client.get(f"http://127.0.0.1:{ports['signaler']}/metrics")).text
        floor = await _transaction_floor(bootstrap, f"lt_tx_{run}")
    finally:
        for process in reversed(processes):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                async with asyncio.timeout(60):
                    await process.wait()
            except TimeoutError:
                process.kill()
    raw = await _read_all(bootstrap, topics["raw"])
    signals = await _read_all(bootstrap, topics["signals"])
    orders = await _read_all(bootstrap, topics["orders"])
    latencies = _latencies(raw, signals, orders)
    assert latencies, "no paper order was acknowledged"
    signal_ids = {s["signal_id"] for s in signals}
    assert {o["signal_id"] for o in orders} <= signal_ids, "every order answers a signal"
    read_commit_p99, batches = _histogram_quantile(
        metrics, "cryptopipeline_signaler_processing_latency_seconds", 0.99
    )
    read_commit_p50, _ = _histogram_quantile(
        metrics, "cryptopipeline_signaler_processing_latency_seconds", 0.50
    )
    result = {
        "ticks": sum(1 for r in raw if r.get("type") == "ticker"),
        "signals": len(signals),
        "orders_acknowledged": len(latencies),
        "tick_to_order_p50_ms": round(statistics.median(latencies), 2),
        "tick_to_order_p99_ms": round(_pct(latencies, 0.99), 2),
        "tick_to_order_max_ms": round(max(latencies), 2),
        "signaler_read_commit_p50_le_ms": read_commit_p50,
        "signaler_read_commit_p99_le_ms": read_commit_p99,
        "signaler_batches": batches,
        "txn_floor_p50_ms": round(statistics.median(floor), 2),
        "txn_floor_p99_ms": round(_pct(floor, 0.99), 2),
    }
    result["tick_to_order_p99_over_txn_floor_p99"] = round(
        result["tick_to_order_p99_ms"] / result["txn_floor_p99_ms"], 1
    )
    print(
        "\ntick → order (docs/benchmarks.md): " + ", ".join(f"{k}={v}" for k, v in result.items())
    )
    return result
