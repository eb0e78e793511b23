#!/usr/bin/env python3
"""Install and build everything the test suite needs, before pytest starts.

`make test` runs this first, so the README's test command alone prepares a fresh machine:
each step prints a progress line with the elapsed time, reuses its cache under
~/.cache/cryptopipeline when it can, and fails loudly when something this machine could
install did not install. No build happens inside a pytest fixture (a cold control-plane
build outlasts pytest-timeout), and no test skips because a step was forgotten.

    python3 tests/prepare.py             # prepare what is missing (idempotent)
    python3 tests/prepare.py --list      # what each step provides, and whether it is ready

Steps: Kafka's jars (Maven), kube-apiserver + etcd (Go; k8s/testenv/build.py), Helm (Go) and
promtool + prometheus (Debian's package; charts/tools.py), a real ksqlDB server (Maven;
../shared/ksqldb/build.sh when ../shared is beside the clone), cryptofeed in its own venv
(pip; tests/thirdparty_clients.py). A toolchain that is absent
(no Go, not root for apt-get, no ../shared/ksqldb) is reported once here and the tests that
need it skip saying why; docs/testing.md lists those cases.

Runs with the project's virtual environment (`.venv/bin/python tests/prepare.py`): the
Kafka step imports the project's own fetcher.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
START = time.monotonic()
# What the last run prepared; tests/tooling.py reads it to tell a skip from a broken set-up.
RECORD = REPO / ".work" / "prepared.json"


def say(message: str) -> None:
    print(f"[prepare {time.monotonic() - START:6.1f}s] {message}", flush=True)


class StepFailed(Exception):
    """A step that this machine can do did not succeed."""


class Unavailable(Exception):
    """A step this machine cannot do (a toolchain is absent); its tests skip with the reason."""


@dataclass(frozen=True)
class Step:
    name: str
    provides: str
    run: Callable[[], str]
    lane: str  # steps of one lane run in order; the lanes run side by side


def _run(cmd: list[str], what: str) -> str:
    """Run a preparation command, streaming its output; raise StepFailed on a non-zero exit."""
    done = subprocess.run(
        cmd, cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    if done.returncode != 0:
        tail = "\n".join(done.stdout.strip().splitlines()[-40:])
        raise StepFailed(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "ok"


def kafka_jars() -> str:
    if shutil.which("mvn") is None or shutil.which("java") is None:
        raise StepFailed("Java 17+ and Maven are needed for Kafka's jars: install them first")
    from cryptopipeline.localkafka import fetch_kafka

    return str(fetch_kafka())


def control_plane() -> str:
    if shutil.which("go") is None:
        raise Unavailable("no `go` on PATH: the operator and chart tests (kube) will skip")
    return _run([sys.executable, "k8s/testenv/build.py"], "kube-apiserver + etcd build")


def chart_tools() -> str:
    out = _run([sys.executable, "charts/tools.py"], "Helm / promtool install")
    check = subprocess.run(
        [sys.executable, "charts/tools.py", "--check"], cwd=REPO, capture_output=True, text=True
    )
    if check.returncode == 0:
        return check.stdout.strip()
    if shutil.which("go") is None or os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Unavailable(f"{check.stdout.strip()}: {out}")
    raise StepFailed(f"still {check.stdout.strip()} after installing: {out}")


def ksqldb_server() -> str:
    """ksqlDB is on no registry: its module builds it from ../shared/ksqldb (cached)."""
    from cryptopipeline.ksql import _server

    if not _server.is_built() and not (_server.SOURCE_DIR / "build.sh").is_file():
        raise Unavailable(
            f"no ksqlDB sources at {_server.SOURCE_DIR}: the ksqldb tests skip unless "
            "CRYPTOPIPELINE_KSQL__URL names a running ksqlDB server"
        )
    return _run([sys.executable, "workloads/cryptopipeline/ksql/_server.py", "build"],
                "ksqlDB build (../shared/ksqldb/build.sh)")  # fmt: skip


def cryptofeed_client() -> str:
    """cryptofeed from PyPI in a virtual environment of its own (the third-party client test)."""
    sys.path.insert(0, str(REPO / "tests"))
    from thirdparty_clients import ensure_cryptofeed

    try:
        return str(ensure_cryptofeed())
    except subprocess.CalledProcessError as exc:
        raise StepFailed(f"pip could not install cryptofeed: {exc}") from exc


STEPS = (
    Step("kafka", "Kafka 4.3.1 jars for the broker every kafka test starts", kafka_jars, "maven"),
    Step("control-plane", "kube-apiserver + etcd for the kube tests", control_plane, "go"),
    Step("chart-tools", "Helm, promtool and prometheus for the chart tests", chart_tools, "go"),
    Step("ksqldb", "a real ksqlDB server for the ksqldb tests", ksqldb_server, "maven"),
    Step(
        "cryptofeed",
        "cryptofeed 2.4.1 in its own venv, a third-party Advanced Trade client",
        cryptofeed_client,
        "pip",
    ),
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="list the steps and stop")
    parser.add_argument("--skip", action="append", default=[], help="a step to leave out")
    args = parser.parse_args(argv)
    if args.list:
        for step in STEPS:
            print(f"{step.name:14} {step.provides}")
        return 0
    unavailable: dict[str, str] = {}
    ready: list[str] = []
    failed: list[str] = []

    def run(step: Step) -> None:
        say(f"{step.name}: {step.provides} ...")
        began = time.monotonic()
        try:
            result = step.run()
        except Unavailable as exc:
            unavailable[step.name] = str(exc)
            say(f"{step.name}: NOT AVAILABLE here: {exc}")
            return
        except StepFailed as exc:
            failed.append(step.name)
            say(f"{step.name}: FAILED after {time.monotonic() - began:.0f}s: {exc}")
            return
        ready.append(step.name)
        say(f"{step.name}: ready in {time.monotonic() - began:.1f}s ({result})")

    def lane(steps: list[Step]) -> None:
        for step in steps:
            if step.name in args.skip:
                say(f"{step.name}: left out (--skip)")
            elif not failed:
                run(step)

    # Lanes side by side: Maven mostly downloads while Go mostly compiles (and pip builds two
    # small C extensions), so a cold preparation takes about as long as its longest lane.
    lanes = [[s for s in STEPS if s.lane == name] for name in ("maven", "go", "pip")]
    threads = [threading.Thread(target=lane, args=(steps,)) for steps in lanes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        say(f"failed: {', '.join(failed)}")
        return 1
    if unavailable:
        say(
            "the tests that need these will skip, each saying why: "
            + "; ".join(f"{k}: {v}" for k, v in unavailable.items())
        )
    RECORD.parent.mkdir(exist_ok=True)
    RECORD.write_text(json.dumps({"ready": ready, "unavailable": unavailable}, indent=2) + "\n")
    say(f"done; recorded in {RECORD.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
