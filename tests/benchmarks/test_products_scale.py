"""Every product (issue 13 goal 4): 100, 200 and 300 products through one ingestor and one
signaler, with each product exactly once; CPU and peak RSS per 100 products.

Real processes on the tests' Kafka, as `make run` starts them: coinbase-sim in real time
(`--speed 1`), the ingestor (defaults: two redundant sockets, 3 raw partitions) and the
signaler (default strategies and 1-minute candles, plus 1-second candles so that signals
occur within the run; one more run at 300 products has the 1-minute candles alone). The
market is a mix repeated per block of 100 products: one product at 100 trades/s, one at
50/s, eight at 2/s and ninety quiet ones at 0.2/s (a trade every 5 s on average): 184
trades/s and 100 heartbeats/s per block. It runs for `TRADING_S` seconds of trades
(`--max-trades`), so the simulator's ground truth is finite.

CPU, from /proc/<pid>/stat: what each process used from the ingestor's first ready answer
until its own work was done (the ingestor: every trade acknowledged; the signaler: every raw
record read), per second of market: the cores it needs to keep up. On a full machine a
process falls behind and catches up after the market ends (`*_behind_s`); counting only the
market's window would then undercount it. The whole machine's CPU in the market's window
comes from /proc/stat (other work = machine minus ours). Memory: each workload's peak RSS
(VmHWM). Also: the size of the signaler's checkpoints (one per raw partition, the whole
partition's state) and of each /metrics page, which grow with the product count by design.

Asserted, correctness only:
- ingestor: per product, the raw topic's ticker trade ids are the simulator's ground truth,
  in order, each once; every product has its heartbeats; /readyz, polled every second, never
  names a stuck product (most products are quiet for seconds at a time);
- signaler: the same domain engine run here over the raw topic, partition by partition (the
  signaler's input, in its order), closes the same candles per product and interval as the
  signaler counted, and gives exactly the signals in the signal topic, each once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from ingestor_harness import (
    MachineCpu,
    cpu_seconds,
    ingestor,
    pid_listening_on,
    run,
    simulator,
)

from cryptopipeline.core.kafka import assign_to_end, new_consumer, partitions_of, read_ranges
from cryptopipeline.localkafka._broker import free_port
from cryptopipeline.signaler._engine import PartitionEngine
from cryptopipeline.signaler._settings import SignalerSettings

pytestmark = pytest.mark.benchmark

TRADING_S = 120
INTERVALS_S = (1, 60)
"""The default 1-minute candles, plus 1-second ones so that signals occur within the run (and
the strategies' state per product doubles). One run at 300 has the defaults alone."""
QUIET_RATE = 0.2
BLOCK_RATES = {0: 100.0, 1: 50.0, **{i: 2.0 for i in range(2, 10)}}
"""Index within a block of 100 products -> trades/s; the other ninety are quiet."""

_table: list[tuple[str, str]] = []


@pytest.fixture(scope="module", autouse=True)
def _print_table() -> Iterator[None]:
    yield
    if _table:
        lines = [f"{name}: {numbers}" for name, numbers in _table]
        print("\n\nproducts in one ingestor and one signaler (docs/benchmarks.md)\n"
              + "\n".join(lines))  # fmt: skip


def products(count: int) -> list[str]:
    return [f"P{i:03d}-USD" for i in range(1, count + 1)]


def busy_rates(names: list[str]) -> dict[str, float]:
    return {p: BLOCK_RATES[i % 100] for i, p in enumerate(names) if i % 100 in BLOCK_RATES}


# ---- processes ---------------------------------------------------------------------------------


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(OSError):
            if _get(url)[0] == 200:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"{url} never answered 200 (exit {process.poll()}):\n{tail}")
        time.sleep(0.2)  # polled, as the kubelet does


