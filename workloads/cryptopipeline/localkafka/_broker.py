"""Format KRaft storage, start one combined broker+controller, wait for it, stop it cleanly."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptopipeline.core.kafka import wait_for_broker
from cryptopipeline.localkafka._maven import classpath, fetch_kafka

log = logging.getLogger(__name__)

_NODE_ID = 1
_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {logs}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = {level}
logger.org.name = org.apache.kafka
logger.org.level = {level}
"""


StopOutcome = Literal["not-running", "stopped", "killed"]


class BrokerError(RuntimeError):
    """The local broker could not be fetched, formatted, started or stopped."""


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free right now (tests use it to avoid clashing with 9092)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def wait_until_ready(bootstrap_servers: str) -> None:
    """Return once the broker answers a metadata request; callers bound it with a timeout."""
    with _quiet("aiokafka"):  # each refused connect would otherwise log an ERROR line
        await wait_for_broker(bootstrap_servers)


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


@dataclass
class LocalKafka:
    """One Kafka process whose data, config, logs and pid file live under `home`."""

    home: Path
    port: int = 9092
    controller_port: int | None = None
    host: str = "127.0.0.1"
    heap: str = "512m"
    log_level: str = "WARN"
    cache_dir: Path | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "server.log"

    def _controller_port(self) -> int:
        return self.controller_port if self.controller_port is not None else self.port + 1

    def _write_config(self) -> Path:
        cport = self._controller_port()
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        settings = {
            "process.roles": "broker,controller",
            "node.id": str(_NODE_ID),
            "controller.quorum.voters": f"{_NODE_ID}@{self.host}:{cport}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{cport}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.flush.interval.messages": "9223372036854775807",
        }
        path = self.home / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        (self.home / "log4j2.properties").write_text(
            _LOG4J2.format(logs=logs, level=self.log_level)
        )
        return path

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java:
            raise BrokerError("Java 17+ is needed to run Kafka; none found on PATH or JAVA_HOME")
        return java

    def _jvm_args(self) -> list[str]:
        return [
            f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC",
            "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.home / 'logs'}",
        ]  # fmt: skip

    def format_storage(self, cp: str) -> None:
        """Format KRaft storage once; StorageTool calls System.exit, so it gets its own JVM."""
        if (self.data_dir / "meta.properties").exists():
            return
        config = self._write_config()
        # One id in 32 starts with "-": pass it as --cluster-id=ID, never as a separate
        # argument, or the tool's argument parser takes it for an option.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        result = subprocess.run(
            [self._java(), *self._jvm_args(), "-cp", cp, "kafka.tools.StorageTool",
             "format", f"--cluster-id={cluster_id}", "-c", str(config),
             # Eligible Leader Replicas (KIP-966, on by default in 4.x) make transactional
             # produces on a single broker fail spuriously with NOT_ENOUGH_REPLICAS and retry
             # (aiokafka issue #1172): noise, and the signaler's latency tail. One broker has
             # no replicas to elect, so the feature buys nothing here.
             "--feature", "eligible.leader.replicas.version=0"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise BrokerError(f"formatting KRaft storage failed:\n{result.stdout}{result.stderr}")

    def running_pid(self) -> int | None:
        """The pid recorded in the pid file if that process is alive and is a Kafka broker."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"kafka.Kafka" in cmdline else None

    def start(self) -> None:
        """Launch the broker in its own session (a terminal's Ctrl-C reaches us, not it)."""
        if self.running_pid() is not None:
            raise BrokerError(f"a broker from {self.home} is already running")
        for port in (self.port, self._controller_port()):
            if not _port_free(self.host, port):
                raise BrokerError(f"port {self.host}:{port} is in use; choose another with --port")
        cp = classpath(fetch_kafka(self.cache_dir))
        self.home.mkdir(parents=True, exist_ok=True)
        self.format_storage(cp)
        config = self._write_config()
        out = (self.home / "logs" / "stdout.log").open("ab")
        self._process = subprocess.Popen(
            [self._java(), *self._jvm_args(), "-cp", cp, "kafka.Kafka", str(config)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        out.close()
        self.pid_file.write_text(f"{self._process.pid}\n")

    async def wait_ready(self, within: float = 90.0) -> None:
        """Wait until the broker answers; fail fast, with its log, if it dies or is too slow."""
        waiter = asyncio.ensure_future(wait_until_ready(self.bootstrap_servers))
        try:
            async with asyncio.timeout(within):
                while not waiter.done():
                    if self._process is not None and self._process.poll() is not None:
                        raise BrokerError(
                            f"Kafka exited with code {self._process.returncode} while starting;"
                            f" last lines of its logs:\n{self._tail()}"
                        )
                    await asyncio.wait({waiter}, timeout=0.25)
        except TimeoutError:
            raise BrokerError(
                f"Kafka at {self.bootstrap_servers} did not answer within {within}s;"
                f" last lines of its logs:\n{self._tail()}"
            ) from None
        finally:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter

    def _tail(self, lines: int = 30) -> str:
        texts = []
        for path in (self.home / "logs" / "stdout.log", self.log_file):
            with contextlib.suppress(OSError):
                texts.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(texts[-lines:])

    def stop(self, timeout: float = 30.0) -> StopOutcome:
        """SIGTERM (a controlled shutdown), then SIGKILL if it is still running after `timeout`."""
        pid = self._process.pid if self._process is not None else self.running_pid()
        if pid is None:
            return "not-running"
        outcome: StopOutcome = "stopped"
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not self._wait_exit(pid, timeout):
            log.warning("Kafka ignored SIGTERM; killing it", extra={"pid": pid})
            outcome = "killed"
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._wait_exit(pid, 10.0)
        self.pid_file.unlink(missing_ok=True)
        self._process = None
        return outcome

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._process is not None:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # not our child: no wait() to block on
            if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
                return True
            time.sleep(0.1)
        return False

    def wipe(self) -> None:
        """Delete data and logs (the broker must be stopped)."""
        if self.running_pid() is not None:
            raise BrokerError("stop the broker before wiping its data")
        shutil.rmtree(self.home, ignore_errors=True)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"
