"""How fast, how quick and how big the ingestor is: coinbase-sim -> ingestor -> Kafka.

Three processes besides the broker: coinbase-sim, the ingestor (`cryptopipeline.ingestor.cli`,
configured by environment variables only, so its CPU and RSS are its own) and this test,
which scrapes the ingestor's /metrics every 0.1 s, reads /proc/<pid>, and afterwards reads the
raw topic back to check that every trade arrived exactly once. Each run uses a fresh topic.

- throughput: the simulator at `--speed max`, 1 product, 1 or 2 redundant connections; the
  ceiling is aiokafka alone (`ingestor_ceiling.py`, its own process) producing the same
  values with the same key and producer settings to the same broker, right after.
- latency: the simulator paced at 1,000 and 10,000 trades/s (two products, half each), 2
  connections; frame received -> broker ack, exact values from the ingestor's own
  produce-latency measurement (`ingestor_probe.py`), and RSS.

Nothing here asserts a timing: the numbers are printed (`-s`) and kept in
`benchmark.extra_info`; docs/benchmarks.md holds them. Run with `make bench`.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from ingestor_harness import (
    ceiling,
    ingestor,
    percentile,
    read_latencies,
    read_topic,
    simulator,
    sustained,
)

pytestmark = pytest.mark.benchmark

THROUGHPUT_TRADES = 150_000
LATENCY_SECONDS = {1_000: 30, 10_000: 15}

_table: list[tuple[str, str]] = []  # (benchmark, one line of numbers), printed at the end


@pytest.fixture(scope="module", autouse=True)
def _print_table() -> Any:
    yield
    if _table:
        width = max(len(name) for name, _ in _table)
        lines = [f"{name:<{width}}  {numbers}" for name, numbers in _table]
        print("\n\ningestor benchmarks (docs/benchmarks.md)\n" + "\n".join(lines))


def _cpu(result: dict[str, Any]) -> str:
    return (
        f"CPU ingestor {result['ingestor_cpu_share']:.2f} sim {result['sim_cpu_share']:.2f} "
        f"broker {result['broker_cpu_share']:.2f} "
        f"machine {result['machine_busy_cores']:.2f} (niced {result['machine_niced_cores']:.2f})"
    )


def _topic(kind: str) -> str:
    return f"bench_{kind}_{uuid.uuid4().hex[:10]}"


def _throughput(bootstrap: str, workdir: Path, connections: int) -> dict[str, Any]:
    trades = THROUGHPUT_TRADES
    raw = _topic("throughput")
    load = os.getloadavg()[0]
    # no fixed --start-time: records carry the exchange time as their timestamp, and the
    # broker's time retention (7 days) deletes records dated further back within minutes
    sim_flags = [
        "--speed", "max", "--products", "BTC-USD", "--rate", "1000",
        "--max-trades", str(trades), "--await-subscribers", str(connections),
    ]  # fmt: skip
    with (
        simulator(*sim_flags, log=workdir / "sim.log") as (ws_url, rest_url, sim_pid),
        ingestor(
            bootstrap=bootstrap,
            raw=raw,
            ws_url=ws_url,
            rest_url=rest_url,
            products="BTC-USD",
            connections=connections,
            sim_pid=sim_pid,
            log=workdir / "ingestor.log",
        ) as process,
    ):
        idle_mb = process.status_mb()["VmRSS"]
        done = process.watch_until_published(trades, within=240)
        memory = process.status_mb()
        # every socket saw the whole market (the slower one may still be reading)
        process.watch_until(
            lambda s: s.received >= trades * connections, "every frame received", within=60
        )
        counters = process.metrics()
    rates = sustained(process.scrapes, trades)
    topic = read_topic(bootstrap, raw)
    topic.assert_exactly_once(trades)
    first_to_last = done.at - topic.first_receive_ns / 1e9
    top = ceiling(bootstrap, _topic("ceiling"), topic.values, workdir)
    return {
        "connections": connections,
        "trades": trades,
        "trades_per_s": round(rates.trades_per_s),
        "received_per_s": round(rates.received_per_s),
        "first_to_last_s": round(first_to_last, 2),
        "trades_per_s_first_to_last": round(trades / first_to_last),
        "duplicates_dropped": int(counters["duplicates"]),
        "ingestor_cpu_share": round(rates.cpu_share, 2),
        "sim_cpu_share": round(rates.sim_cpu_share, 2),
        "broker_cpu_share": round(rates.broker_cpu_share, 2),
        "machine_busy_cores": round(rates.machine_busy, 2),
        "machine_niced_cores": round(rates.machine_niced, 2),
        "rss_idle_mb": round(idle_mb, 1),
        "rss_end_mb": round(memory["VmRSS"], 1),
        "rss_peak_mb": round(memory["VmHWM"], 1),
        "record_bytes_mean": round(sum(map(len, topic.values)) / len(topic.values)),
        "ceiling_per_s": round(top["per_second"]),
        "ratio_to_ceiling": round(rates.trades_per_s / top["per_second"], 3),
        "load_1min_before": round(load, 2),
    }


@pytest.mark.parametrize("connections", [2, 1])
def test_ingestor_throughput(
    benchmark: Any, kafka_bootstrap: str, tmp_path: Path, connections: int
) -> None:
    result = benchmark.pedantic(
        _throughput, args=(kafka_bootstrap, tmp_path, connections), rounds=1, iterations=1
    )
    benchmark.extra_info.update(result)
    _table.append(
        (
            f"throughput, {connections} connection{'s' if connections > 1 else ''}",
            f"{result['trades_per_s']:,} trades/s sustained "
            f"({result['trades_per_s_first_to_last']:,} first->last), "
            f"{result['received_per_s']:,} frames/s received, "
            f"ceiling {result['ceiling_per_s']:,}/s, ratio {result['ratio_to_ceiling']:.2f}, "
            f"RSS peak {result['rss_peak_mb']} MB, {_cpu(result)}",
        )
    )


def _latency(bootstrap: str, workdir: Path, rate: int) -> dict[str, Any]:
    seconds = LATENCY_SECONDS[rate]
    trades = rate * seconds
    raw = _topic("latency")
    samples_file = workdir / "latency.f64"
    load = os.getloadavg()[0]
    sim_flags = [
        "--speed", "1", "--products", "BTC-USD,ETH-USD", "--rate", str(rate / 2),
        "--max-trades", str(trades), "--await-subscribers", "2",
    ]  # fmt: skip
    with (
        simulator(*sim_flags, log=workdir / "sim.log") as (ws_url, rest_url, sim_pid),
        ingestor(
            bootstrap=bootstrap,
            raw=raw,
            ws_url=ws_url,
            rest_url=rest_url,
            products="BTC-USD,ETH-USD",
            connections=2,
            sim_pid=sim_pid,
            log=workdir / "ingestor.log",
            latency_out=samples_file,
        ) as process,
    ):
        idle_mb = process.status_mb()["VmRSS"]
        process.watch_until_published(trades, within=seconds * 4 + 60)
        memory = process.status_mb()
        counters = process.metrics()
    rates = sustained(process.scrapes, trades)
    topic = read_topic(bootstrap, raw)
    topic.assert_exactly_once(trades)
    ordered = read_latencies(samples_file)  # in acknowledgement order
    assert len(ordered) >= trades + counters["heartbeats"]  # one value per published record
    warm = sorted(ordered[rate:])  # without the first second (connections, first metadata)
    latencies = sorted(ordered)

    def ms(value: float) -> float:
        return round(value * 1000, 2)

    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "trades": trades,
        "records": len(latencies),
        "trades_per_s": round(rates.trades_per_s),
        "received_per_s": round(rates.received_per_s),
        "p50_ms": ms(percentile(latencies, 0.50)),
        "p99_ms": ms(percentile(latencies, 0.99)),
        "p999_ms": ms(percentile(latencies, 0.999)),
        "max_ms": ms(latencies[-1]),
        "max_after_first_second_ms": ms(warm[-1]),
        "ingestor_cpu_share": round(rates.cpu_share, 2),
        "sim_cpu_share": round(rates.sim_cpu_share, 2),
        "broker_cpu_share": round(rates.broker_cpu_share, 2),
        "machine_busy_cores": round(rates.machine_busy, 2),
        "machine_niced_cores": round(rates.machine_niced, 2),
        "rss_idle_mb": round(idle_mb, 1),
        "rss_max_sampled_mb": round(max(s.rss_mb for s in process.scrapes), 1),
        "rss_peak_mb": round(memory["VmHWM"], 1),
        "load_1min_before": round(load, 2),
    }


@pytest.mark.parametrize("rate", sorted(LATENCY_SECONDS))
def test_ingestor_latency(benchmark: Any, kafka_bootstrap: str, tmp_path: Path, rate: int) -> None:
    result = benchmark.pedantic(
        _latency, args=(kafka_bootstrap, tmp_path, rate), rounds=1, iterations=1
    )
    benchmark.extra_info.update(result)
    _table.append(
        (
            f"latency at {rate:,} trades/s",
            f"receive->ack p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
            f"max {result['max_ms']} ms ({result['max_after_first_second_ms']} after 1 s), "
            f"RSS peak {result['rss_peak_mb']} MB, {_cpu(result)}",
        )
    )