@contextlib.contextmanager
def signaler(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The signaler in its own process; SIGTERM (commit, leave the group) on the way out."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "cryptopipeline.signaler.cli"],
            env={**os.environ, **env}, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def peak_rss_mb(pid: int) -> float:
    """VmHWM, the process's peak resident set so far, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def metric_samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of one metric family from Prometheus text: labels (sorted) -> value."""
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, labels = head.partition("{")
        if metric != name:
            continue
        pairs = [p.split("=", 1) for p in labels.rstrip("}").split(",") if "=" in p]
        out[tuple(sorted((k, v.strip('"')) for k, v in pairs))] = float(value)
    return out


@dataclass
class CpuReading:
    at: float
    processes: dict[str, float]  # role -> CPU seconds so far
    machine: MachineCpu

    @classmethod
    def now(cls, pids: dict[str, int | None]) -> CpuReading:
        seconds = {role: cpu_seconds(pid) if pid else 0.0 for role, pid in pids.items()}
        return cls(time.monotonic(), seconds, MachineCpu.now())


# ---- reading topics back -----------------------------------------------------------------------


async def _partitions(bootstrap: str, topic: str, committed: bool) -> dict[int, list[Any]]:
    """Every record of `topic`, per partition in log order."""
    consumer = new_consumer(
        bootstrap, "bench", max_partition_fetch_bytes=8 << 20,
        isolation_level="read_committed" if committed else "read_uncommitted",
    )  # fmt: skip
    await consumer.start()
    out: dict[int, list[Any]] = {}
    try:
        tps = await partitions_of(consumer, topic)
        assert tps, f"topic {topic} has no partitions"
        ranges = await assign_to_end(consumer, tps)
        out = {tp.partition: [] for tp in tps}
        try:
            async with asyncio.timeout(180):
                async for record in read_ranges(consumer, ranges, max_records=20_000):
                    out[record.partition].append(record)
        except TimeoutError:
            raise AssertionError(f"{topic} not read to its end in 180 s") from None
    finally:
        await consumer.stop()
    return out


def read_partitions(bootstrap: str, topic: str, committed: bool = False) -> dict[int, list[Any]]:
    return run(_partitions(bootstrap, topic, committed))


async def _end_offsets(bootstrap: str, topic: str) -> int:
    consumer = new_consumer(bootstrap, "bench", isolation_level="read_uncommitted")
    await consumer.start()
    try:
        tps = await partitions_of(consumer, topic)
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


# ---- one run -----------------------------------------------------------------------------------


def _measure(
    bootstrap: str, workdir: Path, count: int, intervals: tuple[int, ...]
) -> dict[str, Any]:
    names = products(count)
    rates = busy_rates(names)
    per_second = sum(rates.values()) + QUIET_RATE * (count - len(rates))
    trades = round(per_second * TRADING_S)
    run_id = uuid.uuid4().hex[:8]
    topics = {k: f"sc{count}_{k}_{run_id}" for k in ("raw", "dlq", "sig", "state", "sdlq")}
    strategies = SignalerSettings().strategies  # the defaults, handed over explicitly
    truth_path = workdir / "truth.jsonl"
    sim_flags = [
        "--products", ",".join(names), "--rate", str(QUIET_RATE),
        "--rates", ",".join(f"{p}={r:g}" for p, r in rates.items()),
        "--speed", "1", "--await-subscribers", "2", "--max-trades", str(trades),
        "--ground-truth", str(truth_path),
    ]  # fmt: skip
    signaler_port = free_port()
    signaler_env = {
        "CRYPTOPIPELINE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "CRYPTOPIPELINE_TOPICS__RAW": topics["raw"],
        "CRYPTOPIPELINE_TOPICS__DEAD_LETTER": topics["dlq"],
        "CRYPTOPIPELINE_TOPICS__TRADE_SIGNALS": topics["sig"],
        "CRYPTOPIPELINE_OPS__HOST": "127.0.0.1",
        "CRYPTOPIPELINE_OPS__PORT": str(signaler_port),
        "CRYPTOPIPELINE_LOG_FORMAT": "text",
        "CRYPTOPIPELINE_LOG_LEVEL": "WARNING",  # one INFO line per signal otherwise
        "CRYPTOPIPELINE_CANDLES__INTERVALS_S": ",".join(map(str, intervals)),
        "CRYPTOPIPELINE_STRATEGIES": orjson.dumps([s.model_dump() for s in strategies]).decode(),
        "CRYPTOPIPELINE_SIGNALER__GROUP_ID": f"sc_{run_id}",
        "CRYPTOPIPELINE_SIGNALER__TRANSACTIONAL_ID": f"sc_{run_id}",
        "CRYPTOPIPELINE_SIGNALER__STATE_TOPIC": topics["state"],
        "CRYPTOPIPELINE_SIGNALER__DEAD_LETTER_TOPIC": topics["sdlq"],
    }
    signaler_url = f"http://127.0.0.1:{signaler_port}"
    stuck_seen: Counter[str] = Counter()
    not_ready = 0
    result: dict[str, Any] = {"products": count, "intervals_s": list(intervals), "trades": trades,
                              "trades_per_s_planned": round(per_second, 1)}  # fmt: skip
    with (
        simulator(*sim_flags, log=workdir / "sim.log") as (ws_url, rest_url, sim_pid),
        signaler(signaler_env, workdir / "signaler.log") as signaler_process,
    ):
        _wait_for(f"{signaler_url}/readyz", signaler_process, workdir / "signaler.log", 60)
        with ingestor(
            bootstrap=bootstrap, raw=topics["raw"], ws_url=ws_url, rest_url=rest_url,
            products=",".join(names), connections=2, sim_pid=sim_pid,
            log=workdir / "ingestor.log",
        ) as ingest:  # fmt: skip
            ready_url = ingest.metrics_url.replace("/metrics", "/readyz")
            _wait_for(ready_url, ingest.process, ingest.log, 60)
            result["ingestor_rss_idle_mib"] = round(rss_mb(ingest.pid), 1)
            result["signaler_rss_idle_mib"] = round(rss_mb(signaler_process.pid), 1)
            pids = {
                "ingestor": ingest.pid, "signaler": signaler_process.pid, "sim": sim_pid,
                "broker": pid_listening_on(int(bootstrap.rpartition(":")[2])),
                "pytest": os.getpid(),
            }  # fmt: skip
            first = CpuReading.now(pids)
            deadline = time.monotonic() + TRADING_S * 3
            while True:
                status, body = _get(ready_url)
                detail = orjson.loads(body)
                stuck_seen.update(detail.get("stuck_products", []))
                not_ready += status != 200
                if orjson.loads(_get(f"{rest_url}/sim/stats")[1])["market_done"]:
                    break
                assert time.monotonic() < deadline, "the market did not finish"
                assert ingest.process.poll() is None, ingest.log_tail()
                assert signaler_process.poll() is None, "the signaler exited"
                time.sleep(1.0)  # a probe's rhythm
            market_end = CpuReading.now(pids)
            ingest.watch_until_published(trades, within=300, every=0.5)
            done = {"ingestor": (time.monotonic(), cpu_seconds(ingest.pid))}
            result["ingestor_rss_peak_mib"] = round(peak_rss_mb(ingest.pid), 1)
            result["ingestor_metrics_kib"] = round(len(_get(ingest.metrics_url)[1]) / 1024, 1)
        # the ingestor has flushed and stopped; the signaler reads to the raw topic's end
        raw_records = run(_end_offsets(bootstrap, topics["raw"]))
        deadline = time.monotonic() + 300
        while True:
            text = _get(f"{signaler_url}/metrics")[1].decode()
            read = sum(metric_samples(text, "cryptopipeline_signaler_records_consumed_total")
                       .values())  # fmt: skip
            if read >= raw_records:
                done["signaler"] = (time.monotonic(), cpu_seconds(signaler_process.pid))
                if pids["broker"]:
                    done["broker"] = (time.monotonic(), cpu_seconds(pids["broker"]))
                break
            assert time.monotonic() < deadline, f"signaler read {read} of {raw_records}"
            time.sleep(0.5)
        result["signaler_rss_peak_mib"] = round(peak_rss_mb(signaler_process.pid), 1)
        result["signaler_metrics_kib"] = round(len(text) / 1024, 1)
    # the signaler committed what it folded and left

    # A starved process falls behind and catches up after the market ends: its cost is the
    # CPU it used until its work was done, per second of market (cores needed to keep up).
    market_s = market_end.at - first.at
    ours = 0.0
    for role in pids:
        used = market_end.processes[role] - first.processes[role]
        ours += used / market_s
        if role in done:
            used = done[role][1] - first.processes[role]
            result[f"{role}_behind_s"] = round(max(0.0, done[role][0] - market_end.at), 1)
        result[f"{role}_cpu_cores"] = round(used / market_s, 3)
    result["ingestor_cpu_cores_per_100"] = round(result["ingestor_cpu_cores"] * 100 / count, 3)
    result["signaler_cpu_cores_per_100"] = round(result["signaler_cpu_cores"] * 100 / count, 3)
    machine = (market_end.machine.busy_s - first.machine.busy_s) / market_s
    result["machine_busy_cores"] = round(machine, 2)
    result["others_cpu_cores"] = round(machine - ours, 2)
    result["market_s"] = round(market_s, 1)
    result["load_1min_after"] = round(os.getloadavg()[0], 2)

    raw = read_partitions(bootstrap, topics["raw"])
    _check_ingestor(raw, truth_path, names, result)
    _check_signaler(bootstrap, raw, topics["sig"], strategies, intervals, text, result)
    states = read_partitions(bootstrap, topics["state"], committed=True)
    sizes = [len(r.value) for records in states.values() for r in records if r.value]
    result["checkpoint_kib_max"] = round(max(sizes) / 1024, 1)
    result["checkpoints_written"] = len(sizes)
    result["stuck_products_seen"] = dict(stuck_seen)
    result["ingestor_not_ready_polls"] = not_ready
    assert not stuck_seen, f"/readyz named stuck products: {dict(stuck_seen)}"
    return result


def _check_ingestor(
    raw: dict[int, list[Any]], truth_path: Path, names: list[str], result: dict[str, Any]
) -> None:
    truth: dict[str, list[int]] = {p: [] for p in names}
    for line in truth_path.read_bytes().splitlines():
        record = orjson.loads(line)
        truth[record["product_id"]].append(record["trade_id"])
    got: dict[str, list[int]] = {p: [] for p in names}
    heartbeats: Counter[str] = Counter()
    for records in raw.values():
        for record in records:
            body = orjson.loads(record.value)
            if body["type"] == "ticker":
                got[body["product_id"]].append(body["trade_id"])
            elif body["type"] == "heartbeat":
                heartbeats[body["product_id"]] += 1
    wrong = {p: (len(got[p]), len(truth[p])) for p in names if got[p] != truth[p]}
    assert not wrong, f"products whose trades are not the ground truth (got, truth): {wrong}"
    assert sum(len(t) for t in truth.values()) == result["trades"]
    fewest = min(heartbeats[p] for p in names)
    assert fewest >= TRADING_S * 0.8, f"a product has only {fewest} heartbeats"
    quiet = [len(truth[p]) for p in names if p not in busy_rates(names)]
    result["trades_per_quiet_product"] = round(sum(quiet) / len(quiet), 1)
    result["heartbeats_per_product_min"] = fewest


def _check_signaler(
    bootstrap: str,
    raw: dict[int, list[Any]],
    signal_topic: str,
    strategies: Any,
    intervals: tuple[int, ...],
    signaler_text: str,
    result: dict[str, Any],
) -> None:
    expected_candles: Counter[tuple[str, str]] = Counter()
    expected_signals: dict[str, str] = {}  # signal id -> product
    for records in raw.values():
        engine = PartitionEngine(intervals, SignalerSettings().candles.grace_s, strategies)
        for record in records:
            out = engine.on_record(record.value)
            for candle in out.candles:
                expected_candles[(candle.product_id, str(candle.interval_s))] += 1
            for sig in out.signals:
                expected_signals[sig.signal_id] = sig.product_id
    counted = {
        (dict(labels)["product"], dict(labels)["interval"]): int(value)
        for labels, value in metric_samples(
            signaler_text, "cryptopipeline_signaler_candles_closed_total"
        ).items()
    }
    assert counted == dict(expected_candles), "candles per product and interval differ"
    if 1 in intervals:  # heartbeats close every product's seconds: each one that traded has some
        assert len({p for p, i in counted if i == "1"}) == result["products"], "a product lacks"
    published = Counter(
        orjson.loads(r.value)["signal_id"]
        for records in read_partitions(bootstrap, signal_topic, committed=True).values()
        for r in records
    )
    doubled = {s: n for s, n in published.items() if n > 1}
    assert not doubled, f"signals published more than once: {doubled}"
    missing = set(expected_signals) - set(published)
    extra = set(published) - set(expected_signals)
    assert not missing and not extra, f"{len(missing)} signals missing, {len(extra)} unexpected"
    result["candles"] = sum(expected_candles.values())
    result["signals"] = len(published)
    result["products_with_signals"] = len(set(expected_signals.values()))


@pytest.mark.timeout(1200)
@pytest.mark.parametrize(
    ("count", "intervals"),
    [(100, INTERVALS_S), (200, INTERVALS_S), (300, INTERVALS_S), (300, (60,))],
    ids=["100", "200", "300", "300-default-candles"],
)
def test_products_in_one_ingestor_and_one_signaler(
    benchmark: Any, kafka_bootstrap: str, tmp_path: Path, count: int, intervals: tuple[int, ...]
) -> None:
    result = benchmark.pedantic(
        _measure, args=(kafka_bootstrap, tmp_path, count, intervals), rounds=1, iterations=1
    )
    benchmark.extra_info.update(result)
    name = f"{count} products" + ("" if intervals == INTERVALS_S else ", 60 s candles only")
    print(f"\n{name}: " + ", ".join(f"{k}={v}" for k, v in result.items()))
    _table.append((
        name,
        f"ingestor CPU {result['ingestor_cpu_cores']:.3f} cores "
        f"({result['ingestor_cpu_cores_per_100']:.3f}/100 products), "
        f"RSS {result['ingestor_rss_idle_mib']} -> peak {result['ingestor_rss_peak_mib']} MiB; "
        f"signaler CPU {result['signaler_cpu_cores']:.3f} "
        f"({result['signaler_cpu_cores_per_100']:.3f}/100), "
        f"RSS {result['signaler_rss_idle_mib']} -> peak {result['signaler_rss_peak_mib']} MiB, "
        f"checkpoint max {result['checkpoint_kib_max']} KiB; sim {result['sim_cpu_cores']:.2f}, "
        f"broker {result['broker_cpu_cores']:.2f}, machine {result['machine_busy_cores']:.2f} "
        f"of 2 (others {result['others_cpu_cores']:.2f}); {result['trades']:,} trades, "
        f"{result['candles']:,} candles, {result['signals']:,} signals, each once",
    ))  # fmt: skip
