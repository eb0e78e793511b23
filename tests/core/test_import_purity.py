"""Domain packages load no I/O library: importing one in a fresh interpreter brings in no
Kafka, HTTP, WebSocket or Kubernetes client (DESIGN.md: domain code is tested alone)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

DOMAIN_PACKAGES = ["market", "indicators", "strategies", "trading", "coinbase", "records"]
IO_LIBRARIES = ["aiokafka", "httpx", "websockets", "kubernetes", "kopf"]

_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _loaded_by(module: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, module], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("package", DOMAIN_PACKAGES)
def test_a_domain_package_loads_no_io_library(package: str) -> None:
    loaded = _loaded_by(f"cryptopipeline.{package}")
    assert loaded.isdisjoint(IO_LIBRARIES), sorted(loaded & set(IO_LIBRARIES))


def test_core_settings_load_no_kafka_client_until_asked() -> None:
    assert "aiokafka" not in _loaded_by("cryptopipeline.core")
    assert "aiokafka" in _loaded_by("cryptopipeline.core.kafka")
