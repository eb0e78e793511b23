"""How fast coinbase-sim pushes ticker messages to clients on loopback.

The simulator runs in its own process (`coinbase-sim --speed max`), each client in another, so
what is measured is the simulator's process: one market, N subscribers, every trade's ticker
encoded once and written to all of them. Run with `make bench`
(`pytest tests/benchmarks --benchmark-only`).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

pytestmark = pytest.mark.benchmark

_CLIENT = r"""
import asyncio, json, sys, time
from websockets.asyncio.client import connect

async def main(url, expected):
    async with connect(url, max_size=2**20, compression=None) as ws:
        await ws.send(json.dumps({"type": "subscribe", "product_ids": ["BTC-USD"],
                                  "channels": ["ticker"]}))
        await ws.recv()  # subscriptions
        print("ready", flush=True)
        count, first = 0, None
        async for frame in ws:
            if first is None:
                first = time.time()
            count += 1
            if count >= expected:
                break
        print(json.dumps({"count": count, "first": first, "last": time.time()}), flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


@contextmanager
def _simulator(trades: int, clients: int) -> Iterator[str]:
    command = [
        sys.executable, "-m", "cryptopipeline.sim.cli", "--port", "0", "--speed", "max",
        "--products", "BTC-USD", "--rate", "1000", "--max-trades", str(trades),
        "--await-subscribers", str(clients), "--start-time", "2026-01-01T00:00:00Z",
    ]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        url = None
        deadline = time.monotonic() + 20
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            found = re.search(r"feed (ws://\S+)", line)
            url = found.group(1) if found else None
        assert url, "coinbase-sim did not log its URL"
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _measure(trades: int, clients: int) -> dict[str, Any]:
    with _simulator(trades, clients) as url:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _CLIENT, url, str(trades)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(clients)
        ]
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=300)
            results.append(json.loads(out.strip().splitlines()[-1]))
    total = sum(r["count"] for r in results)
    elapsed = max(r["last"] for r in results) - min(r["first"] for r in results)
    return {
        "clients": clients,
        "messages": total,
        "seconds": round(elapsed, 3),
        "messages_per_second": round(total / elapsed),
        "per_client_per_second": round(total / elapsed / clients),
    }


@pytest.mark.parametrize(("clients", "trades"), [(1, 300_000), (4, 150_000)])
def test_sim_ticker_rate(benchmark: Any, clients: int, trades: int) -> None:
    result = benchmark.pedantic(_measure, args=(trades, clients), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(f"\ncoinbase-sim ticker fan-out: {result}")
    assert result["messages"] == trades * clients
