"""Install the tools the chart and observability tests use; print where they are.

- Helm, built from its Go module (`go install helm.sh/helm/v3/cmd/helm@VERSION`, niced,
  CGO off) into ~/.cache/cryptopipeline/helm/VERSION/; built once, then reused.
- promtool and prometheus, from Debian's `prometheus` package (apt-get, as root).

    python3 charts/tools.py            # install what is missing (CI runs this)
    python3 charts/tools.py --check    # exit 1 if something is missing; install nothing

A tool that cannot be installed here (no Go, not root) is reported, not fatal: the tests
that need it skip and say why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HELM_VERSION = "v3.22.0"
HELM_DIR = Path.home() / ".cache" / "cryptopipeline" / "helm" / HELM_VERSION
HELM = HELM_DIR / "helm"


def helm_path() -> Path | None:
    """The Helm this project uses: $CRYPTOPIPELINE_HELM, else the cached build."""
    env = os.environ.get("CRYPTOPIPELINE_HELM")
    if env:
        return Path(env) if Path(env).is_file() else None
    return HELM if HELM.is_file() else None


def build_helm() -> str:
    if helm_path():
        return f"helm: {helm_path()} (cached)"
    go = shutil.which("go")
    if go is None:
        return "helm: not built (no go on PATH)"
    HELM_DIR.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod", "GOBIN": str(HELM_DIR)}
    cmd = ["nice", "-n", "19", go, "install", "-trimpath", "-ldflags=-s -w",
           f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"]  # fmt: skip
    done = subprocess.run(cmd, env=env, cwd=HELM_DIR, capture_output=True, text=True)
    if done.returncode != 0:
        return f"helm: build failed:\n{done.stderr[-2000:]}"
    return f"helm: {HELM} (built)"


def install_promtool() -> str:
    if shutil.which("promtool") and shutil.which("prometheus"):
        return f"promtool: {shutil.which('promtool')}"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "promtool: missing (install Debian's prometheus package as root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"]
    for cmd in (["apt-get", "update", "-qq"], install):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            return f"promtool: apt-get failed:\n{done.stderr[-2000:]}"
    return f"promtool: {shutil.which('promtool')} (installed)"


def main(argv: list[str]) -> int:
    if "--check" in argv:
        found = {"helm": helm_path(), "promtool": shutil.which("promtool"),
                 "prometheus": shutil.which("prometheus")}  # fmt: skip
        missing = [name for name, path in found.items() if not path]
        print("missing: " + ", ".join(missing) if missing else f"helm: {helm_path()}")
        return 1 if missing else 0
    print(build_helm())
    print(install_promtool())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
