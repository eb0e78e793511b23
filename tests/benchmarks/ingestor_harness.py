"""Processes and measurements for the ingestor benchmarks.

coinbase-sim, the ingestor and the aiokafka ceiling each run in a process of their own, so
the ingestor's CPU and RSS are its own. This module starts and stops them, scrapes the
ingestor's /metrics, reads its /proc status, and reads the raw topic back to check that every
trade arrived exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson

from cryptopipeline.core.kafka import assign_to_end, new_consumer, partitions_of, read_ranges
from cryptopipeline.localkafka._broker import free_port

HERE = Path(__file__).resolve().parent
T = TypeVar("T")

_SAMPLE = re.compile(r"^(\w+)(?:\{([^}]*)\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a private loop, leaving pytest-asyncio's session loop alone."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


# ---- coinbase-sim --------------------------------------------------------------------------


@contextlib.contextmanager
def simulator(*flags: str, log: Path) -> Iterator[tuple[str, str, int]]:
    """`coinbase-sim --port 0 FLAGS...` in its own process; yields (feed URL, REST URL, pid)."""
    command = [sys.executable, "-m", "cryptopipeline.sim.cli", "--port", "0", *flags]
    with log.open("w") as sink:
        process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=sink, text=True)
    try:
        assert process.stderr is not None
        found = None
        deadline = time.monotonic() + 20
        while found is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                break
            found = re.search(r"feed (ws://\S+) rest (http://\S+)", line)
        assert found, f"coinbase-sim did not log its URLs (exit {process.poll()})"
        yield found.group(1), found.group(2), process.pid
    finally:
        process.terminate()
        # its stderr pipe is not read any more: a chatty simulator must not block on it
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.communicate(timeout=10)
        if process.poll() is None:
            process.kill()
            process.wait()


# ---- CPU -----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process `pid` has used, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pid_listening_on(port: int) -> int | None:
    """The process listening on TCP `port` (the Kafka broker, found by its bootstrap port)."""
    wanted = f":{port:04X}"
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[1].endswith(wanted) and fields[3] == "0A":  # 0A = LISTEN
                    inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return int(proc.name)
    return None


@dataclass(frozen=True)
class MachineCpu:
    """CPU seconds of the whole machine, all cores (/proc/stat): busy in all, and the part of
    it spent by niced processes (other people's background builds on a shared machine)."""

    busy_s: float
    nice_s: float

    @classmethod
    def now(cls) -> MachineCpu:
        jiffies = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = jiffies[:8]
        tick = os.sysconf("SC_CLK_TCK")
        return cls((user + nice + system + irq + softirq + steal) / tick, nice / tick)


# ---- the ingestor --------------------------------------------------------------------------


@dataclass
class Scrape:
    """One reading of the ingestor's counters, with the wall-clock time it was taken."""

    at: float
    trades: float  # records_published{kind="trade"}, all products
    received: float  # messages_received{type="ticker" or "repeated"}, all connections
    duplicates: float
    rss_mb: float
    cpu_s: float  # the ingestor's user + system CPU time so far
    machine: MachineCpu  # every CPU of the machine so far
    sim_cpu_s: float  # coinbase-sim's CPU time so far
    broker_cpu_s: float  # the Kafka broker's CPU time so far (0 if it is not on this machine)


@dataclass
class IngestorProcess:
    process: subprocess.Popen[bytes]
    metrics_url: str
    log: Path
    sim_pid: int
    broker_pid: int | None
    scrapes: list[Scrape] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def status_mb(self) -> dict[str, float]:
        """VmRSS (resident now) and VmHWM (peak resident) from /proc, in MB (10^6 bytes)."""
        found: dict[str, float] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(rest.split()[0]) * 1024 / 1e6
        return found

    def log_tail(self, characters: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-characters:]

    def metrics(self) -> dict[str, float]:
        """The /metrics counters the benchmarks use, summed over their labels."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            text = response.read().decode()
        totals = {"trades": 0.0, "heartbeats": 0.0, "received": 0.0, "duplicates": 0.0}
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if match is None:
                continue
            name, value = match.group(1), float(match.group(3))
            labels = dict(_LABEL.findall(match.group(2) or ""))
            if name == "cryptopipeline_ingestor_records_published_total":
                kind = labels.get("kind")
                if kind == "trade":
                    totals["trades"] += value
                elif kind == "heartbeat":
                    totals["heartbeats"] += value
            elif name == "cryptopipeline_ingestor_messages_received_total":
                # "repeated": the other socket's copy, dropped before decoding (almost all
                # tickers; a heartbeat copy a second is noise at these rates)
                if labels.get("type") in ("ticker", "repeated"):
                    totals["received"] += value
                if labels.get("type") == "repeated":
                    totals["duplicates"] += value
            elif name == "cryptopipeline_ingestor_duplicates_dropped_total":
                totals["duplicates"] += value
        return totals

    def scrape(self) -> Scrape:
        counters = self.metrics()
        reading = Scrape(
            at=time.time(),
            trades=counters["trades"],
            received=counters["received"],
            duplicates=counters["duplicates"],
            rss_mb=self.status_mb()["VmRSS"],
            cpu_s=cpu_seconds(self.pid),
            machine=MachineCpu.now(),
            sim_cpu_s=cpu_seconds(self.sim_pid),
            broker_cpu_s=cpu_seconds(self.broker_pid) if self.broker_pid else 0.0,
        )
        self.scrapes.append(reading)
        return reading

    def watch_until(
        self, done: Callable[[Scrape], bool], what: str, within: float, every: float = 0.1
    ) -> Scrape:
        """Scrape every `every` s until `done(scrape)`; fail naming `what` after `within` s."""
        deadline = time.monotonic() + within
        while True:
            reading = self.scrape()
            if done(reading):
                return reading
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the ingestor exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"not {what} in {within} s: {reading}\n{self.log_tail()}")
            time.sleep(every)

    def watch_until_published(self, trades: int, within: float, every: float = 0.1) -> Scrape:
        """Scrape until `trades` trades are acknowledged by Kafka."""
        return self.watch_until(
            lambda s: s.trades >= trades, f"{trades} trades published", within, every
        )


@contextlib.contextmanager
def ingestor(
    *,
    bootstrap: str,
    raw: str,
    ws_url: str,
    rest_url: str,
    products: str,
    connections: int,
    sim_pid: int,
    log: Path,
    latency_out: Path | None = None,
) -> Iterator[IngestorProcess]:
    """The ingestor in its own process, configured by environment variables only.

    With `latency_out`, it runs under `ingestor_probe.py`, which keeps every exact
    receive-to-ack latency and writes them there on exit; otherwise it is the plain
    `python -m cryptopipeline.ingestor.cli`.
    """
    port = free_port()
    env = {
        **os.environ,
        "CRYPTOPIPELINE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "CRYPTOPIPELINE_TOPICS__RAW": raw,
        "CRYPTOPIPELINE_TOPICS__DEAD_LETTER": f"{raw}_dlq",
        "CRYPTOPIPELINE_EXCHANGE__WS_URL": ws_url,
        "CRYPTOPIPELINE_EXCHANGE__REST_URL": rest_url,
        "CRYPTOPIPELINE_EXCHANGE__PRODUCTS": products,
        "CRYPTOPIPELINE_EXCHANGE__CONNECTIONS": str(connections),
        "CRYPTOPIPELINE_OPS__HOST": "127.0.0.1",
        "CRYPTOPIPELINE_OPS__PORT": str(port),
        "CRYPTOPIPELINE_LOG_FORMAT": "text",
    }
    if latency_out is None:
        command = [sys.executable, "-m", "cryptopipeline.ingestor.cli"]
    else:
        command = [sys.executable, str(HERE / "ingestor_probe.py"), str(latency_out)]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    handle = IngestorProcess(
        process,
        f"http://127.0.0.1:{port}/metrics",
        log,
        sim_pid,
        pid_listening_on(int(bootstrap.split(",")[0].rpartition(":")[2])),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                handle.metrics()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"the ingestor did not serve /metrics:\n{handle.log_tail()}"
                    ) from None
                time.sleep(0.05)
        yield handle
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---- reading the topic back ------------------------------------------------------------------


@dataclass
class TopicContents:
    """What a raw topic holds: ticker trade ids per product in log order, and more."""

    trade_ids: dict[str, list[int]]
    first_receive_ns: int
    last_receive_ns: int
    values: list[bytes]  # every ticker value, in log order within a partition

    def assert_exactly_once(self, expected: int) -> None:
        """`expected` trades in all, each product's ids contiguous, none missing or doubled."""
        total = sum(len(ids) for ids in self.trade_ids.values())
        for product, ids in self.trade_ids.items():
            contiguous = list(range(ids[0], ids[0] + len(ids)))
            assert ids == contiguous, (
                f"{product}: {len(ids)} trades, {len(ids) - len(set(ids))} doubled, "
                f"{ids[-1] - ids[0] + 1 - len(set(ids))} missing"
            )
        assert total == expected, f"{total} trades in the topic, {expected} published"


async def _read(bootstrap: str, topic: str, within: float) -> TopicContents:
    """Everything in `topic` up to its end offsets taken now, from the start."""
    consumer = new_consumer(
        bootstrap, "bench", isolation_level="read_uncommitted", max_partition_fetch_bytes=8 << 20
    )
    await consumer.start()
    ids: dict[str, list[int]] = {}
    values: list[bytes] = []
    first, last = 1 << 63, 0
    try:
        tps = await partitions_of(consumer, topic)
        assert tps, f"topic {topic} has no partitions"
        ranges = await assign_to_end(consumer, tps)
        ends = {tp: stop for tp, _, stop in ranges}
        try:
            async with asyncio.timeout(within):
                async for record in read_ranges(consumer, ranges):
                    body = orjson.loads(record.value or b"{}")
                    if body.get("type") != "ticker":
                        continue
                    ids.setdefault(body["product_id"], []).append(body["trade_id"])
                    assert record.value is not None
                    values.append(record.value)
                    received = int(dict(record.headers)["receive_time_ns"])
                    first, last = min(first, received), max(last, received)
        except TimeoutError:
            raise AssertionError(
                f"read {len(values)} tickers of {topic} in {within} s; end offsets {ends}"
            ) from None
    finally:
        await consumer.stop()
    return TopicContents(ids, first, last, values)


def read_topic(bootstrap: str, topic: str, within: float = 120) -> TopicContents:
    return run(_read(bootstrap, topic, within))


# ---- the ceiling -----------------------------------------------------------------------------


def ceiling(bootstrap: str, topic: str, values: list[bytes], workdir: Path) -> dict[str, float]:
    """aiokafka alone producing `values` (`ingestor_ceiling.py`, in its own process)."""
    path = workdir / f"{topic}.values"
    path.write_bytes(b"\n".join(values))
    try:
        out = subprocess.run(
            [sys.executable, str(HERE / "ingestor_ceiling.py"), bootstrap, topic, str(path)],
            capture_output=True,
            text=True,
            timeout=240,
            check=True,
        )
    finally:
        path.unlink()
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# ---- numbers ---------------------------------------------------------------------------------


def sustained(scrapes: list[Scrape], total: int, low: float = 0.1, high: float = 0.9) -> Rates:
    """Rates between the scrapes where `low` and `high` of `total` trades had been
    acknowledged (no start-up, no tail); frames received over their own such window."""
    first = next(s for s in scrapes if s.trades >= low * total)
    last = next(s for s in scrapes if s.trades >= high * total)
    seconds = last.at - first.at
    received = scrapes[-1].received
    first_rx = next(s for s in scrapes if s.received >= low * received)
    last_rx = next(s for s in scrapes if s.received >= high * received)
    return Rates(
        trades_per_s=(last.trades - first.trades) / seconds,
        received_per_s=(last_rx.received - first_rx.received) / (last_rx.at - first_rx.at),
        cpu_share=(last.cpu_s - first.cpu_s) / seconds,
        sim_cpu_share=(last.sim_cpu_s - first.sim_cpu_s) / seconds,
        broker_cpu_share=(last.broker_cpu_s - first.broker_cpu_s) / seconds,
        machine_busy=(last.machine.busy_s - first.machine.busy_s) / seconds,
        machine_niced=(last.machine.nice_s - first.machine.nice_s) / seconds,
        seconds=seconds,
    )


@dataclass
class Rates:
    trades_per_s: float  # unique trades acknowledged by Kafka per second
    received_per_s: float  # ticker frames read from all connections per second
    cpu_share: float  # the ingestor's CPU seconds per second (1.0 = one core, all the time)
    sim_cpu_share: float  # coinbase-sim's, same window
    broker_cpu_share: float  # the Kafka broker's, same window
    machine_busy: float  # cores busy on the whole machine (of 2), same window
    machine_niced: float  # of which niced processes (not this benchmark)
    seconds: float


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def read_latencies(path: Path) -> list[float]:
    from array import array

    samples = array("d")
    samples.frombytes(path.read_bytes())
    return list(samples)
