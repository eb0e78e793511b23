#!/usr/bin/env python3
"""Build kube-apiserver and etcd for the operator tests and cache them by version.

No Docker engine runs where the project is developed and tested, so kind cannot; the
operator's tests run against a real ``kube-apiserver`` and ``etcd`` that this script
compiles from their Go modules (``go.mod`` beside this file pins both). The binaries land
in ``$CRYPTOPIPELINE_CACHE/k8s/<kubernetes version>-<digest>/`` (default cache
``~/.cache/cryptopipeline``); the digest covers go.mod, go.sum and tools.go, so a changed
pin builds afresh and an unchanged one costs nothing.

    python3 k8s/testenv/build.py            # build if missing, print the folder
    python3 k8s/testenv/build.py --check    # exit 0 if built, 3 if not (never builds)

Only the standard library is used, so CI can run it before any virtual environment
exists. Needs Go (the version go.mod names) and the Go module proxy.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
PINNED_FILES = ("go.mod", "go.sum", "tools.go")
BINARIES = {
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "etcd": "go.etcd.io/etcd/server/v3",
}


def kubernetes_version() -> str:
    """The k8s.io/kubernetes version go.mod requires (e.g. ``v1.36.3``)."""
    match = re.search(r"k8s\.io/kubernetes (v\d+\.\d+\.\d+)", (HERE / "go.mod").read_text())
    if match is None:
        raise SystemExit("k8s/testenv/go.mod does not require k8s.io/kubernetes")
    return match.group(1)


def cache_root() -> Path:
    base = os.environ.get("CRYPTOPIPELINE_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "cryptopipeline"


def bin_dir() -> Path:
    """Where the binaries of the pinned versions live (built or not)."""
    digest = hashlib.sha256()
    for name in PINNED_FILES:
        digest.update((HERE / name).read_bytes())
    return cache_root() / "k8s" / f"{kubernetes_version()}-{digest.hexdigest()[:12]}"


def is_built(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) for name in BINARIES)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One build at a time per folder (parallel test sessions wait for the first)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _ldflags(version: str) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    return (
        f"-s -w -X {pkg}.gitVersion={version} -X {pkg}.gitMajor={major}"
        f" -X {pkg}.gitMinor={minor} -X {pkg}.gitTreeState=clean"
    )


def build(folder: Path, *, parallel: int | None = None) -> Path:
    """Compile both binaries into ``folder`` unless they are there; return it."""
    if is_built(folder):
        return folder
    go = shutil.which("go")
    if go is None:
        raise SystemExit("go is not installed: the control plane is built from Go modules")
    with _locked(folder):
        if is_built(folder):
            return folder
        staging = folder.with_name(folder.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        version = kubernetes_version()
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}
        for name, package in BINARIES.items():
            cmd = ["nice", "-n", "15", go, "build", "-trimpath", "-o", str(staging / name)]
            if parallel:
                cmd += ["-p", str(parallel)]
            if name == "kube-apiserver":
                cmd += ["-ldflags", _ldflags(version)]
            else:
                cmd += ["-ldflags", "-s -w"]
            started = time.monotonic()
            print(f"building {name} ({package}) ...", file=sys.stderr, flush=True)
            subprocess.run([*cmd, package], cwd=HERE, env=env, check=True)
            print(f"built {name} in {time.monotonic() - started:.0f} s", file=sys.stderr)
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 0 if built, 3 if not")
    parser.add_argument("-p", type=int, default=None, help="go build -p (parallel packages)")
    args = parser.parse_args(argv)
    folder = bin_dir()
    if args.check:
        print(folder)
        return 0 if is_built(folder) else 3
    print(build(folder, parallel=args.p))
    return 0


if __name__ == "__main__":
    sys.exit(main())
