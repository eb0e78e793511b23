"""Fixtures for the ksqlDB runner's tests: the REST protocol double and a copy of ksqldb/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from cryptopipeline.ksql import KsqlSettings
from ksqldb_double import KsqlDouble

REPO_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = REPO_ROOT / "ksqldb"


@pytest.fixture
def double() -> Iterator[KsqlDouble]:
    """A fresh ksqlDB REST double on 127.0.0.1 (not ksqlDB) with the raw topic present."""
    server = KsqlDouble().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    """A writable copy of the project's migrations."""
    target = tmp_path / "ksqldb"
    target.mkdir()
    for path in sorted(MIGRATIONS.glob("V*.sql")):
        shutil.copy(path, target / path.name)
    return target


@pytest.fixture
def settings(double: KsqlDouble) -> KsqlSettings:
    return KsqlSettings(
        url=double.url, request_timeout_s=5.0, command_timeout_s=5.0, metadata_timeout_s=5.0
    )
