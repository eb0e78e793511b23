"""A real ksqlDB server for the tests and for local work: built from ../shared/ksqldb, started
against a given Kafka on a free port, stopped by its process id.

Standard library only, so the test set-up can run it before anything is installed:

    python3 workloads/cryptopipeline/ksql/_server.py build
    .venv/bin/python -m cryptopipeline.ksql._server build           # the same

`build` runs `../shared/ksqldb/build.sh` (relative to the repository) into
~/.cache/cryptopipeline/ksqldb once; a built server is reused at once. The cold build takes
about four minutes (Maven downloads ~700 MB); docs/testing.md records the measured time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

KSQLDB_VERSION = "8.3.1"
REPO_ROOT = Path(__file__).resolve().parents[3]
SOURCE_DIR = REPO_ROOT.parent / "shared" / "ksqldb"
DEFAULT_CACHE = Path.home() / ".cache" / "cryptopipeline" / "ksqldb"
# The tests' heap: ksqlDB runs in well under 1 GiB here and the machine is shared.
DEFAULT_HEAP = "-Xms128m -Xmx512m"


class KsqlServerError(RuntimeError):
    """The ksqlDB server could not be built, started or stopped."""


def server_home(cache_dir: Path = DEFAULT_CACHE) -> Path:
    """Where `build.sh` puts the server: CACHE/ksqldb-8.3.1."""
    return cache_dir / f"ksqldb-{KSQLDB_VERSION}"


def is_built(cache_dir: Path = DEFAULT_CACHE) -> bool:
    return (server_home(cache_dir) / "bin" / "ksql-server-start").is_file()


def ensure_built(
    cache_dir: Path = DEFAULT_CACHE, *, source_dir: Path = SOURCE_DIR, quiet: bool = False
) -> Path:
    """Build the server once (idempotent) and return its home (with bin/ksql-server-start).

    Progress lines of build.sh go to stderr unless `quiet`. Raises `KsqlServerError` when the
    sources are absent and nothing is built yet, or when the build fails.
    """
    home = server_home(cache_dir)
    if is_built(cache_dir):
        return home
    script = source_dir / "build.sh"
    if not script.is_file():
        raise KsqlServerError(
            f"no ksqlDB sources at {source_dir} (expected build.sh there) and no server built "
            f"in {home}"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    _progress(f"building ksqlDB {KSQLDB_VERSION} into {home} (cold: about 4 minutes)", quiet)
    result = subprocess.run(
        ["bash", str(script), str(cache_dir)],
        stdout=subprocess.DEVNULL if quiet else sys.stderr,
        stderr=subprocess.STDOUT if not quiet else subprocess.PIPE,
        check=False,
    )
    if result.returncode != 0 or not is_built(cache_dir):
        detail = result.stderr.decode(errors="replace")[-2000:] if quiet and result.stderr else ""
        raise KsqlServerError(f"ksqlDB build failed (exit {result.returncode}) {detail}".strip())
    _progress(f"built ksqlDB in {time.monotonic() - started:.0f}s: {home}", quiet)
    return home


def _progress(message: str, quiet: bool) -> None:
    if not quiet:
        print(f"[ksqldb] {message}", file=sys.stderr, flush=True)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def server_properties(
    *, port: int, bootstrap_servers: str, service_id: str, state_dir: Path
) -> dict[str, str]:
    """The settings that work against the project's single local broker."""
    return {
        "listeners": f"http://127.0.0.1:{port}",
        "bootstrap.servers": bootstrap_servers,
        "ksql.service.id": service_id,
        "ksql.internal.topic.replicas": "1",
        "ksql.internal.topic.min.insync.replicas": "1",
        "ksql.streams.replication.factor": "1",
        "ksql.logging.processing.topic.replication.factor": "1",
        "ksql.logging.processing.topic.auto.create": "true",
        "ksql.logging.processing.stream.auto.create": "true",
        "ksql.streams.state.dir": str(state_dir),
        "ksql.streams.num.stream.threads": "1",
        # Commit every 500 ms (2 s by default for at-least-once): results leave the record
        # caches sooner. Only speeds tests up; no result depends on it.
        "ksql.streams.commit.interval.ms": "500",
    }


@dataclass(frozen=True, slots=True)
class RunningKsqlServer:
    """A real ksqlDB server in use: its URL and, when we started it, its log file (this
    build's processing log goes there only: its log4j2.yaml has no Kafka appender)."""

    url: str
    log_file: Path | None


@dataclass
class LocalKsqlServer:
    """One ksqlDB server process on 127.0.0.1; `start()`, `wait_ready()`, `stop()`."""

    home: Path
    work_dir: Path
    bootstrap_servers: str
    port: int = field(default_factory=free_port)
    service_id: str = "cryptopipeline_test_"
    heap_opts: str = DEFAULT_HEAP
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.work_dir / "ksqldb.log"

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        state = self.work_dir / "state"
        state.mkdir(exist_ok=True)
        properties = server_properties(
            port=self.port,
            bootstrap_servers=self.bootstrap_servers,
            service_id=self.service_id,
            state_dir=state,
        )
        config = self.work_dir / "ksql-server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in properties.items()), encoding="utf-8")
        env = {**os.environ, "KSQL_HEAP_OPTS": self.heap_opts}
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.home / "bin" / "ksql-server-start"), str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # its own process group: stopped as one, by its id
            )

    def info(self) -> dict[str, object] | None:
        """`/info` when the server answers, else None."""
        try:
            with urllib.request.urlopen(f"{self.url}/info", timeout=2) as response:
                body = json.loads(response.read())
        except (OSError, urllib.error.URLError, ValueError):
            return None
        info = body.get("KsqlServerInfo") if isinstance(body, dict) else None
        return info if isinstance(info, dict) else None

    def wait_ready(self, within_s: float = 120.0) -> float:
        """Poll `/info` until the server reports RUNNING; return the seconds it took."""
        started = time.monotonic()
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise KsqlServerError(
                    f"ksqlDB exited with {self.process.returncode} while starting; "
                    f"log: {self.log_file}\n{self.log_tail()}"
                )
            info = self.info()
            if info is not None and info.get("serverStatus", "RUNNING") == "RUNNING":
                return time.monotonic() - started
            if time.monotonic() - started > within_s:
                raise KsqlServerError(
                    f"ksqlDB not ready on {self.url} after {within_s:.0f}s; log: {self.log_file}"
                    f"\n{self.log_tail()}"
                )
            time.sleep(0.25)  # polling an HTTP endpoint: nothing to await instead

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, within_s: float = 30.0) -> None:
        """SIGTERM the server's process group (by its id), SIGKILL it after `within_s`."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=within_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in ("build", "path"):
        print(
            "usage: _server.py build [CACHE_DIR]   build ksqlDB once (default ~/.cache/...)\n"
            "       _server.py path [CACHE_DIR]    print the built server's home, or exit 1",
            file=sys.stderr,
        )
        return 2
    cache = Path(args[1]).expanduser() if len(args) > 1 else DEFAULT_CACHE
    if args[0] == "path":
        if not is_built(cache):
            return 1
        print(server_home(cache))
        return 0
    try:
        home = ensure_built(cache)
    except KsqlServerError as exc:
        print(f"[ksqldb] {exc}", file=sys.stderr)
        return 1
    print(home)
    return 0


if __name__ == "__main__":
    sys.exit(main())
