"""Third-party clients installed from PyPI into their own virtual environments, for tests
that point them at the simulator (never imported into the project's environment).

    python3 tests/thirdparty_clients.py      # create what is missing (tests/prepare.py does)

Each environment is cached under ~/.cache/cryptopipeline/, keyed by client, version and
Python version, and marked complete only after its install succeeded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CRYPTOFEED_VERSION = "2.4.1"
"""cryptofeed's Coinbase feed speaks Advanced Trade since 2.4 (wss://advanced-trade-ws...)."""

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cryptopipeline"


def cryptofeed_venv_dir() -> Path:
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    return CACHE / f"cryptofeed-{CRYPTOFEED_VERSION}-{python}"


def cryptofeed_python() -> Path | None:
    """The interpreter of a complete cryptofeed environment, or None if there is none yet."""
    home = cryptofeed_venv_dir()
    python = home / "bin" / "python"
    return python if (home / ".complete").exists() and python.exists() else None


def ensure_cryptofeed() -> Path:
    """Create the cryptofeed environment if it is missing; return its interpreter."""
    ready = cryptofeed_python()
    if ready is not None:
        return ready
    home = cryptofeed_venv_dir()
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(home)], check=True)
    pip = [
        str(home / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
    ]
    subprocess.run([*pip, f"cryptofeed=={CRYPTOFEED_VERSION}"], check=True)
    (home / ".complete").write_text(CRYPTOFEED_VERSION + "\n")
    return home / "bin" / "python"


if __name__ == "__main__":
    print(ensure_cryptofeed())
