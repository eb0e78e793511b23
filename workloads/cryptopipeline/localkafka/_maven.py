"""Resolve the Kafka broker's jars with Maven into a cache shared by every checkout."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.3.1"
_STAMP = ".complete"


def default_cache_dir() -> Path:
    """`$CRYPTOPIPELINE_CACHE`, else `$XDG_CACHE_HOME/cryptopipeline` (~/.cache by default)."""
    explicit = os.environ.get("CRYPTOPIPELINE_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cryptopipeline"


def _pom_text() -> str:
    return resources.files("cryptopipeline.localkafka").joinpath("pom.xml").read_text()


def fetch_kafka(cache_dir: Path | None = None) -> Path:
    """Return a folder holding the broker's runtime classpath, resolving it on first use.

    The folder name carries a digest of the pom, so changing the Kafka version or a
    dependency resolves afresh while a second call with the same pom costs nothing.
    """
    pom = _pom_text()
    digest = hashlib.sha256(pom.encode()).hexdigest()[:12]
    target = (cache_dir or default_cache_dir()) / f"kafka-{KAFKA_VERSION}-{digest}"
    if (target / _STAMP).exists():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("Maven (`mvn`) is needed once to fetch Kafka's jars; install it first")
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("resolving Kafka jars with Maven", extra={"kafka_version": KAFKA_VERSION})
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        pom_path = Path(tmp) / "pom.xml"
        pom_path.write_text(pom)
        libs = Path(tmp) / "libs"
        result = subprocess.run(
            [
                mvn, "-q", "-B", "-f", str(pom_path),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={libs}", "-DincludeScope=runtime",
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(
                f"Maven could not resolve Kafka {KAFKA_VERSION} (exit {result.returncode}):\n"
                + (result.stdout + result.stderr)[-4000:]
            )
        staged = Path(tmp) / "staged"
        staged.mkdir()
        libs.rename(staged / "libs")
        (staged / _STAMP).write_text(KAFKA_VERSION + "\n")
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)
    return target


def classpath(kafka_dir: Path) -> str:
    jars = sorted((kafka_dir / "libs").glob("*.jar"))
    if not jars:
        raise RuntimeError(f"no jars in {kafka_dir / 'libs'}")
    return os.pathsep.join(str(jar) for jar in jars)
